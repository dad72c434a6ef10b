package rotate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/statedir"
	"github.com/akminio/akminio/reconcile/rotate"
)

// TestE2ERotateSecret: after `akminio apply` from nothing and `akminio rotate-secret`, both
// sides hold the same new secret, the token endpoint takes the new one and refuses the old
// one, the demo users keep their access, and the engine sees no drift (no restart pending).
func TestE2ERotateSecret(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	old := x.equalSides()
	before := x.logins()

	stdout, _ := x.mustRun(0, "rotate-secret")
	if !strings.Contains(stdout, "client secret rotated at") {
		t.Errorf("rotate-secret stdout does not say it rotated:\n%s", stdout)
	}
	newSecret := x.equalSides()
	if newSecret == old || len(newSecret.Reveal()) != rotate.SecretLength || strings.Trim(newSecret.Reveal(), rotate.SecretAlphabet) != "" {
		t.Fatalf("the secret after rotation is the old one (%v) or not 128 chars of [A-Za-z0-9]", newSecret == old)
	}
	if x.rotatedAt().IsZero() || time.Since(x.rotatedAt()) > time.Minute {
		t.Errorf("secret_rotated_at = %v", x.rotatedAt())
	}
	x.noStrayFiles()
	x.sameLogins(before)
	// The engine agrees: nothing to do, no restart pending.
	x.mustRun(0, "plan")

	// authentik's token endpoint, with client_credentials allowed for the check.
	p := x.provider()
	x.patchProvider(p.PK, map[string]any{"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}})
	if code, oerr := x.token(p.ClientID, newSecret); code != http.StatusOK {
		t.Errorf("token endpoint with the new secret: HTTP %d %s, want 200", code, oerr)
	}
	if code, oerr := x.token(p.ClientID, old); code == http.StatusOK || oerr != "invalid_grant" {
		t.Errorf("token endpoint with the old secret: HTTP %d %q, want invalid_grant", code, oerr)
	}
}

// TestE2ECrashAtEachStep kills akminio (SIGKILL) right after each step of the protocol; the
// next command (apply, or rotate-secret) settles the rotation: both sides equal, all old or
// all new as the step says, logins as before.
func TestE2ECrashAtEachStep(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	before := x.logins()
	cases := []struct {
		step    string
		forward bool   // the crashed rotation's new secret wins
		next    string // the command that recovers
	}{
		{rotate.StepPrepared, false, "apply"},
		{rotate.StepAuthentikSet, true, "apply"},
		{rotate.StepMinIOWriting, true, "rotate-secret"},
		{rotate.StepMinIOWritten, true, "apply"},
		{rotate.StepMinIORestarted, true, "apply"},
		{rotate.StepConfirmed, true, "rotate-secret"},
		{rotate.StepRecorded, true, "apply"},
		{rotate.StepCleared, true, "apply"},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			x.t = t
			old := x.equalSides()
			_, _, exit := x.akminio([]string{"AKMINIO_TEST_CRASH_AFTER=" + c.step}, "rotate-secret")
			if exit != -1 {
				t.Fatalf("rotate-secret with a crash after %s: exit %d, want killed", c.step, exit)
			}
			in := x.intent()
			if (in == nil) != (c.step == rotate.StepCleared) {
				t.Fatalf("intent on disk after a crash at %s: %v", c.step, in != nil)
			}
			var crashedNew config.Secret
			if in != nil {
				crashedNew = in.New
			} else {
				crashedNew, _ = x.sides() // the rotation was over: authentik holds its secret
			}
			stdout, _ := x.mustRun(0, c.next)
			got := x.equalSides()
			switch {
			case c.next == "rotate-secret" && !c.forward:
				if got == old {
					t.Error("rotate-secret after recovery did not rotate")
				}
			case c.forward && got != crashedNew:
				t.Errorf("after recovery the sides hold %s, want the crashed rotation's new secret", name(got, old, crashedNew))
			case !c.forward && got != old:
				t.Errorf("after recovery the sides hold %s, want the old secret", name(got, old, crashedNew))
			}
			if in != nil && !strings.Contains(stdout, "found an interrupted rotation") {
				t.Errorf("%s did not report the recovery:\n%s", c.next, stdout)
			}
			if x.intent() != nil {
				t.Error("intent left after recovery")
			}
			x.noStrayFiles()
			x.sameLogins(before)
		})
	}
	x.t = t
	x.mustRun(0, "plan")
}

// TestE2ECrashDuringRollback: MinIO refuses the new config (authentik's discovery answers
// 503 while MinIO validates the write), and akminio dies right after starting the rollback
// and right after finishing it; the next apply ends with both sides on the old secret.
func TestE2ECrashDuringRollback(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	before := x.logins()
	for _, step := range []string{rotate.StepRollingBack, rotate.StepRolledBack} {
		t.Run(step, func(t *testing.T) {
			x.t = t
			old := x.equalSides()
			x.env.AK.Fault("/application/o/", aksim.Fault{Status: http.StatusServiceUnavailable})
			_, _, exit := x.akminio([]string{"AKMINIO_TEST_CRASH_AFTER=" + step}, "rotate-secret")
			x.env.AK.ClearFaults()
			if exit != -1 {
				t.Fatalf("exit %d, want killed", exit)
			}
			if in := x.intent(); in == nil || in.Step != rotate.StepRollingBack {
				t.Fatalf("intent after a crash at %s: %+v", step, in)
			}
			x.mustRun(0, "apply")
			if got := x.equalSides(); got != old {
				t.Error("after recovery the sides do not hold the old secret")
			}
			x.noStrayFiles()
			x.sameLogins(before)
		})
	}
}

