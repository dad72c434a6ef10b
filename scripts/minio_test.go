// Package scripts holds the tests of the repository's shell scripts.
package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// minioSh runs scripts/minio.sh with its cache in cache and returns stdout and stderr.
func minioSh(t *testing.T, cache string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("./minio.sh", args...)
	cmd.Env = append(os.Environ(), "AKMINIO_CACHE="+cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("minio.sh %v: %v\nstderr: %s", args, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestMinioShPath: `path` prints the cached binary's path, and says when that binary is
// missing or is not the pinned MinIO (a stale cache after the pin moves is rebuilt by
// `ensure` rather than silently tested against).
func TestMinioShPath(t *testing.T) {
	cache := t.TempDir()
	bin := filepath.Join(cache, "bin", "minio")
	stdout, stderr := minioSh(t, cache, "path")
	if stdout != bin+"\n" || !strings.Contains(stderr, bin+" is missing; run: make minio") {
		t.Errorf("missing: stdout %q, stderr %q", stdout, stderr)
	}

	// Any Go binary that is not the pinned MinIO: this test's own.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	_, stderr = minioSh(t, cache, "path")
	if !strings.Contains(stderr, bin+" is of unknown version, not the pinned github.com/minio/minio@") {
		t.Errorf("stale: stderr %q", stderr)
	}

	// The real, pinned server (make test passes it in): no complaint.
	pinned := os.Getenv("AKMINIO_MINIO_BIN")
	if pinned == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AKMINIO_MINIO_BIN is not set; run the tests with make test")
		}
		t.Skip("AKMINIO_MINIO_BIN is not set; run the tests with make test")
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pinned, bin); err != nil {
		t.Fatal(err)
	}
	if _, stderr = minioSh(t, cache, "path"); stderr != "" {
		t.Errorf("pinned binary: stderr %q, want nothing", stderr)
	}
}
