package rotate

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Run rotates the client secret now. An interrupted rotation found on disk is recovered
// first (see Recover); when that recovery ends with a new secret in place, Run stops there
// (the rotation that was asked for earlier is done), otherwise it goes on with a fresh one.
//
// The error is nil exactly when Result is Rotated; otherwise it is an *Error.
func Run(ctx context.Context, deps Deps) (Outcome, error) {
	d := deps.withDefaults()
	if err := d.checkConfig(); err != nil {
		return Outcome{Result: Refused}, err
	}
	l, err := d.lock()
	if err != nil {
		return Outcome{Result: Refused}, &Error{Result: Refused, Err: fmt.Errorf("rotation refused: %w", err)}
	}
	defer l.release()

	var out Outcome
	in, err := LoadIntent(d.StateDir)
	if err != nil {
		return Outcome{Result: Failed}, &Error{Result: Failed, Err: err}
	}
	if in != nil {
		rec, err := d.recoverIntent(ctx, in)
		if err != nil || rec.Result == Rotated {
			return rec, err
		}
		out.Actions = rec.Actions
	}
	old, err := d.preflight(ctx)
	if err != nil {
		out.Result = Refused
		return out, err
	}
	r, err := d.prepare(old, &out)
	if err != nil {
		out.Result = Failed
		return out, &Error{Result: Failed, Err: fmt.Errorf("rotation failed before anything was changed: %w", err)}
	}
	if err := r.converge(ctx, r.in.New, true); err != nil {
		return r.rollback(ctx, err)
	}
	if err := r.finish(); err != nil {
		r.out.Result = Failed
		return *r.out, &Error{Result: Failed, Err: fmt.Errorf("both sides hold the new secret, but the rotation could not be closed: %w; the intent stays in %s and the next akminio apply, run or rotate-secret closes it", err, IntentPath(d.StateDir))}
	}
	return *r.out, nil
}

// provider is what preflight learnt about the provider.
type provider struct {
	pk     int32
	name   string
	secret config.Secret
}

// preflight checks, without changing anything, that a rotation can start: no restart
// pending, the provider exists with a signing key, MinIO answers and holds the provider's
// current client_id and secret.
func (d Deps) preflight(ctx context.Context) (provider, error) {
	name, target := d.Desired.Provider.Name, d.Desired.OpenID.Target
	st, err := reconcile.LoadState(d.StateDir)
	if err != nil {
		return provider{}, refuse(false, "%w", err)
	}
	if st.RestartPending != nil {
		return provider{}, refuse(false, "MinIO has an identity_openid write waiting for a restart (written %s): run akminio apply first", st.RestartPending.WrittenAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	ak, err := d.Authentik.Observe(ctx, d.Desired)
	if err != nil {
		return provider{}, refuse(false, "authentik is not readable: %w", err)
	}
	p := ak.Provider
	switch {
	case p == nil:
		return provider{}, refuse(false, "authentik has no OAuth2 provider named %q: run akminio apply first", name)
	case p.SigningKey == "":
		return provider{}, refuse(false, "authentik's provider %q has no signing key: authentik would sign tokens (HS256) with the client secret, and MinIO would reject every token between the two writes; run akminio apply first (authentik.provider.signing_key is %q)", name, d.Desired.Provider.SigningKey)
	case !p.ClientSecret.IsSet():
		return provider{}, refuse(false, "authentik's provider %q has no client secret: run akminio apply first", name)
	}
	oid, err := d.MinIO.ReadOpenID(ctx, target)
	if err != nil {
		return provider{}, refuse(false, "MinIO is not readable: %w", err)
	}
	switch {
	case oid == nil:
		return provider{}, refuse(false, "MinIO's %s is not configured: run akminio apply first", target)
	case oid.ClientID != p.ClientID:
		return provider{}, refuse(false, "MinIO's %s and authentik's provider %q disagree on client_id: run akminio apply first", target, name)
	case oid.EnvKeys["client_secret"]:
		return provider{}, refuse(false, "MinIO's %s client_secret is set by its environment variable %s: akminio cannot change it; remove the variable from MinIO's environment (akminio apply then sets it)", target, reconcile.EnvVarName(target, "client_secret"))
	case oid.ClientSecret != p.ClientSecret:
		return provider{}, refuse(false, "MinIO's %s and authentik's provider %q disagree on client_secret: run akminio apply first", target, name)
	}
	return provider{pk: p.PK, name: name, secret: p.ClientSecret}, nil
}

// prepare generates the new secret and writes the intent, before either side changes.
func (d Deps) prepare(p provider, out *Outcome) (*rotation, error) {
	secret, err := NewSecret(d.Rand)
	if err != nil {
		return nil, err
	}
	if secret == p.secret { // 62^-128: only a broken random source gets here
		return nil, errors.New("generate secret: the random source returned the current secret")
	}
	d.redact(p.secret, secret)
	now := d.Now().UTC()
	in := &Intent{
		Old: p.secret, New: secret, ProviderPK: p.pk, Provider: p.name,
		Target: d.Desired.OpenID.Target, StartedAt: now,
	}
	r := &rotation{d: d, in: in, out: out}
	if err := r.step(StepPrepared); err != nil {
		return nil, err
	}
	d.Log.Info("client secret rotation started", zap.String("provider", p.name), zap.String("target", in.Target))
	return r, nil
}

func (d Deps) redact(secrets ...config.Secret) {
	if d.Redact != nil {
		d.Redact(secrets...)
	}
}

// rotation is one rotation (or recovery) in progress.
type rotation struct {
	d   Deps
	in  *Intent
	out *Outcome
	// restarted says MinIO was restarted and read back as wanted: whatever was written
	// before is loaded now, so no restart is pending any more.
	restarted bool
}

// step records that the protocol reached name (persisting the intent) and fires the fault
// point of that name.
func (r *rotation) step(name string) error {
	r.in.Step = name
	if err := r.save(); err != nil {
		return err
	}
	r.fault(name)
	return nil
}

func (r *rotation) save() error {
	r.in.UpdatedAt = r.d.Now().UTC()
	return saveIntent(r.d.StateDir, r.in)
}

func (r *rotation) fault(name string) {
	if r.d.Fault != nil {
		r.d.Fault(name)
	}
}

// label names a secret of the intent for messages.
func (r *rotation) label(s config.Secret) string {
	switch s {
	case r.in.New:
		return "new"
	case r.in.Old:
		return "old"
	}
	return "other"
}
