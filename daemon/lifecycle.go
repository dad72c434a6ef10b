package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"
)

// cleanup is one step of the shutdown stack; fn gets a context that ends after limit
// (0: ShutdownTimeout).
type cleanup struct {
	name  string
	limit time.Duration
	fn    func(ctx context.Context) error
}

// lastChance bounds the shutdown steps after the run loop (queued alerts, open HTTP
// requests): a quarter of ShutdownTimeout, at most 5 s, so that the whole shutdown stays
// within ShutdownTimeout plus a few seconds (systemd's TimeoutStopSec=60 for the default 30 s).
func (d *Daemon) lastChance() time.Duration {
	return min(d.opts.ShutdownTimeout/4, 5*time.Second)
}

// Run starts everything in order — HTTP listener, alert sender, run loop, scheduler — tells
// systemd READY=1, triggers the first run, and blocks until ctx is done (SIGTERM/SIGINT) or
// a component fails. Then it tells systemd STOPPING=1 and stops the components in reverse
// order: triggers are refused at once, a run in progress gets ShutdownTimeout to finish
// (then it is cancelled), queued alerts get a last chance, the HTTP server is shut down
// (requests still open after the last chance are cut). A receiver or a client that does not
// answer never makes the shutdown fail. It returns nil after a clean shutdown.
func (d *Daemon) Run(ctx context.Context) (err error) {
	var stack []cleanup
	defer func() {
		if d.opts.Leader != nil {
			d.opts.Leader.StepDown() // no write from now on; the lease goes once runs stop
		}
		d.closing.Store(true)
		d.notify(sd.SdNotifyStopping)
		err = errors.Join(err, d.unwind(stack))
	}()

	serveErr := make(chan error, 1)
	srv, err := d.listen(serveErr)
	if err != nil {
		return err
	}
	stack = append(stack, cleanup{name: "HTTP server", limit: d.lastChance(), fn: func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil {
			d.log.Warn("HTTP requests still open at the shutdown timeout; closing them", zap.Error(err))
			return srv.Close()
		}
		return nil
	}})

	alertCtx, stopAlerts := context.WithCancel(context.Background())
	alertsDone := make(chan struct{})
	go func() { defer close(alertsDone); d.alerts.run(alertCtx) }()
	stack = append(stack, cleanup{name: "alert sender", limit: d.lastChance(), fn: func(ctx context.Context) error {
		if !d.alerts.drain(ctx) {
			d.log.Warn("alerts not delivered by the shutdown timeout are dropped")
		}
		stopAlerts() // cancels a delivery in progress
		grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return waitFor(grace, alertsDone, "alert sender")
	}})

	d.loadRotatedAt()
	runCtx, cancelRuns := context.WithCancel(context.Background())
	d.mu.Lock()
	d.runCtx = runCtx
	d.mu.Unlock()
	if d.opts.Leader != nil {
		// Started before the run loop, stopped after it: the lease is given up only once no
		// run can write any more.
		leaseCtx, stopLease := context.WithCancel(context.Background())
		leaseDone := make(chan struct{})
		go func() { defer close(leaseDone); d.opts.Leader.Run(leaseCtx) }()
		stack = append(stack, cleanup{name: "lease", limit: d.lastChance(), fn: func(ctx context.Context) error {
			stopLease()
			return waitFor(ctx, leaseDone, "lease")
		}})
	}
	stop := make(chan struct{})
	go d.loop(runCtx, stop)
	stack = append(stack, cleanup{name: "run loop", fn: func(ctx context.Context) error {
		close(stop)
		if waitFor(ctx, d.loopDone, "run loop") == nil {
			cancelRuns()
			return nil
		}
		d.log.Warn("the run in progress did not finish within the shutdown timeout; cancelling it")
		cancelRuns()
		grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return waitFor(grace, d.loopDone, "run loop")
	}})

	sched, err := d.startScheduler(runCtx)
	if err != nil {
		return err
	}
	stack = append(stack, cleanup{name: "scheduler", fn: func(ctx context.Context) error {
		return waitFor(ctx, sched.stop(), "scheduler")
	}})

	d.notify(sd.SdNotifyReady + "\nSTATUS=started, first run in progress")
	d.log.Info("akminio daemon started", zap.String("listen", d.Addr().String()),
		zap.String("mode", string(d.config().Mode)), zap.String("version", d.opts.Version))
	go d.start(runCtx)

	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
		return nil
	case err := <-serveErr:
		return fmt.Errorf("HTTP server: %w", err)
	case <-d.loopDone:
		return errors.New("the run loop stopped unexpectedly")
	}
}

// listen opens the HTTP listener (or takes Options.Listener) and serves on it.
func (d *Daemon) listen(serveErr chan<- error) (*http.Server, error) {
	ln := d.opts.Listener
	if ln == nil {
		addr := d.config().HTTP.Listen
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("http.listen %s: %w", addr, err)
		}
	}
	d.mu.Lock()
	d.addr = ln.Addr()
	d.mu.Unlock()
	// At most MaxConnections at once: a client that opens many connections (or holds them
	// open until ReadHeaderTimeout) makes the rest wait, it cannot exhaust the process.
	ln = netutil.LimitListener(ln, d.opts.MaxConnections)
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serverWriteTimeout, // the handlers set their own (see Handler)
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(d.log.Named("http")),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	return srv, nil
}

// unwind runs the cleanup stack in reverse, each step within its limit (the run loop step
// has its own extra grace), and joins their errors.
func (d *Daemon) unwind(stack []cleanup) error {
	var errs []error
	for i := len(stack) - 1; i >= 0; i-- {
		c := stack[i]
		limit := c.limit
		if limit <= 0 {
			limit = d.opts.ShutdownTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		if err := c.fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// waitFor waits until done is closed or ctx ends.
func waitFor(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s did not stop in time", what)
	}
}

// sdNotifier sends sd_notify states to $NOTIFY_SOCKET (nothing when it is unset); a failure
// is logged at debug level and otherwise ignored, as sd_notify's contract suggests.
func sdNotifier(log *zap.Logger) func(string) {
	return func(state string) {
		if _, err := sd.SdNotify(false, state); err != nil {
			log.Debug("sd_notify failed", zap.Error(err))
		}
	}
}
