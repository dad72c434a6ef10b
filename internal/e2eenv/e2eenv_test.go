package e2eenv_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
)

// TestEnvironment checks what the environment promises: the config is valid for the
// real binary and holds no secret, secret files are private, the demo users exist, and
// after an apply the demo logins give what the bindings say.
func TestEnvironment(t *testing.T) {
	env := e2eenvtest.Start(t)

	raw, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{env.AK.Token(), env.MinIO.SecretKey} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("config.yaml holds a secret inline:\n%s", raw)
		}
	}
	for _, f := range []string{e2eenv.TokenFile, e2eenv.AccessKeyFile, e2eenv.SecretKeyFile} {
		fi, err := os.Stat(env.SecretPath(f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	if got := env.AK.GroupMembers(e2eenv.GroupInterns); len(got) != 1 || got[0] != "dave" {
		t.Errorf("members of %q = %v, want [dave]", e2eenv.GroupInterns, got)
	}

	if _, stderr, code := e2eenvtest.Akminio(t, env, "check-config"); code != 0 {
		t.Fatalf("check-config exit %d:\n%s", code, stderr)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "apply"); code != 0 {
		t.Fatalf("apply exit %d, want 0", code)
	}
	ctx := context.Background()
	a, err := env.Login(ctx, "alice")
	if err != nil || !a.CanRead || !a.CanWrite {
		t.Errorf("alice: %+v, %v; want read and write", a, err)
	}
	if _, err := env.Login(ctx, "carol"); err == nil {
		t.Error("carol (no group) logged in; want an STS refusal")
	}
}

// TestWriteConfigMovesInlineSecrets checks that an inline secret in a config given to
// WriteConfig lands in a 0600 file, not in config.yaml.
func TestWriteConfigMovesInlineSecrets(t *testing.T) {
	env := e2eenvtest.Start(t)
	cfg := env.DefaultConfig()
	ak := cfg["authentik"].(map[string]any)
	ak["token"] = "inline-secret-token-1234"
	delete(ak, "token_file")
	if err := env.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(env.ConfigPath)
	if strings.Contains(string(raw), "inline-secret-token-1234") || !strings.Contains(string(raw), "token_file") {
		t.Errorf("config.yaml:\n%s", raw)
	}
	tok, _ := os.ReadFile(env.SecretPath(e2eenv.TokenFile))
	if strings.TrimSpace(string(tok)) != "inline-secret-token-1234" {
		t.Errorf("token file holds %q", tok)
	}
	if _, ok := cfg["authentik"].(map[string]any)["token"]; !ok {
		t.Error("WriteConfig modified the caller's map")
	}
}
