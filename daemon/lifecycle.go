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
)

// cleanup is one step of the shutdown stack; it gets the shutdown's deadline.
type cleanup struct {
	name string
	fn   func(ctx context.Context) error
}

// Run starts everything in order — HTTP listener, alert sender, run loop, scheduler — tells
// systemd READY=1, triggers the first run, and blocks until ctx is done (SIGTERM/SIGINT) or
// a component fails. Then it tells systemd STOPPING=1 and stops the components in reverse
// order: triggers are refused at once, a run in progress gets ShutdownTimeout to finish
// (then it is cancelled), the HTTP server is shut down, queued alerts get a last chance.
// It returns nil after a clean shutdown.
func (d *Daemon) Run(ctx context.Context) (err error) {
	var stack []cleanup
	defer func() {
		d.closing.Store(true)
		d.notify(sd.SdNotifyStopping)
		err = errors.Join(err, d.unwind(stack))
	}()

	serveErr := make(chan error, 1)
	srv, err := d.listen(serveErr)
	if err != nil {
		return err
	}
	stack = append(stack, cleanup{"HTTP server", srv.Shutdown})

	alertCtx, stopAlerts := context.WithCancel(context.Background())
	alertsDone := make(chan struct{})
	go func() { defer close(alertsDone); d.alerts.run(alertCtx) }()
	stack = append(stack, cleanup{"alert sender", func(ctx context.Context) error {
		d.alerts.drain(ctx)
		stopAlerts()
		return waitFor(ctx, alertsDone, "alert sender")
	}})

	d.loadRotatedAt()
	runCtx, cancelRuns := context.WithCancel(context.Background())
	stop := make(chan struct{})
	go d.loop(runCtx, stop)
	stack = append(stack, cleanup{"run loop", func(ctx context.Context) error {
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
	stack = append(stack, cleanup{"scheduler", func(ctx context.Context) error {
		return waitFor(ctx, sched.stop(), "scheduler")
	}})

	d.notify(sd.SdNotifyReady + "\nSTATUS=started, first run in progress")
	d.log.Info("akminio daemon started", zap.String("listen", d.Addr().String()),
		zap.String("mode", d.config().Mode), zap.String("version", d.opts.Version))
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
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(d.log.Named("http")),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	return srv, nil
}

// unwind runs the cleanup stack in reverse, all within one ShutdownTimeout each at most
// (the run loop step has its own extra grace), and joins their errors.
func (d *Daemon) unwind(stack []cleanup) error {
	var errs []error
	for i := len(stack) - 1; i >= 0; i-- {
		c := stack[i]
		ctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownTimeout)
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
