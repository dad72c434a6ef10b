package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirOthersCanWriteIsRefused: every command that keeps state in state_dir exits 78
// naming state_dir when group or others can write to it, before reaching a backend;
// check-config, which keeps no state, accepts the same file.
func TestStateDirOthersCanWriteIsRefused(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(`
authentik:
  url: http://%s
  token: inline-authentik-token
  provider:
    redirect_uris: [https://minio.example/oauth_callback]
minio:
  endpoint: http://%s
  access_key: ak
  secret_key: sk-inline
state_dir: %s
bindings:
  - group: Minio admins
    policies: [consoleAdmin]
`, closedPort(t), closedPort(t), state)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "state_dir: " + state + " is writable by group or others (mode 0777): they could plant akminio's state; chmod 700 it\n"
	for _, args := range [][]string{{"plan"}, {"apply"}, {"run"}, {"rotate-secret"}} {
		r := runBinary(t, dir, nil, append(args, "--config", path)...)
		if r.code != exitConfig || withoutWarnings(r.stderr) != want {
			t.Errorf("akminio %v: exit %d, stderr %q; want exit 78 and %q", args, r.code, r.stderr, want)
		}
	}
	if r := runBinary(t, dir, nil, "check-config", "--config", path); r.code != exitOK || !strings.HasSuffix(r.stdout, ": valid\n") {
		t.Errorf("check-config: exit %d, stdout %q, stderr %q; want valid", r.code, r.stdout, r.stderr)
	}
}
