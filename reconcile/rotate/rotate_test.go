package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
	"github.com/akminio/akminio/reconcile"
)

func TestRunRotates(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	f.deps.Now = func() time.Time { return now }
	var steps []string
	f.deps.Fault = func(s string) { steps = append(steps, s) }
	out, err := Run(context.Background(), f.deps)
	f.checkResult(out, err)
	if err != nil || out.Result != Rotated {
		t.Fatalf("Run = %v, %v; want rotated", out.Result, err)
	}
	newSecret := f.ak.secret()
	if newSecret == f.old || len(newSecret.Reveal()) != SecretLength {
		t.Fatalf("authentik holds a secret of %d chars, the old one: %v", len(newSecret.Reveal()), newSecret == f.old)
	}
	f.equal(newSecret)
	if f.mc.restarts != 1 || f.mc.sets != 1 || f.ak.sets != 1 {
		t.Errorf("restarts %d, MinIO sets %d, authentik sets %d; want 1 each", f.mc.restarts, f.mc.sets, f.ak.sets)
	}
	want := []string{StepPrepared, StepAuthentikSet, StepMinIOWriting, StepMinIOWritten, StepMinIORestarted, StepConfirmed, StepRecorded, StepCleared}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if got := f.state().SecretRotatedAt; !got.Equal(now) || !out.RotatedAt.Equal(now) {
		t.Errorf("secret_rotated_at %v, outcome %v; want %v", got, out.RotatedAt, now)
	}
	if files := f.files(); !slices.Equal(files, []string{LockFile, reconcile.RunLock, reconcile.StateFile}) {
		t.Errorf("state_dir holds %v", files)
	}
}

func TestIntentWrittenBeforeEitherSideChanges(t *testing.T) {
	f := newFixture(t)
	check := func(ctx context.Context, s config.Secret) error {
		in, err := LoadIntent(f.deps.StateDir)
		if err != nil || in == nil || in.New != s || in.Old != f.old {
			t.Errorf("when a side is written the intent is %v, %v", in != nil, err)
		}
		st, err := os.Stat(IntentPath(f.deps.StateDir))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("intent file: %v, mode %v", err, st.Mode())
		}
		return nil
	}
	f.ak.onSet, f.mc.onSet = check, check
	if out, err := Run(context.Background(), f.deps); err != nil {
		t.Fatalf("Run = %v, %v", out.Result, err)
	}
	if _, err := os.Stat(IntentPath(f.deps.StateDir)); !os.IsNotExist(err) {
		t.Errorf("intent left after the rotation: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture)
		config bool
		msg    string
	}{
		{"mode report", func(f *fixture) { f.deps.Mode = config.ModeReport }, true, `mode is "report"`},
		{"restart never", func(f *fixture) { f.deps.Desired.Restart = config.RestartNever }, true, `minio.restart is "never"`},
		{"no signing key configured", func(f *fixture) { f.deps.Desired.Provider.SigningKey = "" }, true, "authentik.provider.signing_key is not set"},
		{"provider without signing key", func(f *fixture) { f.ak.provider.SigningKey = "" }, false, `provider "MinIO" has no signing key: authentik would sign tokens (HS256)`},
		{"provider missing", func(f *fixture) { f.ak.provider.Name = "x"; f.ak.provider = nil }, false, `no OAuth2 provider named "MinIO": run akminio apply first`},
		{"sides disagree", func(f *fixture) { f.mc.loaded = "something-else" }, false, "disagree on client_secret: run akminio apply first"},
		{"client secret set by MinIO's environment", func(f *fixture) { f.mc.env = map[string]bool{"client_secret": true} }, false,
			"set by its environment variable MINIO_IDENTITY_OPENID_CLIENT_SECRET: akminio cannot change it"},
		{"client ids disagree", func(f *fixture) { f.mc.clientID = "other" }, false, "disagree on client_id"},
		{"target not configured", func(f *fixture) { f.mc.configured = false }, false, "identity_openid is not configured"},
		{"authentik down", func(f *fixture) { f.ak.onRead = func() error { return errors.New("authentik: HTTP 503") } }, false, "authentik is not readable"},
		{"minio down", func(f *fixture) { f.mc.onRead = func() error { return errors.New("connection refused") } }, false, "MinIO is not readable"},
		{"restart pending", func(f *fixture) {
			if err := reconcile.SaveState(f.deps.StateDir, reconcile.State{RestartPending: &reconcile.PendingRestart{Target: "identity_openid"}}); err != nil {
				f.t.Fatal(err)
			}
		}, false, "waiting for a restart"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.change(f)
			out, err := Run(context.Background(), f.deps)
			f.checkResult(out, err)
			var rerr *Error
			if !errors.As(err, &rerr) || out.Result != Refused || rerr.Result != Refused || rerr.Config != c.config {
				t.Fatalf("Run = %v, %#v; want refused (config %v)", out.Result, err, c.config)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "rotation refused: ") {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			if f.ak.sets != 0 || f.mc.sets != 0 || f.mc.restarts != 0 {
				t.Errorf("a refused rotation wrote: authentik %d, MinIO %d, restarts %d", f.ak.sets, f.mc.sets, f.mc.restarts)
			}
			if _, err := os.Stat(IntentPath(f.deps.StateDir)); !os.IsNotExist(err) {
				t.Errorf("a refused rotation left an intent: %v", err)
			}
		})
	}
}

