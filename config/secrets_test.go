package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretFixture is a temp dir with a config whose authentik.token may come from any source.
type secretFixture struct {
	dir      string
	credDir  string
	inline   bool
	withFile bool
}

func (f secretFixture) write(t *testing.T) string {
	t.Helper()
	body := minimal + "minio: {endpoint: http://127.0.0.1:9000, access_key: ak-inline, secret_key: sk-inline}\n"
	body = strings.Replace(body, "minio:\n  endpoint: http://127.0.0.1:9000\n", "", 1)
	var extra []string
	if f.inline {
		extra = append(extra, "  token: from-inline")
	}
	if f.withFile {
		extra = append(extra, "  token_file: secrets/token")
		writeFile(t, filepath.Join(f.dir, "secrets/token"), "from-file\n", 0o600)
	}
	body = strings.Replace(body, "authentik:\n", "authentik:\n"+strings.Join(append(extra, ""), "\n"), 1)
	path := filepath.Join(f.dir, "config.yaml")
	writeFile(t, path, body, 0o600)
	return path
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by umask
		t.Fatal(err)
	}
}

// TestSecretSourcesAndPrecedence sets authentik.token from every combination of the four
// sources and checks the spec's order: <key>_file, environment, $CREDENTIALS_DIRECTORY, inline.
func TestSecretSourcesAndPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		file, env, cred, inline bool
		want, source            string
	}{
		{"file only", true, false, false, false, "from-file", "file"},
		{"environment only", false, true, false, false, "from-env", "environment"},
		{"credentials only", false, false, true, false, "from-credentials", "credentials"},
		{"inline only", false, false, false, true, "from-inline", "inline"},
		{"file beats the rest", true, true, true, true, "from-file", "file"},
		{"environment beats credentials and inline", false, true, true, true, "from-env", "environment"},
		{"credentials beat inline", false, false, true, true, "from-credentials", "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := secretFixture{dir: t.TempDir(), inline: tc.inline, withFile: tc.file}
			var env []string
			if tc.env {
				env = append(env, "AKMINIO_AUTHENTIK__TOKEN=from-env")
			}
			if tc.cred {
				f.credDir = filepath.Join(f.dir, "creds")
				writeFile(t, filepath.Join(f.credDir, "authentik-token"), "from-credentials", 0o400)
				env = append(env, "CREDENTIALS_DIRECTORY="+f.credDir)
			}
			cfg, warnings := mustLoad(t, f.write(t), env)
			if got := cfg.Authentik.Token.Reveal(); got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
			if got := cfg.SecretSource("authentik.token"); got != tc.source {
				t.Errorf("source = %q, want %q", got, tc.source)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings = %v", warnings)
			}
			if err := cfg.RequireSecrets(); err != nil {
				t.Errorf("RequireSecrets = %v", err)
			}
		})
	}
}

// TestCredentialsDirectoryForEverySecret reads all four secrets the way systemd hands them.
// testHookToken is a hook token of the shortest accepted length.
const testHookToken = "h-0123456789abcdef0123456789abcd"

func TestCredentialsDirectoryForEverySecret(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	for name, v := range map[string]string{"authentik-token": "t", "minio-access-key": "ak", "minio-secret-key": "sk", "hook-token": testHookToken} {
		writeFile(t, filepath.Join(creds, name), v+"\n", 0o400)
	}
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, minimal, 0o600)
	cfg, _ := mustLoad(t, path, []string{"CREDENTIALS_DIRECTORY=" + creds})
	got := []string{cfg.Authentik.Token.Reveal(), cfg.MinIO.AccessKey.Reveal(), cfg.MinIO.SecretKey.Reveal(), cfg.HTTP.HookToken.Reveal()}
	if strings.Join(got, ",") != "t,ak,sk,"+testHookToken {
		t.Errorf("secrets = %q", got)
	}
	if len(cfg.SecretValues()) != 4 {
		t.Errorf("SecretValues has %d values, want 4", len(cfg.SecretValues()))
	}
}

