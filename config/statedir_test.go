package config

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRequireStateDir: a state_dir that exists must be a directory of akminio's user that
// neither group nor others can write; a missing one is fine (akminio creates it 0700).
func TestRequireStateDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	file := filepath.Join(root, "file")
	writeFile(t, file, "x", 0o600)
	// A directory of another user: one chowned away when the tests run as root, else /usr.
	other, otherUID := "/usr", 0
	if os.Geteuid() == 0 {
		other, otherUID = mk("other", 0o700), 65534
		if err := os.Chown(other, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
	}
	me := strconv.Itoa(os.Geteuid())
	for _, tc := range []struct {
		dir, want string
	}{
		{filepath.Join(root, "missing"), ""},
		{mk("private", 0o700), ""},
		{mk("group-readable", 0o750), ""},
		{mk("group-writable", 0o770), "state_dir: " + root + "/group-writable is writable by group or others (mode 0770): they could plant akminio's state; chmod 700 it"},
		{mk("world-writable", 0o1777), "state_dir: " + root + "/world-writable is writable by group or others (mode 0777): they could plant akminio's state; chmod 700 it"},
		{file, "state_dir: " + file + " is not a directory"},
		{other, "state_dir: " + other + " is owned by uid " + strconv.Itoa(otherUID) + ", not by akminio's user (uid " + me + "): whoever owns it could plant akminio's state; chown it to akminio's user"},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			c := &Config{StateDir: tc.dir}
			err := c.RequireStateDir()
			if tc.want == "" {
				if err != nil {
					t.Errorf("RequireStateDir: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("RequireStateDir: %v\nwant %s", err, tc.want)
			}
		})
	}
}
