package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/access"
	"github.com/akminio/akminio/reconcile/render"
)

// applyCommand is the `apply` command.
func applyCommand() command {
	return command{
		name:    "apply",
		usage:   "[--output text|json] [--refuse-access-loss [--access-users canary|all]]",
		summary: "observe, plan, repair once, verify (0 in sync, 1 failed, 2 drift left)",
		setup: func(fs *flag.FlagSet) runFunc {
			output := outputFlag(fs)
			acc := defineAccessFlags(fs, true)
			return func(ctx context.Context, s *session) int {
				eng, code := s.engine()
				if eng == nil {
					return code
				}
				// The access check writes nothing, so it comes first: a refusal changes nothing.
				if acc.wanted() && refuseAccessLoss(ctx, s, eng, acc) {
					return exitFailure
				}
				// An interrupted secret rotation is settled before anything is observed.
				if code := s.recoverRotation(ctx, eng); code != exitOK {
					return code
				}
				res, runErr := eng.Apply(ctx)
				if res != nil {
					if err := s.writeApply(*output, res); err != nil {
						s.errorf("akminio apply: %v\n", err)
						return exitFailure
					}
				}
				switch {
				case runErr != nil:
					s.errorf("akminio apply: %v\n", runErr)
					return exitFailure
				case !res.InSync():
					return exitDrift
				}
				return exitOK
			}
		},
	}
}

// applyJSON is apply's JSON output: the changes applied, then the drift left, in the plan
// format.
type applyJSON struct {
	Applied   []reconcile.Change `json:"applied"`
	Restarted bool               `json:"restarted"`
	Remaining json.RawMessage    `json:"remaining"`
	Drift     int                `json:"drift"`
}

// writeApply prints what apply did and what drift is left. Text: one "applied" line per
// change written, then the remaining plan (or "no drift").
func (s *session) writeApply(format string, res *reconcile.Result) error {
	return s.writeScrubbed(func(w io.Writer) error {
		switch format {
		case "text":
			for _, c := range res.Applied {
				if err := render.Text(w, reconcile.Plan{Changes: []reconcile.Change{c}}); err != nil {
					return err
				}
			}
			if res.Restarted {
				fmt.Fprintf(w, "%-9s  %-6s  %s\n", reconcile.SystemMinIO, "restart", "MinIO restarted to load identity_openid")
			}
			if len(res.Applied) > 0 || res.Restarted {
				fmt.Fprintln(w, "--- after apply:")
			}
			return render.Text(w, res.Report())
		case "json":
			var rem bytes.Buffer
			if err := render.JSON(&rem, res.Report()); err != nil {
				return err
			}
			out := applyJSON{Applied: res.Applied, Restarted: res.Restarted, Remaining: rem.Bytes(), Drift: res.Report().Drift()}
			if out.Applied == nil {
				out.Applied = []reconcile.Change{}
			}
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		default:
			return fmt.Errorf("--output %q: want text or json", format)
		}
	})
}

// refuseAccessLoss plans and computes the access table before anything is written; it
// reports true (and has said why) when a listed user would lose a policy, or when the
// table cannot be computed: then nothing is applied.
func refuseAccessLoss(ctx context.Context, s *session, eng *reconcile.Engine, acc *accessFlags) bool {
	t, err := acc.table(ctx, s, eng)
	if err != nil {
		s.errorf("akminio apply: refusing to apply: cannot tell who would lose access: %v\n", err)
		return true
	}
	losing := t.Losing()
	if len(losing) == 0 {
		return false
	}
	_ = s.writeScrubbed(func(w io.Writer) error { return access.WriteText(w, t) })
	for _, r := range losing {
		s.errorf("akminio apply: %s would lose %s\n", r.Username, strings.Join(r.Losses, ", "))
	}
	s.errorf("akminio apply: refusing to apply (--refuse-access-loss): %d user(s) would lose access; nothing was changed\n", len(losing))
	return true
}