func TestMissingSecretFileFallsThroughWithWarning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, strings.Replace(minimal, "authentik:\n", "authentik:\n  token_file: nowhere/token\n", 1), 0o600)

	// Offline: a warning only.
	cfg, warnings := mustLoad(t, path, nil)
	if len(warnings) != 1 || warnings[0].String() != "authentik.token_file: nowhere/token does not exist" {
		t.Errorf("warnings = %v", warnings)
	}
	// Commands that need the secrets fail, naming every missing one.
	err := cfg.RequireSecrets()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("RequireSecrets = %v", err)
	}
	want := []string{
		"authentik.token_file: nowhere/token does not exist, and neither AKMINIO_AUTHENTIK__TOKEN nor $CREDENTIALS_DIRECTORY/authentik-token is set",
		"minio.access_key: not set: give minio.access_key_file, AKMINIO_MINIO__ACCESS_KEY, $CREDENTIALS_DIRECTORY/minio-access-key or an inline minio.access_key",
		"minio.secret_key: not set: give minio.secret_key_file, AKMINIO_MINIO__SECRET_KEY, $CREDENTIALS_DIRECTORY/minio-secret-key or an inline minio.secret_key",
	}
	if strings.Join(cerr.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(cerr.Problems, "\n"), strings.Join(want, "\n"))
	}

	// The environment fills the gap the missing file leaves.
	cfg, _ = mustLoad(t, path, []string{"AKMINIO_AUTHENTIK__TOKEN=tok", "AKMINIO_MINIO__ACCESS_KEY=ak", "AKMINIO_MINIO__SECRET_KEY=sk"})
	if err := cfg.RequireSecrets(); err != nil || cfg.Authentik.Token.Reveal() != "tok" {
		t.Errorf("RequireSecrets = %v, token = %q", err, cfg.Authentik.Token.Reveal())
	}
}

func TestSecretFilePermissionWarning(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		warn string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "authentik.token_file: secrets/token is readable by group or others (mode 0640); restrict it with chmod 600"},
		{0o644, "authentik.token_file: secrets/token is readable by group or others (mode 0644); restrict it with chmod 600"},
	} {
		f := secretFixture{dir: t.TempDir(), withFile: true}
		path := f.write(t)
		if err := os.Chmod(filepath.Join(f.dir, "secrets/token"), tc.mode); err != nil {
			t.Fatal(err)
		}
		cfg, warnings := mustLoad(t, path, nil)
		var got string
		if len(warnings) > 0 {
			got = warnings[0].String()
		}
		if got != tc.warn || len(warnings) > 1 {
			t.Errorf("mode %04o: warnings = %v, want %q", tc.mode, warnings, tc.warn)
		}
		if cfg.Authentik.Token.Reveal() != "from-file" {
			t.Errorf("mode %04o: the secret is still read", tc.mode)
		}
	}
}

// TestShortHookTokenRefused: a hook token under 32 characters is a problem naming the key
// and how to make one, from any source; its value is never shown. None at all is fine.
func TestShortHookTokenRefused(t *testing.T) {
	if len(testHookToken) != MinHookTokenLength {
		t.Fatalf("testHookToken is %d long", len(testHookToken))
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "short"), "short-token-1234\n", 0o600)
	want := "http.hook_token: is 16 characters long, want at least 32; generate one with: openssl rand -hex 32"
	for name, tc := range map[string]struct {
		extra string
		env   []string
	}{
		"inline":      {extra: "http: {hook_token: short-token-1234}\n"},
		"file":        {extra: "http: {hook_token_file: short}\n"},
		"environment": {env: []string{"AKMINIO_HTTP__HOOK_TOKEN=short-token-1234"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "config.yaml")
			writeFile(t, path, minimal+tc.extra, 0o600)
			_, _, err := Load(path, tc.env)
			if err == nil || err.Error() != want {
				t.Fatalf("Load: %v, want exactly %q", err, want)
			}
		})
	}
	path := filepath.Join(dir, "config.yaml")
	for _, extra := range []string{"", "http: {hook_token: " + testHookToken + "}\n", "http: {hook_token_file: \"\"}\n"} {
		writeFile(t, path, minimal+extra, 0o600)
		if _, _, err := Load(path, nil); err != nil {
			t.Errorf("Load with %q: %v", extra, err)
		}
	}
}

// A secret that is not text is refused: the scrubber could not find it in a log line (zap
// writes U+FFFD for such bytes), so it could leak in part. Found by FuzzScrubber.
func TestSecretNotUTF8Refused(t *testing.T) {
	f := secretFixture{dir: t.TempDir(), withFile: true}
	path := f.write(t)
	writeFile(t, filepath.Join(f.dir, "secrets/token"), "\x80bad-bytes-token\n", 0o600)
	_, _, err := Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "authentik.token: is not valid UTF-8 text (read from file)") {
		t.Fatalf("Load = %v, want the UTF-8 problem", err)
	}
	if strings.Contains(err.Error(), "bad-bytes-token") {
		t.Fatalf("the error shows the secret: %v", err)
	}
}
