package main

import (
	"errors"
	"fmt"
	"github.com/akminio/akminio/lease"
	"io"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/logging"
	"github.com/akminio/akminio/reconcile/rotate"
)

// session is what a running command gets: its streams, environment and config path, and
// helpers to load the config and build a logger the same way in every command.
type session struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	configPath     string
	// scrubber holds the loaded secrets; use s.printf/s.errorf for anything that might
	// carry text from a remote system, and s.logger for logs.
	scrubber *logging.Scrubber
	// rotationHooks, set only in binaries built with -tags akminio_testhooks (see
	// rotationTestHooks), sets a rotation's fault hook and bounds from the environment.
	rotationHooks func(environ []string, d *rotate.Deps)
	// gate, when set (`akminio run` with ha on), fences every write of the engines the
	// session builds (lease.Fence, Engine.Gate).
	gate lease.Gate
}

// loadConfig loads and validates the config, printing warnings ("warning: key: ...") and
// then problems (one per line, key path first) to stderr. With needSecrets, a missing
// authentik token or MinIO key is a problem too. It returns (nil, exitConfig) on failure.
func (s *session) loadConfig(needSecrets bool) (*config.Config, int) {
	return s.loadWith(config.Load, needSecrets)
}

// loadWith is loadConfig with another loader (config.LoadConnection for import).
func (s *session) loadWith(load func(string, []string) (*config.Config, []config.Warning, error), needSecrets bool) (*config.Config, int) {
	cfg, warnings, err := load(s.configPath, s.environ)
	for _, w := range warnings {
		fmt.Fprintf(s.stderr, "warning: %s\n", w)
	}
	if err == nil && needSecrets {
		err = cfg.RequireSecrets()
	}
	if err != nil {
		return nil, s.configProblems(err)
	}
	s.scrubber.Set(cfg.SecretValues()...)
	return cfg, exitOK
}

// loadStateConfig is loadConfig(true) for the commands that keep state in state_dir (plan,
// apply, run, rotate-secret): a state_dir others could write to is refused too.
func (s *session) loadStateConfig() (*config.Config, int) {
	cfg, code := s.loadConfig(true)
	if cfg == nil {
		return nil, code
	}
	if err := cfg.RequireStateDir(); err != nil {
		return nil, s.configProblems(err)
	}
	return cfg, exitOK
}

// configProblems prints a config error, one problem a line, and returns exitConfig.
func (s *session) configProblems(err error) int {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(s.stderr, p)
		}
	} else {
		fmt.Fprintf(s.stderr, "%s: %v\n", s.configPath, err)
	}
	return exitConfig
}

// logger builds the zap logger cfg.Log describes, writing to stderr through the scrubber.
func (s *session) logger(cfg *config.Config) (*zap.Logger, error) {
	return logging.New(cfg.Log, s.stderr, s.scrubber)
}

// printf writes to stdout with every loaded secret scrubbed.
func (s *session) printf(format string, args ...any) {
	_, _ = io.WriteString(s.stdout, s.scrubber.Scrub(fmt.Sprintf(format, args...)))
}

// errorf writes to stderr with every loaded secret scrubbed.
func (s *session) errorf(format string, args ...any) {
	_, _ = io.WriteString(s.stderr, s.scrubber.Scrub(fmt.Sprintf(format, args...)))
}
