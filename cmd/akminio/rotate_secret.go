package main

import (
	"context"
	"errors"
	"flag"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/rotate"
)

// rotateSecretCommand is the `rotate-secret` command.
func rotateSecretCommand() command {
	return command{
		name:    "rotate-secret",
		summary: "rotate the OAuth2 client secret now (0 rotated, 1 failed and rolled back, 78 refused by the config)",
		setup: func(*flag.FlagSet) runFunc {
			return runRotateSecret
		},
	}
}

// runRotateSecret runs `akminio rotate-secret`: an interrupted rotation on disk is settled
// first, then the secret is rotated (spec section 6). Exit 0 rotated, 1 failed (rolled back,
// or not: the message says), 78 for an invalid config or a refusal the config causes
// (mode report, restart never, no signing_key).
func runRotateSecret(ctx context.Context, s *session) int {
	eng, code := s.engine()
	if eng == nil {
		return code
	}
	d, err := s.rotationDeps(eng)
	if err != nil {
		s.errorf("akminio rotate-secret: %v\n", err)
		return exitFailure
	}
	out, err := rotate.Run(ctx, d)
	s.printActions(out)
	if err != nil {
		s.errorf("akminio rotate-secret: %v\n", err)
		var rerr *rotate.Error
		if errors.As(err, &rerr) && rerr.Config {
			return exitConfig
		}
		return exitFailure
	}
	s.printf("client secret rotated at %s\n", out.RotatedAt.Format("2006-01-02T15:04:05Z07:00"))
	return exitOK
}

// rotationDeps builds a rotation's dependencies from an engine. The rotation's secrets are
// added to the session's scrubber as soon as they are known, so nothing printed or logged
// can show them.
func (s *session) rotationDeps(eng *reconcile.Engine) (rotate.Deps, error) {
	d, err := rotate.FromEngine(eng)
	if err != nil {
		return d, err
	}
	d.Redact = s.scrubber.Add
	if s.rotationHooks != nil {
		s.rotationHooks(s.environ, &d)
	}
	return d, nil
}

// printActions prints what a rotation or recovery did, one line each.
func (s *session) printActions(out rotate.Outcome) {
	for _, a := range out.Actions {
		s.printf("rotation: %s\n", a)
	}
}

// recoverRotation settles a rotation that a crash interrupted, before a command that
// writes (apply) observes anything. It returns exitOK to go on, or the exit status after
// printing why it cannot.
func (s *session) recoverRotation(ctx context.Context, eng *reconcile.Engine) int {
	err := s.settleRotation(ctx, eng, func(action string) { s.printf("rotation: %s\n", action) })
	if err != nil {
		s.errorf("akminio: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// settleRotation finishes or rolls back a rotation left on disk, if any (rotate.Recover),
// reporting each action it took. A nil error means no rotation is in flight any more.
func (s *session) settleRotation(ctx context.Context, eng *reconcile.Engine, report func(action string)) error {
	d, err := s.rotationDeps(eng)
	if err != nil {
		return err
	}
	out, err := rotate.Recover(ctx, d)
	for _, a := range out.Actions {
		report(a)
	}
	return err
}
