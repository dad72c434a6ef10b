// Package e2eenvtest is the test side of internal/e2eenv: Start sets up an environment for a
// test, Binary builds the akminio binary once per test process, and Akminio runs it against
// an environment. It is kept apart so that programs using e2eenv (the demo) do not link
// package testing.
package e2eenvtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/miniotest"
)

// CommandTimeout bounds one run of the akminio binary in Akminio.
const CommandTimeout = 3 * time.Minute

// Start sets up an environment in t.TempDir() and closes it when the test ends. A missing
// MinIO binary fails the test (never skips it); so does a response of the simulator that
// breaks authentik's OpenAPI contract. What the simulator logs goes to t.Logf.
func Start(t testing.TB) *e2eenv.Env {
	t.Helper()
	bin := miniotest.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("e2eenv: no MinIO binary at %s (%v): run `make minio` (or scripts/minio.sh ensure), or set %s",
			bin, err, miniotest.BinaryEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := e2eenv.Setup(ctx, e2eenv.Options{
		Dir:         t.TempDir(),
		MinIOBin:    bin,
		Logf:        t.Logf,
		OnViolation: func(err error) { t.Errorf("authentik simulator: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		scans.Delete(e)
		if t.Failed() && e.MinIO != nil {
			t.Logf("e2eenv: last lines of the MinIO log %s:\n%s", e.MinIO.LogPath, e.MinIO.LogTail(40))
		}
		if err := e.Close(); err != nil {
			t.Errorf("e2eenv: close: %v", err)
		}
	})
	// Registered after Close, so it runs before it, while the simulator still answers.
	scans.Store(e, envScan(t, e))
	return e
}

// scans holds the LeakScan of each environment Start made.
var scans sync.Map // *e2eenv.Env -> *LeakScan

// Scan returns the LeakScan of an environment Start made (nil for another): Akminio
// records into it; a test adds what else akminio produced (HTTP bodies, alert payloads).
func Scan(e *e2eenv.Env) *LeakScan {
	if s, ok := scans.Load(e); ok {
		return s.(*LeakScan)
	}
	return nil
}

// envScan scans for the environment's secrets: the simulator's API token, MinIO's root
// credentials, the hook token and, at the end, every client secret an OAuth2 provider has
// had; in akminio's stdout and stderr (Akminio) and the files under state_dir but
// rotation.json (RotationIntent).
func envScan(t testing.TB, e *e2eenv.Env) *LeakScan {
	s := NewLeakScan(t)
	s.Secret("authentik API token", e.AK.Token())
	s.Secret("MinIO root password", e.MinIO.SecretKey)
	s.Secret("MinIO root user", e.MinIO.AccessKey)
	s.SecretsAtEnd(func() map[string]string {
		out := map[string]string{}
		if b, err := os.ReadFile(e.SecretPath(e2eenv.HookTokenFile)); err == nil {
			out[strings.TrimSpace(string(b))] = "hook token"
		}
		for _, p := range e.AK.ProviderSecrets() {
			out[p] = "provider client secret"
		}
		return out
	})
	s.Dir(e.StateDir, RotationIntent)
	return s
}

// RotationIntent reports whether a file of state_dir (rel to it) is rotation.json or one of
// its temporary copies: during a rotation it holds the new client secret by design, so the
// leak scan skips it.
func RotationIntent(rel string) bool {
	return rel == "rotation.json" || (strings.HasPrefix(rel, ".rotation.json.") && strings.HasSuffix(rel, ".tmp"))
}

// builds holds one build of ./cmd/akminio per set of build tags, per test process.
var builds struct {
	mu   sync.Mutex
	done map[string]*builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// Binary builds ./cmd/akminio once per test process and returns the binary's path. The
// binary goes to a fixed folder under the system's temporary directory, written under a
// temporary name and renamed into place, so test processes running at once never see a
// half-written file.
func Binary(t testing.TB) string {
	t.Helper()
	return BinaryWithTags(t, "")
}

// BinaryWithTags is Binary built with `go build -tags tags` (e.g. "akminio_testhooks",
// whose binaries honour test-only fault points), once per test process and tag set.
func BinaryWithTags(t testing.TB, tags string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]*builtBinary{}
	}
	b := builds.done[tags]
	if b == nil {
		b = &builtBinary{}
		builds.done[tags] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildBinary(tags) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildBinary(tags string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("e2eenv: cannot locate the module's source to build akminio")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	name := "akminio-e2e"
	if tags != "" {
		name += "-" + strings.NewReplacer(",", "-", " ", "-").Replace(tags)
	}
	// The folder is per checkout too: two worktrees testing at once must not run each
	// other's binary.
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("e2eenv: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d-%x", name, os.Getuid(), sum[:4]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("e2eenv: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "akminio-*.tmp")
	if err != nil {
		return "", fmt.Errorf("e2eenv: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-tags", tags, "-o", tmp.Name(), "./cmd/akminio")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("e2eenv: go build -tags %q ./cmd/akminio: %w\n%s", tags, err, out)
	}
	path := filepath.Join(dir, "akminio")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("e2eenv: %w", err)
	}
	return path, nil
}

// Akminio runs the akminio binary (Binary) with args and "--config", e.ConfigPath, and
// returns its output and exit status. The caller's AKMINIO_* and CREDENTIALS_DIRECTORY
// variables are not passed on, so only the config decides. A run that cannot start or
// outlives CommandTimeout fails the test. The command line, exit status and output go to
// t.Logf.
func Akminio(t testing.TB, e *e2eenv.Env, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	bin := Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	full := append(append([]string{}, args...), "--config", e.ConfigPath)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = cleanEnv(os.Environ())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("akminio %s: did not finish within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), CommandTimeout, out.String(), errb.String())
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("akminio %s: %v", strings.Join(args, " "), err)
	}
	if s := Scan(e); s != nil {
		s.Output("stdout of akminio "+strings.Join(args, " "), out.String())
		s.Output("stderr of akminio "+strings.Join(args, " "), errb.String())
	}
	t.Logf("$ akminio %s  (exit %d)\n--- stdout:\n%s--- stderr:\n%s", strings.Join(args, " "), exit, out.String(), errb.String())
	return out.String(), errb.String(), exit
}

// cleanEnv drops the variables that would change how akminio reads its config.
func cleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "AKMINIO_") || strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