// TestE2EMinIORefusesNewConfig: authentik's discovery fails while MinIO validates the new
// config (MinIO fetches config_url on every write), so MinIO refuses it: authentik is rolled
// back, asserted from both sides, and rotate-secret exits 1 saying so.
func TestE2EMinIORefusesNewConfig(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	old := x.equalSides()
	before := x.logins()
	x.env.AK.Fault("/application/o/", aksim.Fault{Status: http.StatusServiceUnavailable})
	_, stderr, exit := x.akminio(nil, "rotate-secret")
	x.env.AK.ClearFaults()
	if exit != 1 {
		t.Fatalf("exit %d, want 1", exit)
	}
	for _, want := range []string{"rolled back", "MinIO"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if ak, mc := x.sides(); ak != old || mc != old {
		t.Errorf("after the rollback authentik holds the old secret: %v, MinIO: %v", ak == old, mc == old)
	}
	if !x.rotatedAt().IsZero() {
		t.Error("a failed rotation recorded a rotation time")
	}
	x.noStrayFiles()
	x.sameLogins(before)
	x.mustRun(0, "plan")
}

// TestE2EMinIOFailsToRestart: MinIO takes the new secret but then cannot start (authentik's
// discovery is down during its restart). The rotation rolls back both sides once discovery
// answers again; asserted from both sides. In-process, so the fault can start at the exact
// step.
func TestE2EMinIOFailsToRestart(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	old := x.equalSides()
	before := x.logins()
	d := x.deps()
	d.RestartTimeout = 15 * time.Second
	d.Fault = func(step string) {
		switch step {
		case rotate.StepMinIOWritten:
			x.env.AK.Fault("/application/o/", aksim.Fault{Status: http.StatusServiceUnavailable})
		case rotate.StepRollingBack:
			x.env.AK.ClearFaults()
		}
	}
	out, err := rotate.Run(context.Background(), d)
	var rerr *rotate.Error
	if !errors.As(err, &rerr) || !rerr.RolledBack() || out.Result != rotate.RolledBack {
		t.Fatalf("Run = %+v, %v; want rolled back", out, err)
	}
	if !strings.Contains(err.Error(), "restart MinIO") {
		t.Errorf("error does not name the restart: %v", err)
	}
	if ak, mc := x.sides(); ak != old || mc != old {
		t.Errorf("after the rollback authentik holds the old secret: %v, MinIO: %v", ak == old, mc == old)
	}
	x.noStrayFiles()
	x.sameLogins(before)
	x.mustRun(0, "plan")
}

// TestE2ERefusals: rotations the config or the systems forbid are refused before anything
// changes, with a message that says why; config-level refusals exit 78.
func TestE2ERefusals(t *testing.T) {
	x := startE2E(t)
	check := func(exit int, want string, args ...string) {
		t.Helper()
		_, stderr, got := x.akminio(nil, args...)
		if got != exit || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, want %d; stderr should say %q:\n%s", got, exit, want, stderr)
		}
	}
	check(1, `no OAuth2 provider named "MinIO": run akminio apply first`, "rotate-secret")
	x.mustRun(0, "apply")
	old := x.equalSides()

	cfgWith := func(change func(map[string]any)) {
		cfg := x.env.DefaultConfig()
		change(cfg)
		if err := x.env.WriteConfig(cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfgWith(func(c map[string]any) { c["mode"] = "report" })
	check(78, `mode is "report"`, "rotate-secret")
	cfgWith(func(c map[string]any) { c["minio"].(map[string]any)["restart"] = "never" })
	check(78, `minio.restart is "never"`, "rotate-secret")
	cfgWith(func(c map[string]any) {
		c["authentik"].(map[string]any)["provider"].(map[string]any)["signing_key"] = ""
	})
	check(78, "authentik.provider.signing_key is not set", "rotate-secret")
	cfgWith(func(map[string]any) {})

	p := x.provider()
	x.patchProvider(p.PK, map[string]any{"signing_key": nil})
	check(1, "has no signing key: authentik would sign tokens (HS256) with the client secret", "rotate-secret")
	x.mustRun(0, "apply")

	lock, err := statedir.TryLock(x.env.StateDir, rotate.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	check(1, "another akminio is rotating", "rotate-secret")
	lock.Unlock()

	if ak, mc := x.sides(); ak != old || mc != old {
		t.Error("a refused rotation changed a side")
	}
	x.noStrayFiles()
}

// TestE2ETwentyRotations: twenty rotations in a row leave only state.json and lock files in
// state_dir, and nothing akminio printed holds any of the secrets.
func TestE2ETwentyRotations(t *testing.T) {
	x := startE2E(t)
	x.mustRun(0, "apply")
	before := x.logins()
	seen := map[config.Secret]bool{x.equalSides(): true}
	for i := range 20 {
		if _, stderr, exit := x.akminio(nil, "rotate-secret"); exit != 0 {
			t.Fatalf("rotation %d: exit %d\n%s", i+1, exit, stderr)
		}
		s := x.equalSides()
		if seen[s] {
			t.Fatalf("rotation %d: a secret came back", i+1)
		}
		seen[s] = true
	}
	x.noStrayFiles()
	x.sameLogins(before)
	// The leak scan (cleanup) searches every output of the test for all 21 secrets.
}

// name describes a secret for messages.
func name(s, old, new config.Secret) string {
	switch s {
	case old:
		return "the old secret"
	case new:
		return "the crashed rotation's new secret"
	}
	return "another secret"
}
