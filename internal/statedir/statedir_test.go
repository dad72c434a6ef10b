package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWholeWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	for _, data := range []string{"first\n", "second, longer\n"} {
		if err := WriteFile(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if tmps, err := TempFiles(path); err != nil || len(tmps) != 0 {
		t.Errorf("temporary files left after clean writes: %v, %v", tmps, err)
	}
}

// TestTempFilesFindsWhatACrashLeaves: a temporary file of the pattern WriteFile uses is
// listed (the positive control of the test above), another file beside it is not.
func TestTempFilesFindsWhatACrashLeaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rotation.json")
	left := filepath.Join(dir, ".rotation.json.123.tmp")
	for _, f := range []string{left, filepath.Join(dir, "state.json")} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmps, err := TempFiles(path)
	if err != nil || len(tmps) != 1 || tmps[0] != left {
		t.Errorf("TempFiles = %v, %v; want [%s]", tmps, err, left)
	}
}

func TestTryLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	l, err := TryLock(dir, "run.lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(dir, "run.lock"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(dir, "run.lock")
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	_ = l2.Unlock()
}