func TestRefusedWhileLocked(t *testing.T) {
	for _, name := range []string{LockFile, reconcile.RunLock} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			l, err := statedir.TryLock(f.deps.StateDir, name)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			out, err := Run(context.Background(), f.deps)
			if !errors.Is(err, ErrInProgress) || out.Result != Refused {
				t.Fatalf("Run = %v, %v; want refused, in progress", out.Result, err)
			}
			if f.ak.sets != 0 {
				t.Error("a refused rotation wrote to authentik")
			}
		})
	}
}

func TestFailureRollsBack(t *testing.T) {
	boom := errors.New("injected")
	cases := []struct {
		name         string
		inject       func(f *fixture)
		wantRestarts int
	}{
		{"authentik refuses", func(f *fixture) {
			f.ak.onSet = func(_ context.Context, s config.Secret) error {
				if s != f.old {
					return boom
				}
				return nil
			}
		}, 0},
		{"MinIO refuses the new config", func(f *fixture) {
			f.mc.onSet = func(_ context.Context, s config.Secret) error {
				if s != f.old {
					// What MinIO answers when its validation (config_url, JWKS) fails.
					return fmt.Errorf("minio: set identity_openid: %w", madmin.ErrorResponse{Code: "XMinioAdminConfigBadJSON", Message: "invalid config"})
				}
				return nil
			}
		}, 0},
		{"MinIO stores the new secret, its answer is lost", func(f *fixture) {
			f.mc.onSet = func(_ context.Context, s config.Secret) error {
				if s != f.old {
					f.mc.mu.Lock()
					f.mc.stored = s
					f.mc.mu.Unlock()
					return errors.New("minio: set identity_openid: read tcp: connection reset by peer")
				}
				return nil
			}
		}, 1}, // the old secret is written back and loaded: the next restart must not load the new one
		{"MinIO fails to restart once", func(f *fixture) {
			n := 0
			f.mc.onRestart = func(context.Context) error {
				if n++; n == 1 {
					return boom
				}
				return nil
			}
		}, 1},
		{"MinIO loads something else", func(f *fixture) {
			n := 0
			f.mc.onRestart = func(context.Context) error {
				if n++; n == 1 {
					f.mc.stored = "third"
				}
				return nil
			}
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.inject(f)
			out, err := Run(context.Background(), f.deps)
			f.checkResult(out, err)
			var rerr *Error
			if !errors.As(err, &rerr) || !rerr.RolledBack() || out.Result != RolledBack {
				t.Fatalf("Run = %v, %v; want rolled back", out.Result, err)
			}
			if !strings.Contains(err.Error(), "rolled back") {
				t.Errorf("error %q does not say it was rolled back", err)
			}
			f.equal(f.old)
			if f.mc.restarts != c.wantRestarts {
				t.Errorf("%d restarts, want %d", f.mc.restarts, c.wantRestarts)
			}
			if files := f.files(); slices.Contains(files, IntentFile) {
				t.Errorf("intent left after a rollback: %v", files)
			}
			if !f.state().SecretRotatedAt.IsZero() {
				t.Error("a rolled back rotation recorded a rotation time")
			}
		})
	}
}

func TestRollbackSurvivesCancelledContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.mc.onRestart = func(context.Context) error {
		if ctx.Err() == nil {
			cancel() // Ctrl-C while MinIO restarts
			return context.Canceled
		}
		return nil
	}
	out, err := Run(ctx, f.deps)
	if out.Result != RolledBack {
		t.Fatalf("Run = %v, %v; want rolled back", out.Result, err)
	}
	f.equal(f.old)
}

func TestRollbackFailureKeepsIntentAndRecovers(t *testing.T) {
	f := newFixture(t)
	// MinIO stores the new secret, then neither restarts nor takes a write any more.
	down := true
	f.mc.onRestart = func(context.Context) error {
		if down {
			return errors.New("MinIO did not get ready again")
		}
		return nil
	}
	f.mc.onSet = func(_ context.Context, s config.Secret) error {
		if down && s == f.old {
			return errors.New("MinIO: server not initialized")
		}
		return nil
	}
	out, err := Run(context.Background(), f.deps)
	f.checkResult(out, err)
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.RolledBack() || out.Result != Failed {
		t.Fatalf("Run = %v, %v; want failed", out.Result, err)
	}
	for _, want := range []string{"putting the old secret back failed too", IntentFile, "next akminio apply"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	in, lerr := LoadIntent(f.deps.StateDir)
	if lerr != nil || in == nil || in.Step != StepRollingBack || !in.MinIOTouched || in.LastError == "" {
		t.Fatalf("intent after a failed rollback: %+v, %v", in, lerr)
	}
	// authentik is back on the old secret; MinIO's export shows old, its store holds new.
	if stored, loaded := f.mc.state(); f.ak.secret() != f.old || loaded != f.old || stored == f.old {
		t.Fatalf("unexpected sides before recovery")
	}
	down = false
	out, err = Recover(context.Background(), f.deps)
	f.checkResult(out, err)
	if err != nil || out.Result != RolledBack || !out.Recovered {
		t.Fatalf("Recover = %+v, %v; want rolled back", out, err)
	}
	f.equal(f.old) // the store was written back although the export already showed old
}

func TestCrashAtEachStepRecovers(t *testing.T) {
	cases := []struct {
		step    string
		failing bool // the rotation fails at MinIO's restart first
		forward bool // recovery ends on the new secret
	}{
		{StepPrepared, false, false},
		{StepAuthentikSet, false, true},
		{StepMinIOWriting, false, true},
		{StepMinIOWritten, false, true},
		{StepMinIORestarted, false, true},
		{StepConfirmed, false, true},
		{StepRecorded, false, true},
		{StepCleared, false, true},
		{StepRollingBack, true, false},
		{StepRolledBack, true, false},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			f := newFixture(t)
			in := crashRotation(t, f, c.step, c.failing)
			restarts := f.mc.restarts
			out, err := Recover(context.Background(), f.deps)
			f.checkResult(out, err)
			if err != nil {
				t.Fatalf("Recover = %+v, %v", out, err)
			}
			switch {
			case in == nil:
				if out.Result != NoIntent {
					t.Errorf("Recover = %v, want none", out.Result)
				}
				f.equal(f.ak.secret())
			case c.forward:
				if out.Result != Rotated || f.state().SecretRotatedAt.IsZero() {
					t.Errorf("Recover = %v, rotated at %v; want rotated", out.Result, f.state().SecretRotatedAt)
				}
				f.equal(in.New)
			default:
				if out.Result != RolledBack {
					t.Errorf("Recover = %v, want rolled back", out.Result)
				}
				f.equal(f.old)
			}
			if slices.Contains(f.files(), IntentFile) {
				t.Error("intent left after recovery")
			}
			// Once MinIO is confirmed restarted after the rotation's write (by recovery, or
			// before the crash: MinIOTouched), nothing stored waits for a restart any more.
			restarted := f.mc.restarts > restarts || in != nil && in.MinIOTouched
			if st := f.state(); in != nil && (st.RestartPending == nil) != restarted {
				t.Errorf("restart_pending %v after a recovery (restarted %v)", st.RestartPending, restarted)
			}
		})
	}
}

