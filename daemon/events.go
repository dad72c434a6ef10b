package daemon

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
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

// rotate runs Options.Rotate exclusively and records its result when it has run: the
// counter, the rotated-at gauge and status from state.json, an event, and the Alertmanager
// alert. A rotation that never started (the daemon is stopping) records nothing, and one
// whose caller stops waiting (the scheduler stopping) is still recorded when it ends.
func (d *Daemon) rotate(ctx context.Context) {
	err := d.exclusiveThen(ctx, "secret rotation", func(ctx context.Context) error {
		return d.opts.Rotate(ctx, d.config())
	}, func(err error) { d.RecordRotation(rotationResult(err), err) })
	if err != nil && ctx.Err() != nil {
		d.log.Info("stopped waiting for the secret rotation: the daemon is shutting down")
	}
}

// rotationResult is the Rotation* result of a rotation that returned err.
func rotationResult(err error) string {
	var rb interface{ RolledBack() bool }
	switch {
	case err == nil:
		return RotationSuccess
	case errors.As(err, &rb) && rb.RolledBack():
		return RotationRolledBack
	default:
		return RotationFailed
	}
}

// start runs what comes first after READY: an interrupted rotation is settled before the
// first reconcile run, and a rotation whose scheduled time passed while the daemon was down
// runs after it.
func (d *Daemon) start(ctx context.Context) {
	if d.opts.Recover != nil {
		var result string
		_ = d.exclusiveThen(ctx, "rotation recovery", func(ctx context.Context) (err error) {
			result, err = d.opts.Recover(ctx, d.config())
			return err
		}, func(err error) {
			switch {
			case err != nil && result == "":
				d.RecordRotation(RotationFailed, err)
			case result != "":
				d.RecordRotation(result, err)
			}
		})
	}
	d.Trigger("start")
	if d.rotationMissed() {
		d.log.Info("a scheduled secret rotation was missed while akminio was down; rotating now")
		d.rotate(ctx)
	}
}

// rotationMissed reports whether schedule.rotate_secret had a time between the last
// rotation akminio recorded and now. With no rotation recorded the secret's age is unknown,
// and the schedule decides.
func (d *Daemon) rotationMissed() bool {
	spec := d.config().Schedule.RotateSecret
	d.mu.Lock()
	last := d.rotatedAt
	d.mu.Unlock()
	if d.opts.Rotate == nil || spec == "" || last.IsZero() {
		return false
	}
	sched, err := config.ParseSchedule(spec)
	if err != nil {
		return false // validated at load: cannot happen
	}
	return sched.Next(last).Before(d.now())
}

// RecordRotation counts a rotation's result (Rotation* constants), re-reads state.json for
// the secret's age and sends the alerts. The scheduled rotation calls it; a rotation run
// another way through Exclusive may call it too.
func (d *Daemon) RecordRotation(result string, err error) {
	d.metrics.rotations.WithLabelValues(result).Inc()
	d.loadRotatedAt()
	if err == nil {
		d.log.Info("client secret rotated")
		d.alerts.event(Event{Event: EventSecretRotated, Summary: "the client secret was rotated"})
		d.alerts.resolve(AlertRotationFailed)
		return
	}
	msg := d.scrub(err.Error())
	d.log.Error("client secret rotation failed", zap.String("result", result), zap.String("error", msg))
	d.alerts.event(Event{Event: EventSecretRotationFailed, Summary: "client secret rotation " + result, Error: msg})
	d.alerts.fire(AlertRotationFailed, "critical", "client secret rotation "+result+": "+msg)
}
