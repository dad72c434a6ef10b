package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/madmin-go/v3"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// converge brings both sides to want (the intent's new or old secret) and confirms it:
// authentik first, then MinIO (write, restart, read back). A side that already holds want
// is left alone, except MinIO while its stored config may differ from its export
// (Intent.MinIOTouched) and want is the old secret. forward says this is the rotation
// itself: its steps are persisted and their fault points fire.
func (r *rotation) converge(ctx context.Context, want config.Secret, forward bool) error {
	if err := r.setAuthentik(ctx, want); err != nil {
		return err
	}
	if forward {
		if err := r.step(StepAuthentikSet); err != nil {
			return err
		}
	}
	if err := r.setMinIO(ctx, want, forward); err != nil {
		return err
	}
	if err := r.confirm(ctx, want); err != nil {
		return err
	}
	if forward {
		return r.step(StepConfirmed)
	}
	return nil
}

// setAuthentik PATCHes the provider's client_secret to want unless it holds it, and reads
// it back.
func (r *rotation) setAuthentik(ctx context.Context, want config.Secret) error {
	ak, pk := r.d.Authentik, r.in.ProviderPK
	cur, err := ak.ClientSecret(ctx, pk)
	if err != nil {
		return fmt.Errorf("read the client secret of authentik's provider %q: %w", r.in.Provider, err)
	}
	if cur == want {
		return nil
	}
	if err := r.mayWrite(ctx, "authentik set client secret of provider "+r.in.Provider); err != nil {
		return err
	}
	if err := ak.SetClientSecret(ctx, pk, want); err != nil {
		return fmt.Errorf("set the %s client secret on authentik's provider %q: %w", r.label(want), r.in.Provider, err)
	}
	back, err := ak.ClientSecret(ctx, pk)
	if err != nil {
		return fmt.Errorf("read back the client secret of authentik's provider %q: %w", r.in.Provider, err)
	}
	if back != want {
		return fmt.Errorf("authentik's provider %q reads back the %s secret after it was set to the %s one", r.in.Provider, r.label(back), r.label(want))
	}
	r.out.did("authentik: provider %q holds the %s client secret", r.in.Provider, r.label(want))
	r.d.Log.Info("rotation: authentik holds the "+r.label(want)+" client secret", zap.String("provider", r.in.Provider))
	return nil
}

// setMinIO writes want to MinIO's identity_openid client_secret and restarts MinIO, unless
// the export already shows want and nothing else may be stored.
func (r *rotation) setMinIO(ctx context.Context, want config.Secret, forward bool) error {
	oid, err := r.readMinIO(ctx)
	if err != nil {
		return err
	}
	if oid != nil && oid.ClientSecret == want && !(want == r.in.Old && r.in.MinIOTouched) {
		return nil
	}
	if err := r.mayWrite(ctx, "minio set client secret of "+r.in.Target); err != nil {
		return err
	}
	touched := r.in.MinIOTouched
	r.in.MinIOTouched = true
	if forward {
		err = r.step(StepMinIOWriting)
	} else {
		err = r.save()
	}
	if err != nil {
		return err
	}
	if _, err := r.d.MinIO.SetClientSecret(ctx, r.in.Target, want); err != nil {
		err = fmt.Errorf("write the %s client secret to MinIO's %s: %w", r.label(want), r.in.Target, err)
		if !refusedUnstored(err) {
			return err // it may have been stored: MinIOTouched stays
		}
		r.in.MinIOTouched = touched
		return errors.Join(err, r.save())
	}
	r.out.did("MinIO: wrote the %s client secret to %s", r.label(want), r.in.Target)
	if forward {
		if err := r.step(StepMinIOWritten); err != nil {
			return err
		}
	}
	if err := r.mayWrite(ctx, "minio restart MinIO"); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, r.d.RestartTimeout)
	err = r.d.MinIO.Restart(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("restart MinIO to load the %s client secret: %w", r.label(want), err)
	}
	r.out.did("MinIO: restarted")
	r.d.Log.Info("rotation: MinIO restarted to load the "+r.label(want)+" client secret", zap.String("target", r.in.Target))
	if forward {
		return r.step(StepMinIORestarted)
	}
	return nil
}

// refusedUnstored reports whether MinIO refused a SetConfigKV before storing anything: it
// answered that the config is invalid (its validation, which fetches config_url, runs
// before the save) or that the credentials may not write. Any other error (no answer, a
// timeout, an internal error, which MinIO also answers when the save succeeded but its
// history entry failed) may come after the new value was stored.
func refusedUnstored(err error) bool {
	var resp madmin.ErrorResponse
	if !errors.As(err, &resp) {
		return false
	}
	switch resp.Code {
	case "XMinioAdminConfigBadJSON", "AccessDenied":
		return true
	}
	return false
}

