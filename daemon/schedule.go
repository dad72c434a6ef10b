package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
)

// scheduler runs the cron jobs: schedule.reconcile always, schedule.rotate_secret when
// Options.Rotate is set. Each job waits a random jitter (up to schedule.jitter), then waits
// for its work to finish, so SkipIfStillRunning drops a tick that comes while the previous
// one is still going; the run loop keeps runs from overlapping anyway. Manual runs
// (POST /reconcile, hooks, start) get no jitter.
type scheduler struct {
	c      *cron.Cron
	ctx    context.Context // ends when the scheduler stops: cuts jitter and run waits short
	cancel context.CancelFunc

	mu        sync.Mutex
	reconcile cron.EntryID
	rotate    cron.EntryID // 0: none
	specs     [2]string
}

// startScheduler builds the cron from the config in force and starts it.
func (d *Daemon) startScheduler(ctx context.Context) (*scheduler, error) {
	cl := cronLogger{d.log.Named("cron")}
	ctx, cancel := context.WithCancel(ctx)
	s := &scheduler{ctx: ctx, cancel: cancel, c: cron.New(
		cron.WithParser(cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)),
		cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)),
		cron.WithLogger(cl),
	)}
	if err := d.schedule(s, d.config()); err != nil {
		cancel()
		return nil, err
	}
	d.mu.Lock()
	d.sched = s
	d.mu.Unlock()
	s.c.Start()
	return s, nil
}

// schedule (re)installs the cron entries for cfg; unchanged specs keep their entries.
func (d *Daemon) schedule(s *scheduler, cfg *config.Config) error {
	rotate := ""
	if d.opts.Rotate != nil {
		rotate = cfg.Schedule.RotateSecret
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reconcile != 0 && s.specs[0] == cfg.Schedule.Reconcile && s.specs[1] == rotate {
		return nil
	}
	recSched, err := config.ParseSchedule(cfg.Schedule.Reconcile)
	if err != nil {
		return fmt.Errorf("schedule.reconcile: %w", err)
	}
	var rotSched cron.Schedule
	if rotate != "" {
		if rotSched, err = config.ParseSchedule(rotate); err != nil {
			return fmt.Errorf("schedule.rotate_secret: %w", err)
		}
	}
	if s.reconcile != 0 {
		s.c.Remove(s.reconcile)
	}
	if s.rotate != 0 {
		s.c.Remove(s.rotate)
		s.rotate = 0
	}
	s.reconcile = s.c.Schedule(recSched, cron.FuncJob(func() {
		if d.sleepJitter(s.ctx) {
			d.triggerWait(s.ctx, "schedule")
		}
	}))
	if rotSched != nil {
		s.rotate = s.c.Schedule(rotSched, cron.FuncJob(func() {
			if d.sleepJitter(s.ctx) {
				d.rotate(s.ctx)
			}
		}))
	}
	s.specs = [2]string{cfg.Schedule.Reconcile, rotate}
	return nil
}

// next returns the next scheduled reconcile and rotation (zero when none), jitter not included.
func (s *scheduler) next() (reconcile, rotate time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reconcile = s.c.Entry(s.reconcile).Next
	if s.rotate != 0 {
		rotate = s.c.Entry(s.rotate).Next
	}
	return reconcile, rotate
}

// stop stops the cron and cuts short jobs waiting for their jitter or their run; the
// channel closes once running jobs have returned. A run already started goes on in the
// run loop, which shutdown waits for next.
func (s *scheduler) stop() <-chan struct{} {
	s.cancel()
	done := make(chan struct{})
	ctx := s.c.Stop()
	go func() { <-ctx.Done(); close(done) }()
	return done
}

// sleepJitter waits a random delay up to schedule.jitter; false if ctx ended first.
func (d *Daemon) sleepJitter(ctx context.Context) bool {
	max := d.config().Schedule.Jitter
	if max <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d.opts.Jitter(max))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randomJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// cronLogger adapts zap to cron.Logger; cron's info lines are debug here.
type cronLogger struct{ log *zap.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Sugar().Debugw(msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Sugar().Errorw(msg, append(kv, "error", err)...)
}
