package rotate

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
)

// Holding is which of an intent's secrets a side holds.
type Holding int

// Holdings.
const (
	HoldsOther Holding = iota // neither: someone else changed it (or MinIO's target is gone)
	HoldsOld
	HoldsNew
)

func (h Holding) String() string {
	switch h {
	case HoldsOld:
		return "old"
	case HoldsNew:
		return "new"
	}
	return "other"
}

// Decision is what recovery does with an interrupted rotation.
type Decision int

// Decisions.
const (
	// Forward finishes the rotation: both sides end on the new secret.
	Forward Decision = iota
	// Back rolls it back: both sides end on the old secret.
	Back
	// Abandon drops the intent without touching either side: authentik holds neither
	// secret, so someone changed it since; akminio apply makes MinIO follow authentik.
	Abandon
)

// Decide chooses, from the persisted step and what each side actually holds (authentik's
// provider secret, MinIO's exported one), how to settle an interrupted rotation:
//
//	authentik  MinIO        step           decision
//	other      any          any            Abandon (authentik is the source of the secret)
//	new        new          any            Forward (nothing left but closing the intent)
//	any        any          rolling_back   Back    (a failure was being undone: MinIO may
//	                                                refuse the new config, so never retry it)
//	new        old/other    other steps    Forward (authentik was written and read back, so the
//	                                                rotation got past its point of no return:
//	                                                write MinIO, restart, confirm)
//	old        new          other steps    Forward (impossible by the protocol's order; setting
//	                                                authentik is one PATCH, no restart)
//	old        old/other    other steps    Back    (at most MinIO's stored config holds the new
//	                                                secret: written back when MinIOTouched)
//
// A forward recovery that fails rolls back like a failed rotation.
func Decide(step string, authentik, minio Holding) Decision {
	switch {
	case authentik == HoldsOther:
		return Abandon
	case authentik == HoldsNew && minio == HoldsNew:
		return Forward
	case step == StepRollingBack:
		return Back
	case authentik == HoldsNew, minio == HoldsNew:
		return Forward
	}
	return Back
}

// holding says which of in's secrets s is.
func holding(s config.Secret, in *Intent) Holding {
	switch s {
	case in.New:
		return HoldsNew
	case in.Old:
		return HoldsOld
	}
	return HoldsOther
}

// Recover settles a rotation that a crash (or a failed rollback) left in state_dir: it
// finishes or rolls it back from what each side actually holds (see Decide). Every command
// that writes calls it first: `akminio apply` and `rotate-secret`, and the daemon at start.
// Without an intent it returns NoIntent at once, without a request, and takes the locks
// only to remove a temporary copy of an intent that a crash left (see dropTemps).
//
// Recovery is not subject to mode or minio.restart: it completes or undoes a write akminio
// itself began. The error is non-nil only when the rotation could not be settled (Failed,
// the intent stays) or another process holds the lock (Refused); a settled rotation is
// described by the Outcome (Rotated, RolledBack or Abandoned) with a nil error.
func Recover(ctx context.Context, deps Deps) (Outcome, error) {
	d := deps.withDefaults()
	in, err := LoadIntent(d.StateDir)
	if err != nil {
		return noIntent(err)
	}
	if in == nil {
		return noIntent(d.dropTemps())
	}
	l, err := d.lock()
	if err != nil {
		return Outcome{Result: Refused}, &Error{Result: Refused, Err: fmt.Errorf("an interrupted rotation is on disk and cannot be recovered now: %w", err)}
	}
	defer l.release()
	if in, err = LoadIntent(d.StateDir); err != nil || in == nil { // settled meanwhile?
		return noIntent(err)
	}
	return d.recoverIntent(ctx, in)
}

// dropTemps removes temporary copies of an intent (they hold secrets) that a crash while
// the first intent of a rotation was being written left, with no intent beside them: that
// rotation never touched either side. While another process holds the locks (it may be
// writing its intent right now), they are left to that process.
func (d Deps) dropTemps() error {
	tmps, err := statedir.TempFiles(IntentPath(d.StateDir))
	if err != nil || len(tmps) == 0 {
		return err
	}
	l, err := d.lock()
	if errors.Is(err, ErrInProgress) {
		return nil
	}
	if err != nil {
		return err
	}
	defer l.release()
	if err := removeTemps(d.StateDir); err != nil {
		return err
	}
	d.Log.Info("removed the temporary copy of a rotation intent that a crash left", zap.Int("files", len(tmps)))
	return statedir.SyncDir(d.StateDir)
}

func noIntent(err error) (Outcome, error) {
	if err != nil {
		return Outcome{Result: Failed}, &Error{Result: Failed, Err: err}
	}
	return Outcome{Result: NoIntent}, nil
}

// recoverIntent settles in; the caller holds the locks.
func (d Deps) recoverIntent(ctx context.Context, in *Intent) (Outcome, error) {
	d.redact(in.Old, in.New)
	out := &Outcome{Recovered: true}
	r := &rotation{d: d, in: in, out: out}
	failed := func(err error) (Outcome, error) {
		out.Result = Failed
		return *out, &Error{Result: Failed, Err: fmt.Errorf("recover the interrupted rotation (intent %s kept): %w", IntentPath(d.StateDir), err)}
	}
	ak, err := d.Authentik.ClientSecret(ctx, in.ProviderPK)
	if err != nil {
		return failed(fmt.Errorf("read the client secret of authentik's provider %q: %w", in.Provider, err))
	}
	oid, err := r.readMinIO(ctx)
	if err != nil {
		return failed(err)
	}
	var mc config.Secret
	if oid != nil {
		mc = oid.ClientSecret
	}
	ah, mh := holding(ak, in), holding(mc, in)
	dec := Decide(in.Step, ah, mh)
	out.did("found an interrupted rotation (step %s; authentik holds the %s secret, MinIO the %s one)", in.Step, ah, mh)
	d.Log.Warn("recovering an interrupted client secret rotation", zap.String("step", in.Step),
		zap.Stringer("authentik", ah), zap.Stringer("minio", mh), zap.Time("started_at", in.StartedAt))
	switch dec {
	case Abandon:
		if err := removeIntent(d.StateDir); err != nil {
			return failed(err)
		}
		out.Result = Abandoned
		out.did("dropped it: authentik's provider %q holds neither secret (changed by someone else); akminio apply makes MinIO follow authentik", in.Provider)
		return *out, nil
	case Forward:
		if err := r.converge(ctx, in.New, false); err != nil {
			o, rerr := r.rollback(ctx, err)
			if o.Result == RolledBack {
				return o, nil
			}
			return o, rerr
		}
		if err := r.finish(); err != nil {
			return failed(err)
		}
		return *out, nil
	}
	cause := errors.New("the rotation was interrupted before authentik held the new secret")
	if in.LastError != "" {
		cause = errors.New(in.LastError) // already free of secrets (see hide)
	}
	o, err := r.rollback(ctx, cause)
	if o.Result == RolledBack {
		return o, nil
	}
	return o, err
}
