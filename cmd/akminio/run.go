package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/rotate"
)

func init() {
	register(command{
		name:    "run",
		summary: "the daemon: reconcile on start, on the schedule and on events; serve HTTP",
		setup: func(*flag.FlagSet) runFunc {
			return runDaemon
		},
	})
}

// runDaemon wires the daemon: config, logger, a registry of its own, the engine factory,
// SIGHUP for reloads. SIGTERM/SIGINT end ctx (see run in main.go); a clean shutdown exits 0.
func runDaemon(ctx context.Context, s *session) int {
	cfg, code := s.loadConfig(true)
	if cfg == nil {
		return code
	}
	log, err := s.logger(cfg)
	if err != nil {
		s.errorf("akminio run: %v\n", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var d *daemon.Daemon
	leader, err := s.newElector(cfg, log, func(st lease.Status) { d.LeadershipChanged(st) })
	if err != nil {
		s.errorf("akminio run: %v\n", err)
		return exitFailure
	}
	v, _ := buildVersion()
	d, err = daemon.New(daemon.Options{
		Config:     cfg,
		NewRunner:  func(c *config.Config) (daemon.Runner, error) { return s.newSettlingRunner(c, log) },
		Reload:     func() (*config.Config, error) { return s.reloadConfig(log) },
		Rotate:     func(ctx context.Context, c *config.Config) error { return s.scheduledRotation(ctx, c, log) },
		Recover:    func(ctx context.Context, c *config.Config) (string, error) { return s.startupRecovery(ctx, c, log) },
		Hangup:     hup,
		Logger:     log,
		Registerer: prometheus.NewRegistry(),
		Version:    v,
		Scrubber:   s.scrubber,
		Leader:     leader,
	})
	if err != nil {
		s.errorf("akminio run: %v\n", err)
		return exitFailure
	}
	if err := d.Run(ctx); err != nil {
		log.Error("akminio run stopped on an error", zap.Error(err))
		return exitFailure
	}
	return exitOK
}

// settlingRunner is the daemon's runner: before each reconcile run it settles a rotation
// left on disk (one whose rollback failed, or that a crash interrupted), as `akminio apply`
// does, so that no run writes identity_openid while a rotation is unresolved. A rotation
// that cannot be settled fails the run, which alerts.
type settlingRunner struct {
	eng *reconcile.Engine
	s   *session
}

func (s *session) newSettlingRunner(cfg *config.Config, log *zap.Logger) (daemon.Runner, error) {
	eng, err := newFencedEngine(cfg, log, s.gate)
	if err != nil {
		return nil, err
	}
	return settlingRunner{eng: eng, s: s}, nil
}

// DryRun observes and plans without writing: the daemon's run while a follower (ha). A
// rotation on disk is left for when this instance leads.
func (r settlingRunner) DryRun(ctx context.Context) (*reconcile.Result, error) {
	return r.eng.DryRun(ctx)
}

// Apply settles a rotation on disk, if any, then runs the engine.
func (r settlingRunner) Apply(ctx context.Context) (*reconcile.Result, error) {
	err := r.s.settleRotation(ctx, r.eng, func(action string) {
		r.eng.Log.Info("rotation recovery", zap.String("action", action))
	})
	if err != nil {
		return nil, fmt.Errorf("a secret rotation on disk could not be settled, so the reconcile run did not start: %w", err)
	}
	return r.eng.Apply(ctx)
}

// scheduledRotation is the scheduled rotation (spec section 6) with the config in force; the
// daemon runs it exclusively, counts and alerts its result.
func (s *session) scheduledRotation(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	deps, err := s.daemonRotationDeps(cfg, log)
	if err != nil {
		return err
	}
	_, err = rotate.Run(ctx, deps)
	return err
}

// startupRecovery finishes or rolls back a rotation a crash interrupted, before the daemon's
// first run. It returns "" when there was none, else the daemon's rotation result.
func (s *session) startupRecovery(ctx context.Context, cfg *config.Config, log *zap.Logger) (string, error) {
	deps, err := s.daemonRotationDeps(cfg, log)
	if err != nil {
		return "", err
	}
	out, err := rotate.Recover(ctx, deps)
	for _, a := range out.Actions {
		log.Info("rotation recovery", zap.String("action", a))
	}
	switch {
	case err != nil:
		return daemon.RotationFailed, err
	case out.Result == rotate.Rotated:
		return daemon.RotationSuccess, nil
	case out.Result == rotate.RolledBack:
		return daemon.RotationRolledBack, errors.New("a rotation interrupted by a crash was rolled back")
	}
	return "", nil
}

// daemonRotationDeps builds a rotation's dependencies for the daemon from cfg.
func (s *session) daemonRotationDeps(cfg *config.Config, log *zap.Logger) (rotate.Deps, error) {
	eng, err := newFencedEngine(cfg, log, s.gate)
	if err != nil {
		return rotate.Deps{}, err
	}
	return s.rotationDeps(eng)
}

// reloadConfig re-reads the config file for a SIGHUP reload, as loadConfig does at start,
// logging warnings instead of printing them.
func (s *session) reloadConfig(log *zap.Logger) (*config.Config, error) {
	cfg, warnings, err := config.Load(s.configPath, s.environ)
	for _, w := range warnings {
		log.Warn("config warning", zap.String("key", w.Key), zap.String("warning", w.Message))
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.RequireSecrets(); err != nil {
		return nil, err
	}
	return cfg, nil
}
