package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/render"
)

// Exit statuses of plan and apply (spec section 3).
const (
	exitDrift = 2 // plan: drift found; apply: drift left
)

// planCommand is the `plan` command.
func planCommand() command {
	return command{
		name:    "plan",
		usage:   "[--output text|json] [--access [--access-users canary|all] [--access-limit N]]",
		summary: "observe both sides, print the plan, change nothing (0 no drift, 2 drift, 1 could not observe)",
		setup: func(fs *flag.FlagSet) runFunc {
			output := outputFlag(fs)
			acc := defineAccessFlags(fs, false)
			return func(ctx context.Context, s *session) int {
				eng, code := s.engine()
				if eng == nil {
					return code
				}
				res, err := eng.DryRun(ctx)
				if err != nil {
					s.errorf("akminio plan: %v\n", err)
					return exitFailure
				}
				write := func() error { return s.writePlan(*output, res.Report()) }
				if acc.wanted() {
					t, err := acc.table(ctx, s, eng)
					if err != nil {
						s.errorf("akminio plan: access: %v\n", err)
						return exitFailure
					}
					write = func() error { return s.writePlanAccess(*output, res.Report(), t) }
				}
				if err := write(); err != nil {
					s.errorf("akminio plan: %v\n", err)
					return exitFailure
				}
				if !res.InSync() {
					return exitDrift
				}
				return exitOK
			}
		},
	}
}

// outputFlag defines --output for plan and apply.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "output format: text or json")
}

// engine loads the config (secrets required, state_dir checked), builds the logger and the engine; on failure
// it has printed why and returns the exit status.
func (s *session) engine() (*reconcile.Engine, int) {
	cfg, code := s.loadStateConfig()
	if cfg == nil {
		return nil, code
	}
	log, err := s.logger(cfg)
	if err != nil {
		s.errorf("akminio: %v\n", err)
		return nil, exitConfig
	}
	eng, err := newEngine(cfg, log)
	if err != nil {
		s.errorf("akminio: %v\n", err)
		return nil, exitConfig
	}
	return eng, exitOK
}

// writePlan prints p in the chosen format, scrubbed of any loaded secret.
func (s *session) writePlan(format string, p reconcile.Plan) error {
	return s.writeScrubbed(func(w io.Writer) error {
		switch format {
		case "text":
			return render.Text(w, p)
		case "json":
			return render.JSON(w, p)
		default:
			return fmt.Errorf("--output %q: want text or json", format)
		}
	})
}

// writeScrubbed renders through write and prints the result with secrets scrubbed.
func (s *session) writeScrubbed(write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	s.printf("%s", b.String())
	return nil
}