// crashRotation runs a rotation that crashes at step (failing first at MinIO's restart when
// failing) and returns the intent it left, after adding a stale restart_pending record that
// recovery must not leave behind once it has restarted MinIO.
func crashRotation(t *testing.T, f *fixture, step string, failing bool) *Intent {
	t.Helper()
	d := f.deps
	d.Fault = crashAt(step)
	if failing {
		f.mc.onRestart = func(context.Context) error {
			if s, _ := f.mc.state(); s != f.old {
				return errors.New("MinIO did not get ready again")
			}
			return nil
		}
	}
	if !runCrashing(d) {
		t.Fatal("the rotation did not crash")
	}
	f.mc.onRestart = nil
	in, err := LoadIntent(f.deps.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if (in == nil) != (step == StepCleared) {
		t.Fatalf("intent after a crash at %s: %v", step, in != nil)
	}
	if in != nil {
		f.see(in.New)
		pending := &reconcile.PendingRestart{Target: "identity_openid", Fingerprint: "stale"}
		if err := reconcile.SaveState(f.deps.StateDir, reconcile.State{RestartPending: pending}); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func TestRecoverWithoutIntentDoesNothing(t *testing.T) {
	f := newFixture(t)
	f.ak.onRead = func() error { t.Error("Recover read authentik without an intent"); return nil }
	out, err := Recover(context.Background(), f.deps)
	if err != nil || out.Result != NoIntent {
		t.Fatalf("Recover = %v, %v", out.Result, err)
	}
	if len(f.files()) != 0 {
		t.Errorf("Recover without an intent created %v", f.files())
	}
}

func TestRecoverAbandonsWhenAuthentikChanged(t *testing.T) {
	f := newFixture(t)
	d := f.deps
	d.Fault = crashAt(StepAuthentikSet)
	runCrashing(d)
	f.ak.provider.ClientSecret = "changed-by-an-admin"
	out, err := Recover(context.Background(), f.deps)
	f.checkResult(out, err)
	if err != nil || out.Result != Abandoned {
		t.Fatalf("Recover = %v, %v; want abandoned", out.Result, err)
	}
	if f.ak.secret() != "changed-by-an-admin" || f.mc.restarts != 0 {
		t.Error("an abandoned recovery touched a side")
	}
	if !strings.Contains(strings.Join(out.Actions, "\n"), "akminio apply makes MinIO follow authentik") {
		t.Errorf("actions do not explain: %q", out.Actions)
	}
}

func TestRecoverRefusedWhileLocked(t *testing.T) {
	f := newFixture(t)
	d := f.deps
	d.Fault = crashAt(StepPrepared)
	runCrashing(d)
	l, err := statedir.TryLock(f.deps.StateDir, LockFile)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	out, err := Recover(context.Background(), f.deps)
	if !errors.Is(err, ErrInProgress) || out.Result != Refused {
		t.Fatalf("Recover = %v, %v", out.Result, err)
	}
}

func TestRunRecoversFirst(t *testing.T) {
	t.Run("finished forward: no second rotation", func(t *testing.T) {
		f := newFixture(t)
		d := f.deps
		d.Fault = crashAt(StepMinIOWritten)
		runCrashing(d)
		in, _ := LoadIntent(f.deps.StateDir)
		out, err := Run(context.Background(), f.deps)
		if err != nil || out.Result != Rotated || !out.Recovered {
			t.Fatalf("Run = %+v, %v", out, err)
		}
		f.equal(in.New)
	})
	t.Run("rolled back: then a fresh rotation", func(t *testing.T) {
		f := newFixture(t)
		d := f.deps
		d.Fault = crashAt(StepPrepared)
		runCrashing(d)
		in, _ := LoadIntent(f.deps.StateDir)
		out, err := Run(context.Background(), f.deps)
		f.checkResult(out, err)
		if err != nil || out.Result != Rotated || out.Recovered {
			t.Fatalf("Run = %+v, %v", out, err)
		}
		if s := f.ak.secret(); s == f.old || s == in.New {
			t.Error("no fresh secret after recovering")
		}
		f.equal(f.ak.secret())
		if !strings.Contains(strings.Join(out.Actions, "\n"), "found an interrupted rotation") {
			t.Errorf("actions do not mention the recovery: %q", out.Actions)
		}
	})
}

// TestLeftoverIntentCopiesRemoved: a crash inside saveIntent (after its temporary file was
// created, before the rename) leaves a copy of the secrets beside rotation.json. Recovery
// removes it (unless another process holds the locks and may be writing it), and so does
// the end of the next rotation.
func TestLeftoverIntentCopiesRemoved(t *testing.T) {
	f := newFixture(t)
	leftover := func() string {
		t.Helper()
		p := f.deps.StateDir + "/.rotation.json.4242.tmp"
		if err := os.WriteFile(p, []byte(`{"old_secret":"x","new_secret":"y"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := leftover()
	l, err := statedir.TryLock(f.deps.StateDir, LockFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := Recover(context.Background(), f.deps); err != nil || out.Result != NoIntent {
		t.Fatalf("Recover while locked = %v, %v", out.Result, err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("Recover removed a temporary intent while another process held the lock: %v", err)
	}
	l.Unlock()
	if out, err := Recover(context.Background(), f.deps); err != nil || out.Result != NoIntent {
		t.Fatalf("Recover = %v, %v", out.Result, err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("Recover left the temporary intent: %v", err)
	}
	leftover()
	if out, err := Run(context.Background(), f.deps); err != nil {
		t.Fatalf("Run = %v, %v", out.Result, err)
	}
	if files := f.files(); !slices.Equal(files, []string{LockFile, reconcile.RunLock, reconcile.StateFile}) {
		t.Errorf("state_dir holds %v after a rotation", files)
	}
}

type gateFunc func(ctx context.Context, step string) error

func (g gateFunc) MayWrite(ctx context.Context, step string) error { return g(ctx, step) }

// TestGateAskedBeforeEachWrite: the write gate is asked before each write of a rotation;
// when it refuses MinIO's writes (the lease ran out after authentik was set), MinIO is
// neither written nor restarted and the rotation fails.
func TestGateAskedBeforeEachWrite(t *testing.T) {
	f := newFixture(t)
	var asked []string
	f.deps.Gate = gateFunc(func(_ context.Context, step string) error {
		asked = append(asked, step)
		if strings.HasPrefix(step, "minio") {
			return errors.New("not allowed to write: the lease ran out")
		}
		return nil
	})
	_, err := Run(context.Background(), f.deps)
	if err == nil || !strings.Contains(err.Error(), "the lease ran out") {
		t.Fatalf("Run = %v; want the gate's refusal", err)
	}
	if f.mc.sets != 0 || f.mc.restarts != 0 {
		t.Errorf("MinIO sets %d, restarts %d after the gate refused; want none", f.mc.sets, f.mc.restarts)
	}
	if len(asked) < 2 || !strings.HasPrefix(asked[0], "authentik") || !strings.HasPrefix(asked[1], "minio") {
		t.Errorf("gate asked %v; want authentik's write first, then MinIO's", asked)
	}
}
