// Package daemon is `akminio run`: it schedules reconcile runs (robfig/cron/v3 with jitter,
// a run at start, POST /reconcile and debounced hooks), never lets two runs overlap, serves
// health, readiness, status and metrics over HTTP, talks to systemd (READY, WATCHDOG, STATUS,
// RELOADING, STOPPING), reloads the config on SIGHUP and sends alerts.
//
// Everything it needs is injected through Options; it touches no global state (no global
// Prometheus registry, no signal handlers of its own).
//
// One goroutine, the run loop, owns the engine: triggers reach it through channels and it
// starts at most one piece of work at a time (a reconcile run or an Exclusive job), each
// bounded by Options.RunTimeout. Triggers that arrive while a run is going are coalesced into
// one follow-up run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Defaults of the Options bounds.
const (
	// DefaultRunTimeout bounds one run: the engine's own bound (see reconcile.DefaultRunTimeout).
	DefaultRunTimeout = reconcile.DefaultRunTimeout
	// DefaultShutdownTimeout bounds how long SIGTERM waits for a run in progress to finish
	// before cancelling it; the steps after it (alerts, HTTP) take a quarter of it at most
	// each. The whole shutdown stays inside the unit's TimeoutStopSec=60.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultAlertResend is how often active Alertmanager alerts are sent again.
	DefaultAlertResend = time.Minute
	// DefaultTransientAlertAfter is how many transient failures in a row alert.
	DefaultTransientAlertAfter = 3
)

// Runner is the part of the reconcile engine the daemon drives; *reconcile.Engine implements it.
type Runner interface {
	Apply(ctx context.Context) (*reconcile.Result, error)
}

var _ Runner = (*reconcile.Engine)(nil)

// Factory builds a Runner from a config; the daemon calls it at start and on every reload.
type Factory func(*config.Config) (Runner, error)

// Job is work run exclusively by the run loop (see Daemon.Exclusive).
type Job func(ctx context.Context) error

// RotateFunc rotates the client secret using cfg (see Options.Rotate).
type RotateFunc func(ctx context.Context, cfg *config.Config) error

// RecoverFunc settles a secret rotation that a crash interrupted (see Options.Recover). It
// returns "" when there was nothing to settle, else the Rotation* result it ended with.
type RecoverFunc func(ctx context.Context, cfg *config.Config) (result string, err error)

// Scrubber removes secret values from text; *logging.Scrubber implements it. Set is called
// with the secrets of every config the daemon accepts.
type Scrubber interface {
	Scrub(string) string
	Set(...config.Secret)
}

// Options configure a Daemon. Config, NewRunner, Logger and Registerer are required.
type Options struct {
	Config    *config.Config
	NewRunner Factory
	// Reload re-reads and validates the config (config.Load plus RequireSecrets); nil
	// makes SIGHUP log that reloading is not supported.
	Reload func() (*config.Config, error)
	// Hangup delivers SIGHUP (signal.Notify is the caller's business); nil: none.
	Hangup <-chan os.Signal
	Logger *zap.Logger
	// Registerer receives the daemon's metrics; never pass prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil: Registerer, which must then be a Gatherer too.
	Gatherer prometheus.Gatherer
	Version  string
	Scrubber Scrubber // nil: no scrubbing beyond what the adapters do
	// Rotate rotates the client secret with the config in force, on schedule.rotate_secret,
	// exclusively; nil: no scheduled rotation. An error that has a method RolledBack() bool
	// returning true counts as rolled_back, any other error as failed.
	Rotate RotateFunc
	// Recover, when set, runs once at start, exclusively and before the first reconcile
	// run, to finish or roll back a rotation found on disk (spec section 6).
	Recover RecoverFunc
	// Listener, when set, is served instead of listening on http.listen (tests, socket
	// activation).
	Listener net.Listener
	// Jitter returns a random delay in [0, max); nil: uniform random.
	Jitter func(max time.Duration) time.Duration
	// Now is the clock for status and alerts; nil: time.Now.
	Now func() time.Time
	// HTTPClient sends alerts; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Instance labels alerts; nil: the host name.
	Instance string
	// Leader, when set (config ha), makes this instance write only while it holds the lease
	// (see Leadership); nil: it always writes.
	Leader Leadership

	RunTimeout      time.Duration // 0: DefaultRunTimeout
	ShutdownTimeout time.Duration // 0: DefaultShutdownTimeout
	AlertResend     time.Duration // 0: DefaultAlertResend
	// StuckGrace is how long past RunTimeout work may take before the loop counts as stuck
	// (/healthz 503, no more watchdog pings); 0: 30 s.
	StuckGrace time.Duration
	// MaxConnections bounds the HTTP connections served at once; 0: DefaultMaxConnections.
	MaxConnections int
	// TransientAlertAfter is how many transient failures in a row (reconcile.IsTransient)
	// it takes before one alerts; 0: DefaultTransientAlertAfter. A terminal failure alerts at
	// once.
	TransientAlertAfter int
	// Heartbeat is how often the idle run loop wakes to prove it is alive (/healthz); 0: 2 s.
	// The systemd watchdog has its own ticker in the loop, at half WATCHDOG_USEC.
	Heartbeat time.Duration
}

