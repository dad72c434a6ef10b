package reconcile

import (
	"context"
	"fmt"

	"github.com/akminio/akminio/config"
)

// The MinIO restart is a step of its own: a Change of kind restart that the apply policy
// filters like every other change. It is never drift (the identity_openid change it loads
// is), so it appears in Steps, never in a Plan's Changes.
const (
	KindRestart   Kind   = "restart"
	ActionRestart Action = "restart"
)

// RestartStep is the MinIO restart as a step.
var RestartStep = Change{System: SystemMinIO, Action: ActionRestart, Kind: KindRestart, Name: "MinIO"}

// Steps returns the write steps that carry out the plan, in the order they are applied: the
// plan's changes, with the MinIO restart right after the identity_openid change when that
// change is a write that needs one or a write that is pending. The prunes come after the
// restart (a policy still named by the loaded identity_openid is never removed before
// MinIO has loaded the new one). Like ComputePlan it is pure; what may run is decided by
// ApplyPolicy.Filter alone.
func (p Plan) Steps() []Change {
	out := make([]Change, 0, len(p.Changes)+1)
	for _, c := range p.Changes {
		out = append(out, c)
		if c.Kind == KindOpenID && (c.Pending || (c.RestartRequired && c.Blocked == "")) {
			out = append(out, RestartStep)
		}
	}
	return out
}

// ApplyPolicy decides which steps of a plan a run may apply. Report mode, `restart: never`
// and a run that may not write at all (a follower of a leader lease) are this one filter
// over one list: the appliers never branch on any of them.
type ApplyPolicy struct {
	Mode    config.Mode
	Restart config.Restart
	// NoWrite, when not "", is why the run may not write at all: it computes, verifies and
	// reports the plan and applies nothing, as in report mode.
	NoWrite string
}

// Held says why the policy holds step c back, or "" when c may be applied:
//
//	step          when                 reason
//	every step    NoWrite is set       "not allowed to write: <NoWrite>"
//	every step    mode is not repair   "mode: report"
//	any change    Blocked              Blocked
//	any change    Pending              "written, restart pending"
//	the restart   restart is not auto  "restart: never"
func (p ApplyPolicy) Held(c Change) string {
	switch {
	case p.NoWrite != "":
		return NotAllowedToWrite + p.NoWrite
	case p.Mode != config.ModeRepair:
		return fmt.Sprintf("mode: %s", p.Mode)
	case c.Blocked != "":
		return c.Blocked
	case c.Pending:
		return "written, restart pending"
	case c.Kind == KindRestart && p.Restart != config.RestartAuto:
		return fmt.Sprintf("restart: %s", p.Restart)
	}
	return ""
}

// NotAllowedToWrite starts the reason of a run that may not write at all.
const NotAllowedToWrite = "not allowed to write: "

// Filter returns the steps the policy allows, in order.
func (p ApplyPolicy) Filter(steps []Change) []Change {
	var out []Change
	for _, c := range steps {
		if p.Held(c) == "" {
			out = append(out, c)
		}
	}
	return out
}

// WriteGate is asked before every write step of a run (each applier call, the MinIO
// restart, each prune). nil: go ahead. An error ends the run before that write; the run
// fails with a transient error wrapping it.
type WriteGate interface {
	MayWrite(ctx context.Context, step string) error
}

// WriteHolder is what a WriteGate may also implement to hold a whole run back before it
// starts writing (a follower of a leader lease): HoldWrites is asked once per Apply, after
// the plan is computed; a non-empty reason becomes ApplyPolicy.NoWrite, so the run
// computes, verifies and reports the plan, applies nothing, and does not fail. The Result
// says why (Result.Held).
type WriteHolder interface {
	HoldWrites(ctx context.Context) (reason string)
}

// stepName names a step for the write gate and for errors: `minio update identity_openid
// "identity_openid"`, `minio restart MinIO`.
func stepName(c Change) string {
	if c.Kind == KindRestart {
		return "minio restart MinIO"
	}
	return fmt.Sprintf("%s %s %s %q", c.System, c.Action, c.Kind, c.Name)
}
