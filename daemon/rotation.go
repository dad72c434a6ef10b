package daemon

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
)

// rotate runs Options.Rotate exclusively and records its result when it has run: the
// counter, the rotated-at gauge and status from state.json, an event, and the Alertmanager
// alert. A rotation that never started (the daemon is stopping) records nothing, and one
// whose caller stops waiting (the scheduler stopping) is still recorded when it ends.
func (d *Daemon) rotate(ctx context.Context) {
	if !d.mayRotate() {
		return
	}
	startedAt := d.now()
	err := d.exclusiveThen(ctx, "secret rotation", func(ctx context.Context) error {
		return d.opts.Rotate(ctx, d.config())
	}, func(err error) {
		if err == nil && d.opts.Leader != nil {
			d.opts.Leader.NoteRotation(startedAt)
		}
		d.RecordRotation(rotationResult(err), err)
	})
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
	if d.opts.Leader != nil {
		// A follower observes at once; the rest waits for the lease (LeadershipChanged).
		d.Trigger("start")
		return
	}
	d.begin(ctx, "start")
}

// begin settles an interrupted rotation, triggers a run (reason why) and catches up a
// missed rotation: at start, and with ha on each time this instance becomes the leader.
func (d *Daemon) begin(ctx context.Context, why string) {
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
	d.Trigger(why)
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
	last = d.sharedRotatedAt(last)
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
