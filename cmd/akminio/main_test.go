package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/miniotest"
)

// binary is the akminio built once for all tests, stamped like `make build` stamps it.
var binary string

const (
	stampVersion = "v9.9.9-test"
	stampCommit  = "0123abcd"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "akminio-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "akminio")
	build := exec.Command("go", "build", "-trimpath", "-o", binary,
		"-ldflags", "-X main.version="+stampVersion+" -X main.commit="+stampCommit, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building akminio:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// leakScans holds the leak scan of each test that ran the binary.
var leakScans sync.Map // testing.TB -> *e2eenvtest.LeakScan

// leakScan returns t's leak scan: every secret a test hands the binary through the
// environment or $CREDENTIALS_DIRECTORY is scanned for in everything it printed.
func leakScan(t *testing.T) *e2eenvtest.LeakScan {
	if s, ok := leakScans.Load(t); ok {
		return s.(*e2eenvtest.LeakScan)
	}
	s := e2eenvtest.NewLeakScan(t)
	leakScans.Store(t, s)
	t.Cleanup(func() { leakScans.Delete(t) })
	return s
}

// secretVars are the environment variables that carry a secret.
var secretVars = []string{"AKMINIO_AUTHENTIK__TOKEN", "AKMINIO_MINIO__ACCESS_KEY", "AKMINIO_MINIO__SECRET_KEY", "AKMINIO_HTTP__HOOK_TOKEN"}

// runBinary runs akminio with args in dir and exactly the environment env (plus PATH). What
// it prints goes to the test's leak scan, with the secrets env gives.
func runBinary(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	scan := leakScan(t)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(secretVars, k):
			scan.Secret(k, v)
		case k == "CREDENTIALS_DIRECTORY":
			files, _ := os.ReadDir(v)
			for _, f := range files {
				if b, err := os.ReadFile(filepath.Join(v, f.Name())); err == nil {
					scan.Secret("credential "+f.Name(), strings.TrimSpace(string(b)))
				}
			}
		}
	}

	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	scan.Output("stdout of akminio "+strings.Join(args, " "), stdout.String())
	scan.Output("stderr of akminio "+strings.Join(args, " "), stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// withoutWarnings drops "warning: " lines.
func withoutWarnings(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "warning: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestExampleConfigIsValid(t *testing.T) {
	r := runBinary(t, "../..", nil, "check-config", "--config", "testdata/example-config.yaml")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "testdata/example-config.yaml: valid\n") {
		t.Errorf("stdout = %q", r.stdout)
	}
	// The example's systemd credential paths do not exist here: warned about, not fatal.
	if strings.Count(r.stderr, "warning: ") != 3 || withoutWarnings(r.stderr) != "" {
		t.Errorf("stderr = %q", r.stderr)
	}

	// AKMINIO_CONFIG names the file when --config is absent.
	r = runBinary(t, "../..", []string{"AKMINIO_CONFIG=testdata/example-config.yaml"}, "check-config")
	if r.code != exitOK {
		t.Errorf("with AKMINIO_CONFIG: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestInvalidConfigsThroughBinary runs every config/testdata/invalid/*.yaml through the
// binary: exit 78 and exactly the problem lines of the .err file on stderr.
func TestInvalidConfigsThroughBinary(t *testing.T) {
	files, err := filepath.Glob("../../config/testdata/invalid/*.yaml")
	if err != nil || len(files) < 15 {
		t.Fatalf("found %d invalid configs (%v), want at least 15", len(files), err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			r := runBinary(t, "../../config", nil, "check-config", "--config", "testdata/invalid/"+name)
			if r.code != exitConfig {
				t.Errorf("exit %d, want %d", r.code, exitConfig)
			}
			if got := withoutWarnings(r.stderr); got != string(want) {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestInvalidConfigEveryCommand: every command that reads the config exits 78 with the
// same problem lines, before touching anything. healthcheck is the exception by design: it
// probes a running daemon (which keeps its last good config when a reload is rejected), so
// a bad config on disk must not turn a healthy daemon unhealthy; with --url it reads no
// config, and without it falls back to the default address with a note.
func TestInvalidConfigEveryCommand(t *testing.T) {
	const file = "testdata/invalid/undeclared-policy.yaml"
	want, err := os.ReadFile("../../config/" + strings.TrimSuffix(file, ".yaml") + ".err")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check-config"}, {"check-config", "--online"}, {"plan"}, {"plan", "--output", "json"},
		{"apply"}, {"run"}, {"rotate-secret"},
	} {
		r := runBinary(t, "../../config", nil, append(args, "--config", file)...)
		if r.code != exitConfig || withoutWarnings(r.stderr) != string(want) || r.stdout != "" {
			t.Errorf("akminio %v: exit %d\nstdout %q\nstderr:\n%s\nwant exit 78 and:\n%s", args, r.code, r.stdout, r.stderr, want)
		}
	}

	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(healthy.Close)
	r := runBinary(t, "../../config", nil, "healthcheck", "--url", healthy.URL+"/healthz", "--config", file)
	if r.code != exitOK || r.stderr != "" {
		t.Errorf("healthcheck --url with a bad config: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
}

func TestMissingConfigFile(t *testing.T) {
	r := runBinary(t, t.TempDir(), nil, "check-config", "--config", "nope.yaml")
	if r.code != exitConfig || r.stderr != "nope.yaml: config file does not exist\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	// With neither --config nor AKMINIO_CONFIG the default path is read.
	r = runBinary(t, t.TempDir(), nil, "check-config")
	if r.code != exitConfig || !strings.HasPrefix(r.stderr, "/etc/akminio/config.yaml: ") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	r := runBinary(t, ".", nil, "version")
	want := fmt.Sprintf("akminio %s\ncommit %s\n%s %s/%s\n", stampVersion, stampCommit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != exitOK || r.stdout != want {
		t.Errorf("exit %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, exitUsage, "usage: akminio COMMAND"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"check-config", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"check-config", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"help"}, exitOK, "check-config"},
		{[]string{"check-config", "--help"}, exitOK, "--online"},
	} {
		r := runBinary(t, ".", nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.out) {
			t.Errorf("akminio %v: exit %d, output %q; want exit %d containing %q", tc.args, r.code, r.stdout+r.stderr, tc.code, tc.out)
		}
	}
}

// onlineConfig writes a config pointing at the given authentik URL and MinIO endpoint.
func onlineConfig(t *testing.T, authentikURL, minioEndpoint string) string {
	t.Helper()
	body := fmt.Sprintf(`
authentik:
  url: %s
  timeout: 5s
  application: {slug: minio}
  provider:
    name: MinIO
    redirect_uris: [https://minio.example/oauth_callback]
minio:
  endpoint: %s
  timeout: 5s
bindings:
  - group: Minio admins
    policies: [consoleAdmin]
`, authentikURL, minioEndpoint)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeUsersMe answers GET /api/v3/core/users/me/ for token only, as authentik does.
func fakeUsersMe(t *testing.T, token string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/core/users/me/" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"detail":"Token invalid/expired"}`))
			return
		}
		_, _ = w.Write([]byte(`{"user":{"pk":7,"username":"akminio-bot","name":"akminio","is_active":true,
			"is_superuser":false,"groups":[],"roles":[],"avatar":"","uid":"u","settings":{},"system_permissions":[]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestOnlineNeedsSecrets(t *testing.T) {
	path := onlineConfig(t, "http://"+closedPort(t), "http://"+closedPort(t))
	r := runBinary(t, ".", nil, "check-config", "--online", "--config", path)
	want := "authentik.token: not set: give authentik.token_file, AKMINIO_AUTHENTIK__TOKEN, $CREDENTIALS_DIRECTORY/authentik-token or an inline authentik.token\n" +
		"minio.access_key: not set: give minio.access_key_file, AKMINIO_MINIO__ACCESS_KEY, $CREDENTIALS_DIRECTORY/minio-access-key or an inline minio.access_key\n" +
		"minio.secret_key: not set: give minio.secret_key_file, AKMINIO_MINIO__SECRET_KEY, $CREDENTIALS_DIRECTORY/minio-secret-key or an inline minio.secret_key\n"
	if r.code != exitConfig || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
	// Offline, the same config is valid.
	if r := runBinary(t, ".", nil, "check-config", "--config", path); r.code != exitOK {
		t.Errorf("offline: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestOnline reaches a real MinIO and a stand-in for authentik's users/me endpoint, with
// the secrets given through the environment and the systemd credentials directory.
func TestOnline(t *testing.T) {
	const token = "authentik-token-that-must-not-leak"
	mc := miniotest.Start(t)
	authentik := fakeUsersMe(t, token)

	creds := t.TempDir()
	for name, v := range map[string]string{"minio-access-key": mc.AccessKey, "minio-secret-key": mc.SecretKey} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(v), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"CREDENTIALS_DIRECTORY=" + creds}

	t.Run("both reachable", func(t *testing.T) {
		r := runBinary(t, ".", append(env, "AKMINIO_AUTHENTIK__TOKEN="+token), "check-config", "--online",
			"--config", onlineConfig(t, authentik.URL, mc.Endpoint))
		if r.code != exitOK {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, `authentik: ok (`+authentik.URL+` answers as user "akminio-bot")`) ||
			!strings.Contains(r.stdout, "minio: ok ("+mc.Endpoint+" answers: 1 server(s)") {
			t.Errorf("stdout = %s", r.stdout)
		}
	})
	t.Run("authentik refuses the token", func(t *testing.T) {
		r := runBinary(t, ".", append(env, "AKMINIO_AUTHENTIK__TOKEN=wrong-"+token), "check-config", "--online",
			"--config", onlineConfig(t, authentik.URL, mc.Endpoint))
		if r.code != exitFailure {
			t.Errorf("exit %d, want %d", r.code, exitFailure)
		}
		wantErr := "authentik: FAILED: " + authentik.URL + ": ping (core/users/me/): HTTP 403 Forbidden: the token was refused (check authentik.token)\n"
		if r.stderr != wantErr || !strings.Contains(r.stdout, "minio: ok") {
			t.Errorf("stdout %q\nstderr %q\nwant stderr %q", r.stdout, r.stderr, wantErr)
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Error("the token appears in the output")
		}
	})
	t.Run("minio unreachable and wrong key", func(t *testing.T) {
		r := runBinary(t, ".", append(env, "AKMINIO_AUTHENTIK__TOKEN="+token), "check-config", "--online",
			"--config", onlineConfig(t, authentik.URL, "http://"+closedPort(t)))
		if r.code != exitFailure || !strings.HasPrefix(r.stderr, "minio: FAILED: http://127.0.0.1:") ||
			!strings.Contains(r.stdout, "authentik: ok") {
			t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		r = runBinary(t, ".", append(env, "AKMINIO_AUTHENTIK__TOKEN="+token, "AKMINIO_MINIO__SECRET_KEY=not-the-key"), "check-config", "--online",
			"--config", onlineConfig(t, authentik.URL, mc.Endpoint))
		// The environment outranks $CREDENTIALS_DIRECTORY, so the wrong key is used.
		if r.code != exitFailure || !strings.HasPrefix(r.stderr, "minio: FAILED: "+mc.Endpoint+": server info: ") {
			t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "not-the-key") {
			t.Error("the secret key appears in the output")
		}
	})
}
