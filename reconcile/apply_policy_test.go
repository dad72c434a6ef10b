package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
)

// gate is a hand-written WriteGate (and WriteHolder): it records the steps it was asked
// about and refuses or holds as told.
type gate struct {
	asked  []string
	refuse error  // MayWrite's answer
	hold   string // HoldWrites' answer
}

func (g *gate) MayWrite(_ context.Context, step string) error {
	g.asked = append(g.asked, step)
	return g.refuse
}

func (g *gate) HoldWrites(context.Context) string { return g.hold }

// TestStepsPutTheRestartBeforeThePrunes: the restart is a step of its own, after the
// identity_openid write and before the prunes; a plan that needs none has none.
func TestStepsPutTheRestartBeforeThePrunes(t *testing.T) {
	pol := mnc(ActionCreate, KindPolicy, "p")
	oid := Change{System: SystemMinIO, Action: ActionUpdate, Kind: KindOpenID, Name: "identity_openid", Fields: []string{"scopes"}, RestartRequired: true}
	prune := mnc(ActionDelete, KindPolicy, "old")
	names := func(cs []Change) (out []string) {
		for _, c := range cs {
			out = append(out, string(c.Kind)+" "+c.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		plan []Change
		want []string
	}{
		{"write", []Change{pol, oid, prune}, []string{"policy p", "identity_openid identity_openid", "restart MinIO", "policy old"}},
		{"pending", []Change{pending(oid)}, []string{"identity_openid identity_openid", "restart MinIO"}},
		{"blocked", []Change{blocked(oid, "env")}, []string{"identity_openid identity_openid"}},
		{"no identity_openid", []Change{pol, prune}, []string{"policy p", "policy old"}},
	} {
		if got := names(Plan{Changes: tc.plan}.Steps()); !slices.Equal(got, tc.want) {
			t.Errorf("%s: steps %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestOneFilterHoldsEveryWrite is the write gate's acceptance table: report mode,
// restart: never and a write gate that denies are one filter over one list (the plan's
// steps). Over the pure filter, each row shows exactly which steps pass; over the engine, in
// an estate whose identity_openid write waits for a restart, each leaves MinIO unrestarted
// and unwritten, while the control row (repair, auto, no gate) restarts it.
func TestOneFilterHoldsEveryWrite(t *testing.T) {
	steps := Plan{Changes: []Change{
		mnc(ActionCreate, KindPolicy, "p"),
		akc(ActionUpdate, KindScopeMapping, "m", "expression"),
		{System: SystemMinIO, Action: ActionUpdate, Kind: KindOpenID, Name: "identity_openid", Fields: []string{"scopes"}, RestartRequired: true},
		mnc(ActionDelete, KindPolicy, "old"),
	}}.Steps()
	kinds := func(cs []Change) (out []string) {
		for _, c := range cs {
			out = append(out, string(c.Kind))
		}
		return out
	}
	refused := errors.New("not the leader")
	for _, tc := range []struct {
		name   string
		policy ApplyPolicy
		edit   func(*config.Config)
		gate   *gate
		// passes are the kinds of the mixed plan's steps the filter lets through.
		passes []string
		// held is the reason the filter gives for the restart step.
		held string
		// restarted: the engine restarts MinIO in the pending estate; failed: the run fails.
		restarted, failed bool
	}{
		{name: "control: repair, auto, no gate", policy: ApplyPolicy{Mode: config.ModeRepair, Restart: config.RestartAuto},
			passes: []string{"policy", "scope_mapping", "identity_openid", "restart", "policy"}, restarted: true},
		{name: "mode: report", policy: ApplyPolicy{Mode: config.ModeReport, Restart: config.RestartAuto},
			edit: func(c *config.Config) { c.Mode = config.ModeReport }, held: "mode: report"},
		{name: "restart: never", policy: ApplyPolicy{Mode: config.ModeRepair, Restart: config.RestartNever},
			edit:   func(c *config.Config) { c.MinIO.Restart = config.RestartNever },
			passes: []string{"policy", "scope_mapping", "identity_openid", "policy"}, held: "restart: never"},
		{name: "write gate holds the run", policy: ApplyPolicy{Mode: config.ModeRepair, Restart: config.RestartAuto, NoWrite: "not the leader"},
			gate: &gate{hold: "not the leader"}, held: "not allowed to write: not the leader"},
		{name: "write gate refuses the step", policy: ApplyPolicy{Mode: config.ModeRepair, Restart: config.RestartAuto},
			gate:   &gate{refuse: refused},
			passes: []string{"policy", "scope_mapping", "identity_openid", "restart", "policy"}, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kinds(tc.policy.Filter(steps)); !slices.Equal(got, tc.passes) {
				t.Errorf("filter passes %q, want %q", got, tc.passes)
			}
			if got := tc.policy.Held(RestartStep); got != tc.held {
				t.Errorf("restart held for %q, want %q", got, tc.held)
			}

			w, e := pendingRestart(t, tc.edit)
			if tc.gate != nil {
				e.Gate = tc.gate
			}
			res, err := e.Apply(context.Background())
			switch {
			case tc.failed && (!IsTransient(err) || !errors.Is(err, refused) || !strings.Contains(err.Error(), "minio restart MinIO")):
				t.Fatalf("Apply error = %v, want a transient error naming the refused step", err)
			case !tc.failed && err != nil:
				t.Fatal(err)
			}
			want := []string(nil)
			if tc.restarted {
				want = []string{"minio restart"}
			}
			if !slices.Equal(w.log, want) || res.Restarted != tc.restarted {
				t.Errorf("MinIO saw %q (restarted %v), want %q", w.log, res.Restarted, want)
			}
			if tc.gate != nil && tc.gate.hold == "" && !slices.Equal(tc.gate.asked, []string{"minio restart MinIO"}) {
				t.Errorf("gate asked about %q, want the restart", tc.gate.asked)
			}
			if tc.gate != nil && tc.gate.hold != "" && (len(tc.gate.asked) != 0 || res.Held != tc.held) {
				t.Errorf("held run: gate asked %q, Held %q; want no step asked and Held %q", tc.gate.asked, res.Held, tc.held)
			}
			if !tc.restarted && !tc.failed && !res.Remaining.RestartPending() {
				t.Errorf("the pending write is not reported: %+v", res.Remaining.Changes)
			}
		})
	}
}

// pendingRestart is a synced estate whose identity_openid write (scopes) is on MinIO's disk
// and recorded as pending: the only step left is the restart.
func pendingRestart(t *testing.T, edit func(*config.Config)) (*world, *Engine) {
	d := fxDesired(t, nil)
	o := fxSynced(t, d)
	w := newWorld(t, o)
	e := testEngine(t, w, edit)
	want := WantedOpenIDKeys(e.Desired, o.Authentik.Provider)
	w.disk = &ObservedOpenIDTarget{OpenIDKeys: want}
	stale := want
	stale.Scopes = "openid"
	w.loaded = &ObservedOpenIDTarget{OpenIDKeys: stale}
	if err := SaveState(e.StateDir, State{RestartPending: &PendingRestart{Target: e.Desired.OpenID.Target,
		Fingerprint: want.Fingerprint(), Before: fingerprintOf(w.loaded)}}); err != nil {
		t.Fatal(err)
	}
	return w, e
}

// TestGateIsAskedBeforeEveryWrite: from nothing, the gate is asked once before each write
// and the restart, in the order they happen, with the step's name; a gate that refuses the
// third step leaves exactly two writes.
func TestGateIsAskedBeforeEveryWrite(t *testing.T) {
	w, edit := fromNothing(t)
	e := testEngine(t, w, edit)
	saveOwned(t, e)
	g := &gate{}
	e.Gate = g
	if _, err := e.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(g.asked) != len(w.log) || len(w.log) < 5 {
		t.Fatalf("gate asked %d times for %d writes:\n%q\n%q", len(g.asked), len(w.log), g.asked, w.log)
	}
	for i, step := range g.asked {
		// w.log: "minio create policy p"; step: `minio create policy "p"`, "minio restart MinIO".
		if want := strings.ReplaceAll(step, `"`, ""); !strings.HasPrefix(want, w.log[i]) {
			t.Errorf("gate asked %q before write %q", step, w.log[i])
		}
	}

	w2, edit2 := fromNothing(t)
	e2 := testEngine(t, w2, edit2)
	n := 0
	e2.Gate = gateFunc(func(step string) error {
		if n++; n == 3 {
			return fmt.Errorf("lease lost")
		}
		return nil
	})
	_, err := e2.Apply(context.Background())
	if !IsTransient(err) || len(w2.log) != 2 {
		t.Errorf("refused third step: err %v (transient %v), writes %q; want a transient error after 2 writes", err, IsTransient(err), w2.log)
	}
}

type gateFunc func(step string) error

func (f gateFunc) MayWrite(_ context.Context, step string) error { return f(step) }
