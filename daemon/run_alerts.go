package daemon

import (
	"fmt"

	"github.com/akminio/akminio/reconcile"
)

// alertOnRun sends the alerts a run's outcome calls for, comparing with what the daemon
// knew before it (prevDrift and prevRestart are from the last run that observed both sides).
//
// Events fire on changes of condition, not on every run while a condition lasts:
//
//	drift_detected   the run found drift items that were not drift after the run before
//	                 (a repaired run sends it too, then drift_repaired)
//	drift_repaired   the run repaired drift, or drift reported before is gone
//	reconcile_failed the run failed and the run before did not
//	restart_pending  a MinIO restart became pending
//
// Alertmanager alerts follow the conditions themselves and resolve when they clear.
func (d *Daemon) alertOnRun(prev, o *outcome, prevDrift []reconcile.Change, prevRestart bool) {
	a := d.alerts
	if o.Result == ResultError {
		if prev == nil || prev.Result != ResultError {
			a.event(Event{Event: EventReconcileFailed, Summary: "akminio reconcile run failed", Error: o.Err.Error()})
		}
		a.fire(AlertFailed, "critical", "akminio reconcile run failed: "+o.Err.Error())
	} else {
		a.resolve(AlertFailed)
	}
	if !o.Observed {
		return
	}
	if found := newItems(append(append([]reconcile.Change{}, o.PlanDrift...), o.Drift...), prevDrift); len(found) > 0 {
		a.event(Event{Event: EventDriftDetected, Summary: fmt.Sprintf("%d drift item(s) found", len(found)), Changes: found})
	}
	switch {
	case o.Result == ResultRepaired:
		a.event(Event{Event: EventDriftRepaired, Summary: fmt.Sprintf("%d change(s) applied, in sync", len(o.Applied)), Changes: o.Applied})
	case len(o.Drift) == 0 && len(prevDrift) > 0:
		a.event(Event{Event: EventDriftRepaired, Summary: "drift reported before is gone, in sync", Changes: prevDrift})
	}
	if len(o.Drift) > 0 {
		a.fire(AlertDrift, "warning", fmt.Sprintf("%d drift item(s) between authentik and MinIO and the config", len(o.Drift)))
	} else {
		a.resolve(AlertDrift)
	}
	if o.RestartPending {
		if !prevRestart {
			a.event(Event{Event: EventRestartPending, Summary: "identity_openid was written; MinIO must restart to load it"})
		}
		a.fire(AlertRestartPending, "warning", "identity_openid was written; MinIO must restart to load it")
	} else {
		a.resolve(AlertRestartPending)
	}
}

// newItems returns the changes of cur (deduplicated) that are not in prev.
func newItems(cur, prev []reconcile.Change) []reconcile.Change {
	seen := map[string]bool{}
	for _, c := range prev {
		seen[changeKey(c)] = true
	}
	var out []reconcile.Change
	for _, c := range cur {
		if k := changeKey(c); !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}