// confirm reads both sides back and checks they hold want; once MinIO's export shows it,
// its stored config and its export agree again.
func (r *rotation) confirm(ctx context.Context, want config.Secret) error {
	cur, err := r.d.Authentik.ClientSecret(ctx, r.in.ProviderPK)
	if err != nil {
		return fmt.Errorf("confirm: read the client secret of authentik's provider %q: %w", r.in.Provider, err)
	}
	if cur != want {
		return fmt.Errorf("confirm: authentik's provider %q holds the %s secret, not the %s one", r.in.Provider, r.label(cur), r.label(want))
	}
	oid, err := r.readMinIO(ctx)
	if err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	if oid == nil {
		return fmt.Errorf("confirm: MinIO's %s is not configured after the restart", r.in.Target)
	}
	if oid.ClientSecret != want {
		return fmt.Errorf("confirm: MinIO's %s holds the %s secret after the restart, not the %s one", r.in.Target, r.label(oid.ClientSecret), r.label(want))
	}
	if r.in.MinIOTouched {
		r.restarted = true
		r.in.MinIOTouched = false
		if err := r.save(); err != nil {
			return err
		}
	}
	return nil
}

// readMinIO reads the target from MinIO's config export. Just after a restart MinIO may show
// the target unconfigured for a moment: a nil read is retried for a few seconds.
func (r *rotation) readMinIO(ctx context.Context) (*reconcile.ObservedOpenIDTarget, error) {
	for i := 0; ; i++ {
		oid, err := r.d.MinIO.ReadOpenID(ctx, r.in.Target)
		if err != nil {
			return nil, fmt.Errorf("read MinIO's %s: %w", r.in.Target, err)
		}
		if oid != nil || i >= 20 {
			return oid, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read MinIO's %s: %w", r.in.Target, ctx.Err())
		case <-time.After(r.d.ConfirmPoll):
		}
	}
}

// rollback puts the old secret back after cause, even when ctx has ended (bounded by
// RollbackTimeout). It returns RolledBack when both sides are confirmed on the old secret,
// Failed (intent kept) when not.
func (r *rotation) rollback(ctx context.Context, cause error) (Outcome, error) {
	r.d.Log.Error("rotation failed, putting the old client secret back", zap.String("error", hide(cause.Error(), r.in)))
	r.out.did("rolling back, because: %s", hide(cause.Error(), r.in))
	r.in.LastError = hide(cause.Error(), r.in)
	saveErr := r.step(StepRollingBack)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.d.RollbackTimeout)
	defer cancel()
	err := r.converge(rctx, r.in.Old, false)
	if err == nil {
		err = r.closeBack()
	}
	if err != nil {
		r.out.Result = Failed
		return *r.out, &Error{Result: Failed, Err: fmt.Errorf(
			"rotation failed: %w; putting the old secret back failed too: %w; the intent stays in %s and the next akminio apply, run or rotate-secret finishes or rolls back the rotation",
			cause, errors.Join(err, saveErr), IntentPath(r.d.StateDir))}
	}
	r.out.Result = RolledBack
	r.out.did("rolled back: authentik and MinIO hold the old client secret again")
	r.d.Log.Warn("rotation rolled back: both sides hold the old client secret again")
	return *r.out, &Error{Result: RolledBack, Err: fmt.Errorf("rotation failed and was rolled back (authentik and MinIO hold the old secret again): %w", cause)}
}

// closeBack ends a rotation whose old secret is back on both sides: the intent is removed.
func (r *rotation) closeBack() error {
	r.fault(StepRolledBack)
	if err := r.clearPending(reconcile.State{}, false); err != nil {
		return err
	}
	return removeIntent(r.d.StateDir)
}

// finish ends a rotation whose new secret is confirmed on both sides: the time is recorded
// in state.json, then the intent is removed. In this order a crash in between leaves an
// intent whose recovery finds both sides new and only closes it again; the other order
// would lose the rotation time.
func (r *rotation) finish() error {
	st, err := reconcile.LoadState(r.d.StateDir)
	if err != nil {
		return err
	}
	now := r.d.Now().UTC()
	st.SecretRotatedAt = now
	if err := r.clearPending(st, true); err != nil {
		return err
	}
	r.fault(StepRecorded)
	if err := removeIntent(r.d.StateDir); err != nil {
		return err
	}
	r.fault(StepCleared)
	r.out.Result = Rotated
	r.out.RotatedAt = now
	r.out.did("rotated: authentik and MinIO hold the new client secret")
	r.d.Log.Info("client secret rotated", zap.String("provider", r.in.Provider), zap.String("target", r.in.Target))
	return nil
}

// clearPending saves st (or, unless force, the current state) with restart_pending cleared
// when this rotation restarted MinIO: MinIO has loaded whatever was written before, and
// the engine's fingerprint of what it wants now includes the secret just confirmed.
func (r *rotation) clearPending(st reconcile.State, force bool) error {
	if !force {
		var err error
		if st, err = reconcile.LoadState(r.d.StateDir); err != nil {
			return err
		}
		if st.RestartPending == nil || !r.restarted {
			return nil
		}
	}
	if r.restarted {
		st.RestartPending = nil
	}
	return reconcile.SaveState(r.d.StateDir, st)
}

// mayWrite asks the write gate, if any, before a write step.
func (r *rotation) mayWrite(ctx context.Context, step string) error {
	if r.d.Gate == nil {
		return nil
	}
	return r.d.Gate.MayWrite(ctx, step)
}