// Daemon is a running `akminio run`. Build it with New and start it with Run.
type Daemon struct {
	opts    Options
	log     *zap.Logger
	metrics *metrics
	ha      *haMetrics
	// eventsReceived is akminio_events_received_total{source} (feeds.go).
	eventsReceived *prometheus.CounterVec
	gatherer       prometheus.Gatherer
	alerts         *alerter
	now            func() time.Time
	notify         func(state string)

	triggers  chan trigger
	hooks     chan struct{}
	exclusive chan *exclusiveJob
	closing   atomic.Bool  // set on shutdown: POST endpoints refuse
	beat      atomic.Int64 // unix nanoseconds of the loop's last heartbeat; 0: not started
	loopDone  chan struct{}
	// jobsQueued counts the exclusive jobs the loop has taken in (queued behind the work
	// going on); tests wait on it.
	jobsQueued atomic.Int64

	mu          sync.Mutex // guards the fields below
	cfg         *config.Config
	runner      Runner
	reloadOK    bool
	last        *outcome
	backends    map[reconcile.System]backendState
	drift       []reconcile.Change // drift left by the last run that observed
	restartPend bool
	running     string    // "" when idle, else what runs ("reconcile", "job")
	runStart    time.Time // start of what runs
	rotatedAt   time.Time // state.json secret_rotated_at
	sched       *scheduler
	failures    failureStreak // touched by the run loop only (finish)
	feeds       feedState
	addr        net.Addr
	runCtx      context.Context // the runs' context, once Run started them
}

// New checks the options, builds the first runner and registers the metrics.
func New(opts Options) (*Daemon, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("daemon: no config")
	case opts.NewRunner == nil:
		return nil, errors.New("daemon: no runner factory")
	case opts.Logger == nil:
		return nil, errors.New("daemon: no logger")
	case opts.Registerer == nil:
		return nil, errors.New("daemon: no prometheus registerer")
	}
	if opts.Gatherer == nil {
		g, ok := opts.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("daemon: the registerer is not a gatherer and no gatherer was given")
		}
		opts.Gatherer = g
	}
	setDefaults(&opts)
	runner, err := opts.NewRunner(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("daemon: build the engine: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("daemon: register metrics: %w", err)
	}
	evm, err := newEventsMetric(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("daemon: register metrics: %w", err)
	}
	d := &Daemon{
		opts: opts, log: opts.Logger, metrics: m, gatherer: opts.Gatherer, now: opts.Now,
		notify:    sdNotifier(opts.Logger),
		triggers:  make(chan trigger, 16),
		hooks:     make(chan struct{}, 1),
		exclusive: make(chan *exclusiveJob),
		loopDone:  make(chan struct{}),
		cfg:       opts.Config, runner: runner, reloadOK: true,
		backends:       map[reconcile.System]backendState{},
		eventsReceived: evm,
		feeds:          feedState{lastDelivered: map[string]time.Time{}, received: map[string]uint64{}, hookSources: map[string]bool{}},
	}
	if d.ha, err = newHAMetrics(opts.Registerer, d.isLeader); err != nil {
		return nil, fmt.Errorf("daemon: register metrics: %w", err)
	}
	d.alerts = newAlerter(opts.HTTPClient, opts.Logger, opts.Instance, opts.AlertResend, opts.Now)
	d.alerts.configure(opts.Config.Alerts)
	if opts.Scrubber != nil {
		opts.Scrubber.Set(opts.Config.SecretValues()...)
	}
	return d, nil
}

func setDefaults(o *Options) {
	if o.RunTimeout <= 0 {
		o.RunTimeout = DefaultRunTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.AlertResend <= 0 {
		o.AlertResend = DefaultAlertResend
	}
	if o.TransientAlertAfter <= 0 {
		o.TransientAlertAfter = DefaultTransientAlertAfter
	}
	if o.StuckGrace <= 0 {
		o.StuckGrace = 30 * time.Second
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = randomJitter
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
}

// config returns the config in force.
func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Addr is the address the HTTP server listens on (nil before Run listens).
func (d *Daemon) Addr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// scrub removes secrets from text bound for /status, alerts or STATUS=.
func (d *Daemon) scrub(s string) string {
	if d.opts.Scrubber == nil {
		return s
	}
	return d.opts.Scrubber.Scrub(s)
}

// loadRotatedAt reads state.json's secret_rotated_at into the status and the gauge.
func (d *Daemon) loadRotatedAt() {
	st, err := reconcile.LoadState(d.config().StateDir)
	if err != nil {
		d.log.Warn("cannot read the state file for the secret's age", zap.Error(err))
		return
	}
	d.mu.Lock()
	d.rotatedAt = st.SecretRotatedAt
	d.mu.Unlock()
	if !st.SecretRotatedAt.IsZero() {
		d.metrics.secretRotated.Set(float64(st.SecretRotatedAt.Unix()))
	}
}

var _ cron.Logger = cronLogger{}
