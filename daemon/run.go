package daemon

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"

	"go.uber.org/zap"

	"github.com/akminio/akminio/reconcile"
)

// execute runs the engine once, bounded by RunTimeout, with a panic recovered and counted
// as an error. It runs in the loop's worker goroutine and touches no daemon state; finish
// records the outcome in the loop.
func (d *Daemon) execute(runCtx context.Context, r Runner, reason string) *outcome {
	start := d.now()
	d.log.Info("reconcile run starting", zap.String("reason", reason))
	var res *reconcile.Result
	wrote := false
	err := d.guard(runCtx, "reconcile run", func(ctx context.Context) error {
		var err error
		res, wrote, err = d.runOnce(ctx, r)
		if err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errors.Join(errors.New("the run exceeded its timeout of "+d.opts.RunTimeout.String()), err)
		}
		return err
	})
	o := classify(res, err)
	o.Follower = d.opts.Leader != nil && !wrote
	o.Start, o.End, o.Reason = start, d.now(), reason
	o.Duration = o.End.Sub(o.Start)
	return o
}

// finish records a run's outcome: status, metrics, systemd STATUS=, alerts and a log line.
// It runs in the loop goroutine, so the previous outcome it compares with is stable.
func (d *Daemon) finish(o *outcome) {
	if o.Err != nil {
		o.Err = errors.New(d.scrub(o.Err.Error()))
	}
	for s, b := range o.Backends {
		b.LastError = d.scrub(b.LastError)
		o.Backends[s] = b
	}
	d.mu.Lock()
	prevDrift, prevRestart := d.drift, d.restartPend
	d.last = o
	d.recordRun(o)
	for s, b := range o.Backends {
		d.backends[s] = b
	}
	if o.Observed {
		d.drift, d.restartPend = o.Drift, o.RestartPending
	}
	d.mu.Unlock()

	d.metrics.observeRun(o)
	d.loadRotatedAt() // a rotation by `akminio rotate-secret` shows up at the next run
	d.notify("STATUS=" + oneLine(o.summary()))
	fields := []zap.Field{zap.String("result", o.Result), zap.Duration("duration", o.Duration),
		zap.Int("applied", len(o.Applied)), zap.Int("drift", len(o.Drift))}
	if o.Err != nil {
		d.log.Error("reconcile run failed", append(fields, zap.String("error", o.Err.Error()))...)
	} else {
		d.log.Info("reconcile run finished", fields...)
	}
	if !o.Follower { // one alert per event for the whole cluster: the leader's
		d.alertOnRun(o, prevDrift, prevRestart)
	}
	// Reading MinIO's encrypted admin answers (the config export) derives a key with
	// argon2id, which takes 64 MiB for a moment; give it back to the OS now rather than
	// idle at that size until the next run.
	debug.FreeOSMemory()
}

// oneLine keeps the first line of s, for STATUS=.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
