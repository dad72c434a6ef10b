package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/miniotest"
)

// demoArgs are the flags that point the demo at the akminio binary built from this tree,
// the cached MinIO and a folder of the test's.
func demoArgs(t *testing.T, parent string, extra ...string) []string {
	t.Helper()
	bin := miniotest.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no MinIO binary at %s (%v): run `make minio`, or set %s", bin, err, miniotest.BinaryEnv)
	}
	return append([]string{"-akminio", e2eenvtest.Binary(t), "-minio", bin, "-dir", parent}, extra...)
}

func TestDemoShowsEachUsersAccessAndStopsEverything(t *testing.T) {
	parent := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, demoArgs(t, parent, "-run=false"), &out, &errb)
	t.Logf("demo output:\n%s\nstderr:\n%s", out.String(), errb.String())
	if code != exitOK {
		t.Fatalf("demo exited %d, want 0; stderr: %s", code, errb.String())
	}
	for _, want := range []string{
		"exit 2: drift found, as expected from nothing",
		`create  application "minio"`,
		"exit 0: in sync",
		"exit 0: no drift",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	rows := loginTable(t, out.String())
	want := map[string]struct{ policies, access string }{
		"alice": {"consoleAdmin", "yes yes"},
		"bob":   {"readonly", "yes no"},
		"carol": {"-", "refused by MinIO STS: policy claim missing"},
		"dave":  {"readonly", "yes no"},
	}
	for user, w := range want {
		row, ok := rows[user]
		switch {
		case !ok:
			t.Errorf("no row for %s in the login table", user)
		case row[2] != w.policies:
			t.Errorf("%s: policies claimed %q, want %q", user, row[2], w.policies)
		case !strings.HasPrefix(strings.Join(row[3:], " "), w.access):
			t.Errorf("%s: access %q, want %q", user, strings.Join(row[3:], " "), w.access)
		}
	}
	if strings.Contains(out.String(), "akminio run") {
		t.Errorf("-run=false still ran the daemon")
	}
	assertNothingLeft(t, parent)
}

func TestDemoRunServesStatusAndStopsOnInterrupt(t *testing.T) {
	parent := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	interrupt, stop := context.WithCancel(ctx) // stands in for Ctrl-C (signal.NotifyContext)
	defer stop()
	out := &syncBuffer{}
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(interrupt, demoArgs(t, parent), out, &errb) }()

	status := regexp.MustCompile(`Status: (http://127\.0\.0\.1:\d+/status)`)
	var url string
	for url == "" {
		select {
		case code := <-done:
			t.Fatalf("demo ended (exit %d) before the daemon was ready:\n%s\nstderr: %s", code, out.String(), errb.String())
		case <-ctx.Done():
			t.Fatalf("the daemon was not ready in time:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if m := status.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"in_sync"`) {
		t.Errorf("GET %s: %s %s, want 200 with an in_sync last run", url, resp.Status, body)
	}

	stop()
	code := <-done
	t.Logf("demo output:\n%s\nstderr:\n%s", out.String(), errb.String())
	if code != exitOK {
		t.Fatalf("demo exited %d after the interrupt, want 0 (a clean stop); stderr: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "akminio stopped.") {
		t.Errorf("demo output does not say the daemon stopped")
	}
	assertNothingLeft(t, parent)
}

// loginTable returns the rows of the demo's login table by user, each split into its
// columns (USER, GROUPS, POLICIES CLAIMED, then the access cells).
func loginTable(t *testing.T, out string) map[string][]string {
	t.Helper()
	_, table, ok := strings.Cut(out, "  USER ")
	if !ok {
		t.Fatalf("no login table in the demo output")
	}
	cols := regexp.MustCompile(`\s{2,}`)
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n")[1:] {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "  (") {
			break
		}
		cells := cols.Split(strings.TrimSpace(line), -1)
		if len(cells) < 4 {
			t.Fatalf("login table row %q has %d columns, want at least 4", line, len(cells))
		}
		rows[cells[0]] = cells
	}
	return rows
}

// assertNothingLeft checks that the demo removed its folder under parent and that no
// process (MinIO, akminio) still runs with that folder on its command line.
func assertNothingLeft(t *testing.T, parent string) {
	t.Helper()
	if entries, err := os.ReadDir(parent); err != nil || len(entries) > 0 {
		t.Errorf("demo folder not removed: %v %v", entries, err)
	}
	if runtime.GOOS != "linux" {
		t.Logf("process check needs /proc; not on %s", runtime.GOOS)
		return
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended meanwhile
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, parent) {
			t.Errorf("process left running after the demo: %s: %s", filepath.Dir(p), cmd)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the demo writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
