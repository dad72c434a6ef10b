package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// trigger asks the loop for a reconcile run. done, when set, receives the outcome of a run
// that started after the trigger arrived.
type trigger struct {
	reason string
	done   chan *outcome
}

// exclusiveJob is a Job waiting for its turn in the loop.
type exclusiveJob struct {
	name string
	ctx  context.Context // the caller's: a job whose caller gave up is skipped
	fn   Job
	// after, when set, gets fn's result in the worker goroutine once fn returns, whether or
	// not the caller still waits: what a job did is recorded even when its caller gave up.
	after func(error)
	done  chan error
}

// work is what the loop is doing or has queued.
type loopState struct {
	running      bool
	pending      bool // a reconcile run is wanted
	pendingWhy   string
	waiters      []chan *outcome // for the pending run
	current      []chan *outcome // for the run in progress
	jobs         []*exclusiveJob
	stopping     bool
	debounce     *time.Timer
	debounceC    <-chan time.Time
	burstStart   time.Time     // the first hook event the debounce timer waits for; zero: none
	workFinished chan *outcome // nil outcome: an exclusive job finished
}

// loop is the run loop: the only goroutine that starts work. It wakes on triggers, hook
// events (debounced), exclusive jobs, finished work, SIGHUP, its heartbeat and the systemd
// watchdog ticker. It heartbeats (for /healthz) and pings the watchdog only while no work
// has overrun its timeout by more than StuckGrace, so a hung run turns /healthz 503 and lets
// systemd's watchdog restart the service.
func (d *Daemon) loop(runCtx context.Context, stop <-chan struct{}) {
	defer close(d.loopDone)
	s := &loopState{workFinished: make(chan *outcome, 1)}
	defer s.abandon()
	hb, wdC, stopTickers := d.tickers()
	defer stopTickers()
	for {
		if !d.stuck() {
			d.beat.Store(d.now().UnixNano())
		}
		select {
		case <-stop:
			s.stopping = true
			d.closing.Store(true)
			if !s.running {
				return
			}
		case t := <-d.triggers:
			s.pending = true
			if s.pendingWhy == "" {
				s.pendingWhy = t.reason
			}
			if t.done != nil {
				s.waiters = append(s.waiters, t.done)
			}
		case <-d.hooks:
			d.debounce(s)
		case <-s.debounceC:
			s.debounceC, s.burstStart = nil, time.Time{}
			s.pending = true
			if why := d.takeHookReason(); s.pendingWhy == "" {
				s.pendingWhy = why
			}
		case j := <-d.exclusive:
			s.jobs = append(s.jobs, j)
			d.jobsQueued.Add(1)
		case o := <-s.workFinished:
			s.running = false
			d.setRunning("")
			if o != nil {
				d.finish(o)
				for _, w := range s.current {
					w <- o
				}
				s.current = nil
				if d.retryHookRun(o) {
					d.debounce(s)
				}
			}
			if s.stopping {
				return
			}
		case <-hb:
		case <-wdC:
			if !d.stuck() {
				d.notify(sd.SdNotifyWatchdog)
			}
		case <-d.opts.Hangup:
			d.reload()
		}
		if !s.stopping {
			d.startNext(runCtx, s)
		}
	}
}

// abandon answers work that was queued but will never start: the daemon is stopping.
func (s *loopState) abandon() {
	for _, j := range s.jobs {
		j.done <- fmt.Errorf("%s: not started: the daemon is shutting down", j.name)
	}
	for _, w := range s.waiters {
		w <- nil
	}
}

// tickers returns the heartbeat channel and the watchdog channel (nil when systemd's watchdog
// is off) and a function that stops them.
func (d *Daemon) tickers() (hb, wd <-chan time.Time, stop func()) {
	every := d.opts.Heartbeat
	if every <= 0 {
		every = 2 * time.Second
	}
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog settings unreadable; not pinging", zap.Error(err))
	}
	hbT := time.NewTicker(every)
	stops := []func(){hbT.Stop}
	if interval > 0 {
		wdT := time.NewTicker(interval / 2)
		stops = append(stops, wdT.Stop)
		wd = wdT.C
		d.log.Info("systemd watchdog enabled", zap.Duration("interval", interval))
	}
	return hbT.C, wd, func() {
		for _, f := range stops {
			f()
		}
	}
}

// MaxDebounceFactor bounds the debounce: a run follows at most this many http.debounce
// after the first event of a burst, however steadily events keep coming.
const MaxDebounceFactor = 10

