package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/akminio/akminio/reconcile"
)

// outcome is what one reconcile run did, as the daemon reports it.
type outcome struct {
	Start    time.Time
	End      time.Time
	Duration time.Duration
	Result   string // Result* constants
	Reason   string // why the run ran: "start", "schedule", "hook:authentik", "reconcile", ...
	Err      error  // nil unless Result is ResultError or ResultTransient
	// Observed says the run saw both systems, so Drift and RestartPending are current.
	Observed       bool
	Applied        []reconcile.Change
	Drift          []reconcile.Change // drift left at the end of the run
	PlanDrift      []reconcile.Change // drift the run found before applying
	RestartPending bool
	// Backends says which backend answered; systems absent from the map are unknown.
	Backends map[reconcile.System]backendState
	// Follower says the run only observed: this instance does not hold the lease (ha).
	Follower bool
}

// backendState is one backend's status as the last run saw it.
type backendState struct {
	Up        bool
	LastError string
}

// classify turns what Apply returned into an outcome (Start and End are set by the caller).
//
//	error      Apply returned a terminal error
//	transient  Apply returned a transient error (reconcile.IsTransient)
//	repaired  changes were applied and nothing remains
//	drift     drift remains
//	in_sync   otherwise
func classify(res *reconcile.Result, err error) *outcome {
	o := &outcome{Backends: map[reconcile.System]backendState{}}
	if res != nil {
		o.Applied = res.Applied
		o.PlanDrift = res.Plan.Changes
	}
	switch {
	case err != nil:
		o.Result, o.Err = ResultError, err
		if reconcile.IsTransient(err) {
			o.Result = ResultTransient
		}
		classifyBackends(o, err)
		if res != nil && !errors.Is(err, reconcile.ErrObserve) {
			o.Observed = true
			o.Drift = res.Report().Changes // the engine's leftover: what was not applied
			o.RestartPending = res.Remaining.RestartPending()
		}
		return o
	case res == nil:
		o.Result, o.Err = ResultError, errors.New("the engine returned no result")
		return o
	}
	o.Observed = true
	o.Drift = res.Report().Changes
	o.RestartPending = res.Remaining.RestartPending()
	for _, s := range systems {
		o.Backends[s] = backendState{Up: true}
	}
	switch {
	case !res.InSync():
		o.Result = ResultDrift
	case len(res.Applied) > 0 || res.Restarted:
		o.Result = ResultRepaired
	default:
		o.Result = ResultInSync
	}
	return o
}

// classifyBackends says which backend failed from an observation error
// (*reconcile.ObserveError names each failed system; the others answered). Errors other than
// a failed observation happened after both sides answered.
func classifyBackends(o *outcome, err error) {
	var oe *reconcile.ObserveError
	if !errors.As(err, &oe) {
		for _, s := range systems {
			o.Backends[s] = backendState{Up: true}
		}
		return
	}
	for _, s := range systems {
		if failed := oe.Failed[s]; failed != nil {
			o.Backends[s] = backendState{Up: false, LastError: failed.Error()}
		} else {
			o.Backends[s] = backendState{Up: true}
		}
	}
}

// changeKey identifies a change across runs.
func changeKey(c reconcile.Change) string {
	return string(c.System) + "/" + string(c.Kind) + "/" + string(c.Action) + "/" + c.Name
}

// summary is the one-line STATUS= text and the alerts' summary of an outcome.
func (o *outcome) summary() string {
	switch o.Result {
	case ResultError, ResultTransient:
		return "last run failed: " + o.Err.Error()
	case ResultRepaired:
		return fmt.Sprintf("last run repaired %d change(s), in sync", len(o.Applied))
	case ResultDrift:
		s := fmt.Sprintf("last run: %d drift item(s) left", len(o.Drift))
		if o.RestartPending {
			s += ", MinIO restart pending"
		}
		return s
	default:
		return "last run: in sync"
	}
}
