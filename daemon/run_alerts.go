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
//	reconcile_failed a failure starts to alert: a terminal error at once, a transient one
//	                 (reconcile.IsTransient) only from the Options.TransientAlertAfter-th
//	                 transient failure in a row (see failureStreak)
//	restart_pending  a MinIO restart became pending
//
// Alertmanager alerts follow the conditions themselves and resolve when they clear.
func (d *Daemon) alertOnRun(o *outcome, prevDrift []reconcile.Change, prevRestart bool) {
	a := d.alerts
	alert, started := d.failures.record(o.Result, d.opts.TransientAlertAfter)
	switch {
	case alert:
		if started {
			a.event(Event{Event: EventReconcileFailed, Summary: "akminio reconcile run failed", Error: o.Err.Error()})
		}
		a.fire(AlertFailed, "critical", "akminio reconcile run failed: "+o.Err.Error())
	case o.Err == nil:
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

// failureStreak is what the daemon remembers of the failed runs before this one, to decide
// whether a failure alerts:
//
//	run result   alerts
//	error        at once (terminal: it fails again until someone changes something)
//	transient    from the after-th transient failure in a row on, or while a failure
//	             before it still alerts
//	other        never; the streak ends
type failureStreak struct {
	transient int  // transient failures in a row
	alerting  bool // the last failure alerted
}

// record counts a run's result and says whether it alerts, and whether that alert starts
// now (the run before did not alert).
func (f *failureStreak) record(result string, after int) (alert, started bool) {
	switch result {
	case ResultError:
		f.transient = 0
		alert = true
	case ResultTransient:
		f.transient++
		alert = f.alerting || f.transient >= after
	default:
		f.transient, f.alerting = 0, false
		return false, false
	}
	started = alert && !f.alerting
	f.alerting = alert
	return alert, started
}