// debounce (re)starts the hook debounce timer: events within http.debounce of each other
// make one run, which starts http.debounce after the last of them, or MaxDebounceFactor
// times http.debounce after the first, whichever is sooner.
func (d *Daemon) debounce(s *loopState) {
	now := time.Now()
	quiet := d.config().HTTP.Debounce
	if s.burstStart.IsZero() {
		s.burstStart = now
	}
	wait := min(quiet, s.burstStart.Add(MaxDebounceFactor*quiet).Sub(now))
	if s.debounce == nil {
		s.debounce = time.NewTimer(wait)
	} else {
		s.debounce.Stop()
		s.debounce.Reset(wait)
	}
	s.debounceC = s.debounce.C
}

// startNext starts queued work when the loop is idle: exclusive jobs first, in order, then
// one reconcile run for every trigger that arrived since the last one started.
func (d *Daemon) startNext(runCtx context.Context, s *loopState) {
	for !s.running && len(s.jobs) > 0 {
		j := s.jobs[0]
		s.jobs = s.jobs[1:]
		if j.ctx.Err() != nil {
			j.done <- j.ctx.Err()
			continue
		}
		s.running = true
		d.setRunning(j.name)
		go func() {
			err := d.guard(runCtx, j.name, j.fn)
			if j.after != nil {
				j.after(err)
			}
			j.done <- err
			s.workFinished <- nil
		}()
	}
	if s.running || !s.pending {
		return
	}
	s.running, s.pending = true, false
	s.current, s.waiters = s.waiters, nil
	reason := s.pendingWhy
	s.pendingWhy = ""
	d.setRunning("reconcile")
	runner := d.currentRunner()
	go func() { s.workFinished <- d.execute(runCtx, runner, reason) }()
}

// guard runs fn bounded by RunTimeout and turns a panic into an error, so that neither a
// hung nor a crashing piece of work takes the loop down.
func (d *Daemon) guard(runCtx context.Context, what string, fn Job) (err error) {
	ctx, cancel := context.WithTimeout(runCtx, d.opts.RunTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("recovered from a panic", zap.String("work", what),
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("%s panicked: %v", what, r)
		}
	}()
	return fn(ctx)
}

// setRunning records what the loop runs now ("" for nothing).
func (d *Daemon) setRunning(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = what
	if what != "" {
		d.runStart = d.now()
	}
}

// currentRunner returns the engine of the config in force.
func (d *Daemon) currentRunner() Runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runner
}

// stuck says whether work has overrun RunTimeout by more than StuckGrace.
func (d *Daemon) stuck() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running != "" && d.now().Sub(d.runStart) > d.opts.RunTimeout+d.opts.StuckGrace
}

// Trigger asks for a reconcile run now (coalesced with any other pending trigger). It
// returns false when the daemon is shutting down.
func (d *Daemon) Trigger(reason string) bool {
	if d.closing.Load() {
		return false
	}
	select {
	case d.triggers <- trigger{reason: reason}:
	default: // the queue is full of triggers: a run is pending anyway
	}
	return true
}

// triggerWait asks for a reconcile run and waits for the outcome of a run that started after
// the request. It returns false when the daemon is shutting down or ctx ended first.
func (d *Daemon) triggerWait(ctx context.Context, reason string) (*outcome, bool) {
	if d.closing.Load() {
		return nil, false
	}
	done := make(chan *outcome, 1)
	select {
	case d.triggers <- trigger{reason: reason, done: done}:
	case <-ctx.Done():
		return nil, false
	case <-d.loopDone:
		return nil, false
	}
	select {
	case o := <-done:
		return o, o != nil
	case <-ctx.Done():
		return nil, false
	case <-d.loopDone:
		return nil, false
	}
}

// hookEvent records a hook event: a run follows once http.debounce passes without another.
func (d *Daemon) hookEvent(source string) {
	d.mu.Lock()
	d.feeds.hookSources[source] = true
	d.mu.Unlock()
	select {
	case d.hooks <- struct{}{}:
	default: // an event is already waiting for the loop
	}
}

// Exclusive runs fn in the run loop, never at the same time as a reconcile run or another
// job, bounded by RunTimeout, with a panic turned into an error; it waits for fn's result.
// Secret rotation runs through it. It fails at once when the daemon is shutting down.
func (d *Daemon) Exclusive(ctx context.Context, name string, fn Job) error {
	return d.exclusiveThen(ctx, name, fn, nil)
}

// exclusiveThen is Exclusive with after called on fn's result when fn ran (see
// exclusiveJob.after); after is never called for a job that did not start.
func (d *Daemon) exclusiveThen(ctx context.Context, name string, fn Job, after func(error)) error {
	if d.closing.Load() {
		return fmt.Errorf("%s: the daemon is shutting down", name)
	}
	j := &exclusiveJob{name: name, ctx: ctx, fn: fn, after: after, done: make(chan error, 1)}
	select {
	case d.exclusive <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.loopDone:
		return fmt.Errorf("%s: the run loop has stopped", name)
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-d.loopDone:
		select {
		case err := <-j.done:
			return err
		default:
			return fmt.Errorf("%s: the run loop has stopped", name)
		}
	}
}
