package statedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileRefusesWhatAkminioDidNotWrite: ReadFile reads a 0600 regular file of the
// process's user and refuses a symbolic link, a non-regular file, a file group or others
// may read, and (as root, where it can be arranged) a file of another user.
func TestReadFileRefusesWhatAkminioDidNotWrite(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "state.json")
	if err := WriteFile(good, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(good); err != nil || string(b) != `{"ok":true}` {
		t.Fatalf("ReadFile of akminio's own file: %q, %v", b, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose.json")
	if err := os.WriteFile(loose, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{link: "is a symbolic link", loose: "has mode 0644", fifo: "is not a regular file", dir: "is not a regular file"}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other.json")
		if err := os.WriteFile(other, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases[other] = "is owned by uid 65534"
	}
	for path, want := range cases {
		if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile(%s): %v, want an error saying %q", filepath.Base(path), err, want)
		}
	}
}
