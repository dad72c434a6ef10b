package main

import (
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/logging"
	"github.com/akminio/akminio/lease"
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
	// gate, when set (`akminio run` with ha on), fences every write of the engines the
	// session builds (lease.Fence).
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
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintln(s.stderr, p)
			}
		} else {
			fmt.Fprintf(s.stderr, "%s: %v\n", s.configPath, err)
		}
		return nil, exitConfig
	}
	s.scrubber.Set(cfg.SecretValues()...)
	return cfg, exitOK
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
