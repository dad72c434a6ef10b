// Package rotate rotates the OAuth2 client secret shared by authentik's provider and MinIO's
// identity_openid target (spec section 6), and finishes or rolls back a rotation that a crash
// interrupted.
//
// authentik holds one secret per provider and MinIO only loads a new one at a restart, so a
// rotation is a cutover. The protocol:
//
//	preflight  mode repair, restart auto, a signing key on the provider, both sides reachable
//	           and holding the same secret, no restart pending; locks in state_dir
//	prepare    a new secret from crypto/rand; the intent (old, new, step) written to
//	           state_dir/rotation.json (0600, fsynced, atomic rename) before either side changes
//	authentik  PATCH client_secret, read back
//	MinIO      SetConfigKV client_secret, restart, read back from the full config export
//	confirm    both sides read back the new secret
//	finish     secret_rotated_at recorded in state.json, the intent removed
//
// A failure after the intent was written puts the old secret back on every side that has (or
// may have) the new one. Recover, run before anything else by every command that writes,
// decides from what each side actually holds (see Decide).
//
// The secrets never reach a log line, an error or the Outcome: they are config.Secret
// everywhere and revealed only on the wire and in the intent file.
package rotate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
	"github.com/akminio/akminio/reconcile"
)

// Authentik is what a rotation needs from authentik; *authentik.Adapter implements it.
type Authentik interface {
	Observe(ctx context.Context, d *reconcile.Desired) (reconcile.AuthentikState, error)
	ClientSecret(ctx context.Context, providerPK int32) (config.Secret, error)
	SetClientSecret(ctx context.Context, providerPK int32, secret config.Secret) error
}

// MinIO is what a rotation needs from MinIO; *minio.Adapter implements it.
type MinIO interface {
	// ReadOpenID reads the target from the full config export (what MinIO loaded at its
	// last start); nil when the target is not configured.
	ReadOpenID(ctx context.Context, target string) (*reconcile.ObservedOpenIDTarget, error)
	SetClientSecret(ctx context.Context, target string, secret config.Secret) (restart bool, err error)
	Restart(ctx context.Context) error
}

// Defaults of the Deps bounds.
const (
	// DefaultRestartTimeout bounds one MinIO restart. MinIO waits for authentik's discovery
	// document before it gets ready, so a MinIO that cannot load the new config never does.
	DefaultRestartTimeout = 2 * time.Minute
	// DefaultRollbackTimeout bounds putting the old secret back, which runs even when the
	// caller's context has ended (Ctrl-C in the middle of a rotation must not leave it half
	// done).
	DefaultRollbackTimeout = 5 * time.Minute
)

// Deps is everything a rotation uses. Build it with FromEngine or fill it by hand (tests).
type Deps struct {
	Desired   *reconcile.Desired // provider name, signing key, target, restart mode
	Mode      config.Mode
	StateDir  string
	Authentik Authentik
	MinIO     MinIO
	Log       *zap.Logger

	Now  func() time.Time // nil: time.Now
	Rand io.Reader        // nil: crypto/rand.Reader
	// Redact, when set, is called with the old and new secrets before either is used, so a
	// log and output scrubber hides them too (the adapters already keep them out of errors).
	Redact func(...config.Secret)
	// Fault is a test hook called right after each step (see Steps); nil in production.
	Fault func(step string)
	// Gate is asked before each write (authentik's secret, MinIO's, the restart); nil: every
	// write is allowed. A refusal fails the rotation before that write (ha: the lease).
	Gate reconcile.WriteGate

	RestartTimeout  time.Duration // 0: DefaultRestartTimeout
	RollbackTimeout time.Duration // 0: DefaultRollbackTimeout
	// ConfirmPoll is the wait between reads of MinIO's export while it still shows the
	// target unconfigured just after a restart; 0: 250 ms.
	ConfirmPoll time.Duration
}

// FromEngine builds Deps from an engine whose adapters are the real ones (or anything else
// that implements Authentik and MinIO).
func FromEngine(e *reconcile.Engine) (Deps, error) {
	ak, ok := e.Authentik.(Authentik)
	if !ok {
		return Deps{}, fmt.Errorf("rotate: the authentik adapter %T cannot read or set a client secret", e.Authentik)
	}
	mc, ok := e.MinIO.(MinIO)
	if !ok {
		return Deps{}, fmt.Errorf("rotate: the MinIO adapter %T cannot read or set a client secret", e.MinIO)
	}
	return Deps{
		Desired: e.Desired, Mode: e.Mode, StateDir: e.StateDir,
		Authentik: ak, MinIO: mc, Log: e.Log, Now: e.Now, Gate: e.Gate,
	}, nil
}

