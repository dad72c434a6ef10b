package daemon

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/rotate"
)

// SettlingRunner is the daemon's Runner over an engine: before each reconcile run it settles
// a rotation left on disk (one whose rollback failed, or that a crash interrupted), as
// `akminio apply` does, so that no run writes identity_openid while a rotation is
// unresolved. A rotation that cannot be settled fails the run, which alerts.
type SettlingRunner struct {
	Engine *reconcile.Engine
	// Deps builds a rotation's dependencies from the engine (the caller adds its scrubber
	// and, in test builds, its hooks).
	Deps func(*reconcile.Engine) (rotate.Deps, error)
}

var _ Runner = SettlingRunner{}

// Apply settles a rotation on disk, if any, then runs the engine.
func (r SettlingRunner) Apply(ctx context.Context) (*reconcile.Result, error) {
	err := func() error {
		d, err := r.Deps(r.Engine)
		if err != nil {
			return err
		}
		out, err := rotate.Recover(ctx, d)
		for _, a := range out.Actions {
			r.Engine.Log.Info("rotation recovery", zap.String("action", a))
		}
		return err
	}()
	if err != nil {
		return nil, fmt.Errorf("a secret rotation on disk could not be settled, so the reconcile run did not start: %w", err)
	}
	return r.Engine.Apply(ctx)
}

// RecoverRotation finishes or rolls back a rotation a crash interrupted (rotate.Recover),
// for Options.Recover: it returns "" when there was none, else the Rotation* result.
//
//	rotate.Recover    result
//	error             RotationFailed
//	Rotated           RotationSuccess
//	RolledBack        RotationRolledBack (with an error saying so)
//	nothing on disk   ""
func RecoverRotation(ctx context.Context, deps rotate.Deps, log *zap.Logger) (string, error) {
	out, err := rotate.Recover(ctx, deps)
	for _, a := range out.Actions {
		log.Info("rotation recovery", zap.String("action", a))
	}
	switch {
	case err != nil:
		return RotationFailed, err
	case out.Result == rotate.Rotated:
		return RotationSuccess, nil
	case out.Result == rotate.RolledBack:
		return RotationRolledBack, errors.New("a rotation interrupted by a crash was rolled back")
	}
	return "", nil
}

// Rotate runs a scheduled rotation (spec section 6), for Options.Rotate.
func Rotate(ctx context.Context, deps rotate.Deps) error {
	_, err := rotate.Run(ctx, deps)
	return err
}

// DryRun observes and plans without writing: the daemon's run while a follower (ha). A
// rotation on disk is left for when this instance leads.
func (r SettlingRunner) DryRun(ctx context.Context) (*reconcile.Result, error) {
	return r.Engine.DryRun(ctx)
}

var _ Observer = SettlingRunner{}
