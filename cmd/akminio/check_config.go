package main

import (
	"context"
	"flag"
)

// checkConfigCommand is the `check-config` command.
func checkConfigCommand() command {
	return command{
		name:    "check-config",
		usage:   "[--online]",
		summary: "validate the config; with --online also reach authentik and MinIO with its credentials",
		setup: func(fs *flag.FlagSet) runFunc {
			online := fs.Bool("online", false, "also reach authentik and MinIO with the configured credentials")
			return func(ctx context.Context, s *session) int {
				return checkConfig(ctx, s, *online)
			}
		},
	}
}

// checkConfig exits 0 for a valid config, 78 for an invalid one (one problem per line on
// stderr). With online it then needs the secrets (missing ones are problems, 78) and reaches
// both backends: a backend that cannot be reached, or refuses the credentials, gives exit
// status 1 with one line per backend saying which.
func checkConfig(ctx context.Context, s *session, online bool) int {
	cfg, code := s.loadConfig(online)
	if cfg == nil {
		return code
	}
	if !online {
		s.printf("%s: valid\n", cfg.Path)
		return exitOK
	}
	failed := false
	for _, r := range checkBackends(ctx, cfg) {
		if r.err != nil {
			failed = true
			s.errorf("%s: FAILED: %v\n", r.system, r.err)
		} else {
			s.printf("%s: ok (%s)\n", r.system, r.detail)
		}
	}
	if failed {
		return exitFailure
	}
	s.printf("%s: valid, both backends reachable\n", cfg.Path)
	return exitOK
}