func (d Deps) withDefaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.RestartTimeout <= 0 {
		d.RestartTimeout = DefaultRestartTimeout
	}
	if d.RollbackTimeout <= 0 {
		d.RollbackTimeout = DefaultRollbackTimeout
	}
	if d.ConfirmPoll <= 0 {
		d.ConfirmPoll = 250 * time.Millisecond
	}
	return d
}

// Result says how a rotation ended. The first three are the daemon's metric labels.
type Result string

// Results of Run and Recover.
const (
	Rotated    Result = "success"     // both sides hold the new secret, confirmed
	RolledBack Result = "rolled_back" // it failed; both sides hold the old secret again, confirmed
	Failed     Result = "failed"      // it failed and the sides could not be confirmed equal: the intent is kept
	Refused    Result = "refused"     // nothing was changed (preflight, config, lock)
	Abandoned  Result = "abandoned"   // Recover: authentik holds neither secret; the intent was dropped
	NoIntent   Result = "none"        // Recover: nothing to recover
)

// Outcome is what a rotation did, for the CLI's output and the daemon's metrics and alerts.
// It holds no secret.
type Outcome struct {
	Result Result
	// Recovered says the outcome is that of an interrupted rotation found on disk.
	Recovered bool
	// Actions are what was done, in order, one short sentence each.
	Actions []string
	// RotatedAt is the time recorded in state.json when Result is Rotated.
	RotatedAt time.Time
}

func (o *Outcome) did(format string, args ...any) {
	o.Actions = append(o.Actions, fmt.Sprintf(format, args...))
}

// Error is the error of a rotation that did not rotate. The daemon counts it by RolledBack;
// the CLI exits 78 for a Config refusal.
type Error struct {
	Result Result
	// Config marks a refusal caused by the config itself (mode report, restart never, no
	// signing_key configured): fixing the config, not retrying, is the remedy.
	Config bool
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// RolledBack reports whether the old secret was put back and confirmed on both sides.
func (e *Error) RolledBack() bool { return e.Result == RolledBack }

// ErrInProgress is wrapped in the error of a rotation refused because another process holds
// the rotation lock.
var ErrInProgress = errors.New("another akminio is rotating the client secret or applying changes")

func refuse(config bool, format string, args ...any) *Error {
	return &Error{Result: Refused, Config: config, Err: fmt.Errorf("rotation refused: "+format, args...)}
}

// checkConfig refuses a rotation that the config forbids, before anything is read.
func (d Deps) checkConfig() *Error {
	switch {
	case d.Mode != config.ModeRepair:
		return refuse(true, "mode is %q: a rotation writes to both systems; it needs mode: repair", d.Mode)
	case d.Desired.Restart != config.RestartAuto:
		return refuse(true, "minio.restart is %q: MinIO loads a new client secret only at a restart; rotation needs restart: auto", d.Desired.Restart)
	case d.Desired.Provider.SigningKey == "":
		return refuse(true, "authentik.provider.signing_key is not set: without a signing key authentik signs tokens (HS256) with the client secret, and MinIO would reject every token between the two writes")
	}
	return nil
}

// locks holds the rotation lock and the engine's run lock, so neither another rotation nor
// an apply can run in between.
type locks struct{ rotate, run *statedir.Lock }

func (d Deps) lock() (*locks, error) {
	rl, err := statedir.TryLock(d.StateDir, LockFile)
	if err != nil {
		return nil, lockError(err)
	}
	al, err := statedir.TryLock(d.StateDir, reconcile.RunLock)
	if err != nil {
		rl.Unlock()
		return nil, lockError(err)
	}
	return &locks{rotate: rl, run: al}, nil
}

func lockError(err error) error {
	if errors.Is(err, statedir.ErrLocked) {
		return fmt.Errorf("%w (%w)", ErrInProgress, err)
	}
	return err
}

func (l *locks) release() {
	l.run.Unlock()
	l.rotate.Unlock()
}

// hide returns msg with both secrets of in replaced, for the intent's last_error (the
// adapters keep secrets out of errors already; this is a second net).
func hide(msg string, in *Intent) string {
	for _, s := range []config.Secret{in.New, in.Old} {
		if s.IsSet() {
			msg = strings.ReplaceAll(msg, s.Reveal(), config.Redacted)
		}
	}
	return msg
}
