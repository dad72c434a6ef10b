package miniotest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
)

// BinaryEnv names the variable that points at a MinIO binary, overriding the cache.
const BinaryEnv = "AKMINIO_MINIO_BIN"

// BinaryPath is where the MinIO binary is expected: $AKMINIO_MINIO_BIN, else the
// cache that scripts/minio.sh fills:
// ${AKMINIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akminio}/bin/minio.
func BinaryPath() string {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		return bin
	}
	cache := os.Getenv("AKMINIO_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "akminio")
	}
	abs, err := filepath.Abs(filepath.Join(cache, "bin", "minio"))
	if err != nil {
		return filepath.Join(cache, "bin", "minio")
	}
	return abs
}

// Server is a MinIO server started for one test; it stops when the test ends.
type Server struct {
	*Process
}

// Start launches a MinIO server in t.TempDir() and stops it when the test ends. A
// missing binary fails the test (never skips it, so CI cannot pass without MinIO);
// the message says how to build it. If the test fails, the server log's tail is
// logged.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("miniotest: no MinIO binary at %s (%v): run `make minio` (or scripts/minio.sh ensure), or set %s",
			bin, err, BinaryEnv)
	}
	p, err := Launch(context.Background(), bin, t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("miniotest: last lines of the MinIO log %s:\n%s", p.LogPath, p.LogTail(40))
		}
		if err := p.Stop(); err != nil {
			t.Errorf("miniotest: stop: %v", err)
		}
	})
	return &Server{Process: p}
}

// Admin returns a madmin client with the root credentials.
func (s *Server) Admin(t testing.TB) *madmin.AdminClient {
	t.Helper()
	adm, err := s.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

// S3 returns a minio-go client with the root credentials.
func (s *Server) S3(t testing.TB) *minio.Client {
	t.Helper()
	c, err := s.S3Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Restart stops the server and starts it again on the same port and data directory,
// and waits until it is ready, IAM included.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Process.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// RestartInPlace restarts the server through the admin API (ServiceRestartV2, the
// PID stays) and waits until the new instance is ready.
func (s *Server) RestartInPlace(t testing.TB) {
	t.Helper()
	if err := s.Process.RestartInPlace(context.Background()); err != nil {
		t.Fatal(err)
	}
}
