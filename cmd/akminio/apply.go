package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/akminio/akminio/reconcile"
)

func init() {
	register(command{
		name:    "apply",
		usage:   "[--output text|json]",
		summary: "observe, plan, repair once, verify (0 in sync, 1 failed, 2 drift left)",
		setup: func(fs *flag.FlagSet) runFunc {
			output := outputFlag(fs)
			return func(ctx context.Context, s *session) int {
				eng, code := s.engine()
				if eng == nil {
					return code
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
				case res.Remaining.Drift() > 0:
					return exitDrift
				}
				return exitOK
			}
		},
	})
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
				if err := reconcile.WriteText(w, reconcile.Plan{Changes: []reconcile.Change{c}}); err != nil {
					return err
				}
			}
			if res.Restarted {
				fmt.Fprintf(w, "%-9s  %-6s  %s\n", reconcile.SystemMinIO, "restart", "MinIO restarted to load identity_openid")
			}
			if len(res.Applied) > 0 || res.Restarted {
				fmt.Fprintln(w, "--- after apply:")
			}
			return reconcile.WriteText(w, res.Remaining)
		case "json":
			var rem bytes.Buffer
			if err := reconcile.WriteJSON(&rem, res.Remaining); err != nil {
				return err
			}
			out := applyJSON{Applied: res.Applied, Restarted: res.Restarted, Remaining: rem.Bytes(), Drift: res.Remaining.Drift()}
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
