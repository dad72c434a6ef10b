package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/access"
	"github.com/akminio/akminio/reconcile/render"
)

// accessFlags are plan's --access flags and apply's --refuse-access-loss.
type accessFlags struct {
	show   *bool
	users  *string
	limit  *int
	refuse *bool
}

func defineAccessFlags(fs *flag.FlagSet, apply bool) *accessFlags {
	f := &accessFlags{
		users: fs.String("access-users", "canary", "users of the access table: canary (verify.users) or all (every member of the groups the bindings or the current expression name)"),
		limit: fs.Int("access-limit", access.DefaultLimit, "at most this many users with --access-users all"),
	}
	if apply {
		f.refuse = fs.Bool("refuse-access-loss", false, "apply nothing, and exit 1, when a listed user would lose a policy")
	} else {
		f.show = fs.Bool("access", false, "also show, per user, the policies now and after the plan (gains and losses)")
	}
	return f
}

func (f *accessFlags) wanted() bool {
	return f.show != nil && *f.show || f.refuse != nil && *f.refuse
}

// table computes the access table for eng's config.
func (f *accessFlags) table(ctx context.Context, s *session, eng *reconcile.Engine) (access.Table, error) {
	if *f.users != "canary" && *f.users != "all" {
		return access.Table{}, fmt.Errorf("--access-users %q: want canary or all", *f.users)
	}
	src, ok := eng.Authentik.(access.Source)
	if !ok {
		return access.Table{}, errors.New("the authentik adapter cannot list users")
	}
	o := access.Options{Users: eng.Users, All: *f.users == "all", Limit: *f.limit}
	if isTerminal(s.stderr) {
		o.Progress = func(done, total int) {
			if total >= 20 {
				fmt.Fprintf(s.stderr, "\raccess: previewed %d of %d users", done, total)
				if done == total {
					fmt.Fprintln(s.stderr)
				}
			}
		}
	}
	return access.Build(ctx, src, eng.Desired, eng.Claim, o)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writePlanAccess prints the plan and the access table in the chosen format.
func (s *session) writePlanAccess(format string, p reconcile.Plan, t access.Table) error {
	return s.writeScrubbed(func(w io.Writer) error {
		switch format {
		case "text":
			if err := render.Text(w, p); err != nil {
				return err
			}
			return access.WriteText(w, t)
		case "json":
			var b bytes.Buffer
			if err := render.JSON(&b, p); err != nil {
				return err
			}
			out, err := access.AddToJSON(b.Bytes(), t)
			if err != nil {
				return err
			}
			_, err = w.Write(out)
			return err
		default:
			return fmt.Errorf("--output %q: want text or json", format)
		}
	})
}
