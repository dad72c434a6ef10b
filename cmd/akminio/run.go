package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile/rotate"
)

// runCommand is the `run` command.
func runCommand() command {
	return command{
		name:    "run",
		summary: "the daemon: reconcile on start, on the schedule and on events; serve HTTP",
		setup: func(*flag.FlagSet) runFunc {
			return runDaemon
		},
	}
}

// runDaemon wires the daemon: config, logger, a registry of its own, the engine factory,
// SIGHUP for reloads. SIGTERM/SIGINT end ctx (see run in main.go); a clean shutdown exits 0.
func runDaemon(ctx context.Context, s *session) int {
	cfg, code := s.loadStateConfig()
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

// newSettlingRunner is the daemon's runner for cfg: the engine, with a rotation on disk
// settled before each run (daemon.SettlingRunner).
func (s *session) newSettlingRunner(cfg *config.Config, log *zap.Logger) (daemon.Runner, error) {
	eng, err := newFencedEngine(cfg, log, s.gate)
	if err != nil {
		return nil, err
	}
	return daemon.SettlingRunner{Engine: eng, Deps: s.rotationDeps}, nil
}

// scheduledRotation is the scheduled rotation with the config in force.
func (s *session) scheduledRotation(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	deps, err := s.daemonRotationDeps(cfg, log)
	if err != nil {
		return err
	}
	return daemon.Rotate(ctx, deps)
}

// startupRecovery settles a rotation a crash interrupted, before the daemon's first run.
func (s *session) startupRecovery(ctx context.Context, cfg *config.Config, log *zap.Logger) (string, error) {
	deps, err := s.daemonRotationDeps(cfg, log)
	if err != nil {
		return "", err
	}
	return daemon.RecoverRotation(ctx, deps, log)
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
	if err := cfg.RequireStateDir(); err != nil {
		return nil, err
	}
	return cfg, nil
}
