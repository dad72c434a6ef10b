package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
)

// The version the test package is built with, as git describe would print it, and the
// Debian version debVersion makes of it.
const (
	testDescribe = "v1.2.3-4-gabcdef0"
	testDebVer   = "1.2.3+4.gabcdef0"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":              "1.2.3",
		"1.2.3":               "1.2.3",
		"v1.2.3-4-gabcdef0":   "1.2.3+4.gabcdef0",
		"v1.2.3-dirty":        "1.2.3+dirty",
		"v1.2.0-rc.1-2-gabc0": "1.2.0+rc.1.2.gabc0",
		"7c3cda9":             "0.0.0+git.7c3cda9",
		"7c3cda9-dirty":       "0.0.0+git.7c3cda9.dirty",
		"1234567":             "0.0.0+git.1234567", // an untagged hash of digits is no version
	} {
		if got, err := debVersion(in); err != nil || got != want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := debVersion(" "); err == nil {
		t.Error("debVersion of an empty version: no error")
	}
}

var (
	debOnce sync.Once
	debPath string
	debErr  error
)

// testDeb builds the static binary and the package once per test binary, as `make
// package` does, into a temporary folder.
func testDeb(t *testing.T) string {
	t.Helper()
	debOnce.Do(func() {
		dir, err := os.MkdirTemp("", "akminio-package-test-")
		if err != nil {
			debErr = err
			return
		}
		bin := filepath.Join(dir, "akminio")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags",
			"-s -w -X main.version="+testDescribe+" -X main.commit=abcdef0123", "-o", bin, "../../../cmd/akminio")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			debErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		debPath, debErr = build(options{Version: testDescribe, Commit: "abcdef0123", Binary: bin,
			Arch: runtime.GOARCH, Out: filepath.Join(dir, "dist"), Root: "../../..", Date: time.Unix(1790000000, 0)})
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debPath
}

// requireTool returns the path of a command, failing in CI (where .ci/run installs it) and
// skipping elsewhere when it is missing.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package %s); .ci/run must install it", name, debianPackage)
	}
	t.Skipf("%s is not installed (Debian package %s)", name, debianPackage)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustArch(t *testing.T) string {
	a, err := debArch(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPackageContents reads the built .deb with dpkg-deb: its name, control fields,
// conffiles, maintainer scripts, and every file with its mode and owner.
func TestPackageContents(t *testing.T) {
	dpkgDeb := requireTool(t, "dpkg-deb", "dpkg")
	deb := testDeb(t)
	arch := mustArch(t)
	if want := "akminio_" + testDebVer + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Section", "Priority", "Depends", "Maintainer"} {
		fields[f] = strings.TrimSpace(run(t, dpkgDeb, "--field", deb, f))
	}
	for f, want := range map[string]string{"Package": "akminio", "Version": testDebVer, "Architecture": arch,
		"Section": "admin", "Priority": "optional", "Maintainer": maintainer} {
		if fields[f] != want {
			t.Errorf("control %s = %q, want %q", f, fields[f], want)
		}
	}
	for _, dep := range []string{"systemd | systemd-sysusers", "systemd | systemd-tmpfiles", "passwd"} {
		if !slices.Contains(strings.Split(fields["Depends"], ", "), dep) {
			t.Errorf("Depends %q lacks %q", fields["Depends"], dep)
		}
	}

	conffiles := strings.Fields(run(t, dpkgDeb, "--info", deb, "conffiles"))
	sort.Strings(conffiles)
	if want := []string{"/etc/akminio/config.yaml", "/etc/akminio/policies/my-custom-policy.json"}; !slices.Equal(conffiles, want) {
		t.Errorf("conffiles = %v, want %v", conffiles, want)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		body := run(t, dpkgDeb, "--info", deb, script)
		if !strings.HasPrefix(body, "#!/bin/sh\n") || !strings.Contains(body, "\nset -e\n") {
			t.Errorf("%s is not a set -e shell script:\n%s", script, body)
		}
	}

	// Every file and folder the package ships (./usr/, ./etc/ ... included), mode and owner.
	want := map[string]string{
		"./etc/":                                       "drwxr-xr-x root/root",
		"./etc/akminio/":                               "drwxr-xr-x root/root",
		"./etc/akminio/config.yaml":                    "-rw-r--r-- root/root",
		"./etc/akminio/credentials/":                   "drwx------ root/root",
		"./etc/akminio/policies/":                      "drwxr-xr-x root/root",
		"./etc/akminio/policies/my-custom-policy.json": "-rw-r--r-- root/root",
		"./usr/":                    "drwxr-xr-x root/root",
		"./usr/bin/":                "drwxr-xr-x root/root",
		"./usr/bin/akminio":         "-rwxr-xr-x root/root",
		"./usr/lib/":                "drwxr-xr-x root/root",
		"./usr/lib/systemd/":        "drwxr-xr-x root/root",
		"./usr/lib/systemd/system/": "drwxr-xr-x root/root",
		"./usr/lib/systemd/system/akminio.service":      "-rw-r--r-- root/root",
		"./usr/lib/sysusers.d/":                         "drwxr-xr-x root/root",
		"./usr/lib/sysusers.d/akminio.conf":             "-rw-r--r-- root/root",
		"./usr/lib/tmpfiles.d/":                         "drwxr-xr-x root/root",
		"./usr/lib/tmpfiles.d/akminio.conf":             "-rw-r--r-- root/root",
		"./usr/share/":                                  "drwxr-xr-x root/root",
		"./usr/share/doc/":                              "drwxr-xr-x root/root",
		"./usr/share/doc/akminio/":                      "drwxr-xr-x root/root",
		"./usr/share/doc/akminio/README.md":             "-rw-r--r-- root/root",
		"./usr/share/doc/akminio/README.systemd.md":     "-rw-r--r-- root/root",
		"./usr/share/doc/akminio/README.credentials.md": "-rw-r--r-- root/root",
		"./usr/share/doc/akminio/operations.md":         "-rw-r--r-- root/root",
		"./usr/share/doc/akminio/changelog.gz":          "-rw-r--r-- root/root",
		"./usr/share/doc/akminio/copyright":             "-rw-r--r-- root/root",
		"./usr/share/lintian/":                          "drwxr-xr-x root/root",
		"./usr/share/lintian/overrides/":                "drwxr-xr-x root/root",
		"./usr/share/lintian/overrides/akminio":         "-rw-r--r-- root/root",
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, dpkgDeb, "--contents", deb)), "\n") {
		f := strings.Fields(line) // mode owner size date time path
		if len(f) != 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		got[f[5]] = f[0] + " " + f[1]
	}
	for path, w := range want {
		if got[path] != w {
			t.Errorf("%s: %q, want %q", path, got[path], w)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected file in the package: %s (%s)", path, got[path])
		}
	}
}

// lintianWarnings are the warnings left, each for a reason (README.md "Debian package"):
//   - no-manual-page: `akminio help` and README.md are the documentation.
//   - non-standard-dir-perm: /etc/akminio/credentials is 0700 because it holds the secrets.
var lintianWarnings = []string{"no-manual-page", "non-standard-dir-perm"}

// TestPackageLintian runs lintian on the package: no error, and no warning beyond the ones
// README.md states with their reasons.
func TestPackageLintian(t *testing.T) {
	lintian := requireTool(t, "lintian", "lintian")
	deb := testDeb(t)
	start := time.Now()
	out, err := exec.Command(lintian, "--tag-display-limit", "0", "--show-overrides", deb).CombinedOutput()
	t.Logf("lintian took %v:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	// lintian exits 2 when it reports an error tag; other non-zero statuses are its own failure.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("lintian: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "E:":
			t.Errorf("lintian error: %s", line)
		case "W:":
			if !slices.Contains(lintianWarnings, f[2]) {
				t.Errorf("lintian warning not in the stated list (fix it, or say why in README.md and lintianWarnings): %s", line)
			}
		}
	}
}

// TestPackageInstall installs the package on this machine with dpkg and checks what an
// operator gets: files, modes and owners, the system user, the enabled (not started) unit,
// `akminio version` and the first-run message from the installed binary, systemd-analyze
// verify of the installed unit; that a reinstall keeps an edited config; that dpkg -r
// leaves only the conffiles and state an operator keeps, and that dpkg -P leaves nothing.
//
// It changes the machine, so it runs only in CI (CI=true, where .ci/run runs as root on a
// throw-away machine) or when AKMINIO_PACKAGE_INSTALL=1 asks for it.
func TestPackageInstall(t *testing.T) {
	if os.Getenv("CI") != "true" && os.Getenv("AKMINIO_PACKAGE_INSTALL") != "1" {
		t.Skip("installs a package into this machine: runs in CI (CI=true) or with AKMINIO_PACKAGE_INSTALL=1")
	}
	if os.Geteuid() != 0 {
		t.Fatal("dpkg -i needs root: run as root (CI does)")
	}
	dpkg := requireTool(t, "dpkg", "dpkg")
	analyze := requireTool(t, "systemd-analyze", "systemd")
	deb := testDeb(t)

	// One install test at a time on a machine (two worktrees' test runs would race on dpkg).
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "akminio-package-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if exec.Command(dpkg, "--status", "akminio").Run() == nil {
		t.Fatal("akminio is already installed here: this test installs and purges its own; dpkg -P akminio first")
	}
	if _, err := os.Stat("/etc/akminio"); err == nil {
		t.Fatal("/etc/akminio exists before the install: the purge check cannot tell what it left")
	}
	before := snapshot(t)
	installed := false
	t.Cleanup(func() {
		if installed {
			_ = exec.Command(dpkg, "--purge", "akminio").Run()
		}
	})

	start := time.Now()
	installed = true
	t.Logf("dpkg -i:\n%s", run(t, dpkg, "--install", deb))

	// Files, modes and owners as intended.
	uid, gid := lookupUser(t, "akminio")
	for path, w := range map[string]struct {
		mode     fs.FileMode
		uid, gid int
	}{
		"/usr/bin/akminio":                        {0o755, 0, 0},
		"/usr/lib/systemd/system/akminio.service": {0o644, 0, 0},
		"/usr/lib/sysusers.d/akminio.conf":        {0o644, 0, 0},
		"/usr/lib/tmpfiles.d/akminio.conf":        {0o644, 0, 0},
		"/etc/akminio/config.yaml":                {0o644, 0, 0},
		"/etc/akminio/credentials":                {fs.ModeDir | 0o700, 0, 0},
		"/var/lib/akminio":                        {fs.ModeDir | 0o700, uid, gid},
		"/usr/share/doc/akminio/copyright":        {0o644, 0, 0},
		"/usr/share/doc/akminio/operations.md":    {0o644, 0, 0},
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("after dpkg -i: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != w.mode || int(st.Uid) != w.uid || int(st.Gid) != w.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, w.mode, w.uid, w.gid)
		}
	}
	// A system user with no login, at home in the state folder.
	pw := passwdEntry(t, "akminio")
	if uid == 0 || uid >= 1000 || pw[5] != "/var/lib/akminio" || !strings.HasSuffix(pw[6], "nologin") {
		t.Errorf("user akminio: %v, want a system uid, home /var/lib/akminio, a nologin shell", pw)
	}
	// Enabled: the WantedBy= symlink exists. Not started: nothing runs akminio.
	if target, err := os.Readlink("/etc/systemd/system/multi-user.target.wants/akminio.service"); err != nil ||
		!strings.HasSuffix(target, "/systemd/system/akminio.service") {
		t.Errorf("akminio.service not enabled: %q, %v", target, err)
	}
	if pids := processesOf("/usr/bin/akminio"); len(pids) > 0 {
		t.Errorf("akminio runs after the install (pids %v): it must be enabled, not started", pids)
	}

	if out := run(t, "/usr/bin/akminio", "version"); !strings.HasPrefix(out, "akminio "+testDescribe+"\n") {
		t.Errorf("akminio version:\n%s", out)
	}
	cmd := exec.Command("/usr/bin/akminio", "check-config", "--config", "/etc/akminio/config.yaml")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 {
		t.Errorf("check-config of the packaged config: %v, want exit status 78", err)
	}
	if want := config.FirstRunMessage("/etc/akminio/config.yaml") + "\n"; stderr.String() != want || stdout.Len() > 0 {
		t.Errorf("check-config of the packaged config: stdout %q, stderr %q; want only the first-run message %q",
			stdout.String(), stderr.String(), want)
	}
	if out, err := exec.Command(analyze, "verify", "/usr/lib/systemd/system/akminio.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
	}

	// Reinstalling keeps an edited config (a conffile) and the postinst runs again cleanly.
	edited := "# edited by the operator\n" + readFile(t, "/etc/akminio/config.yaml")
	if err := os.WriteFile("/etc/akminio/config.yaml", []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dpkg, "--install", deb)
	if readFile(t, "/etc/akminio/config.yaml") != edited {
		t.Error("reinstalling the package replaced the edited /etc/akminio/config.yaml")
	}

	// dpkg -r: the program is gone; what the operator made stays (the config, the state
	// folder, the user, the unit's enablement) until purge.
	run(t, dpkg, "--remove", "akminio")
	kept := map[string]bool{
		"/etc/akminio": true, "/etc/akminio/config.yaml": true, "/etc/akminio/policies": true,
		"/etc/akminio/policies/my-custom-policy.json": true, "/var/lib/akminio": true,
		"/etc/systemd/system/multi-user.target.wants/akminio.service":                         true,
		"/var/lib/systemd/deb-systemd-helper-enabled/akminio.service.dsh-also":                true,
		"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/akminio.service": true,
		"/etc/passwd": true, "/etc/group": true, "/etc/shadow": true, "/etc/gshadow": true,
	}
	for _, d := range diffSnapshots(before, snapshot(t)) {
		if !kept[d.path] && !strings.HasPrefix(d.path, "/var/lib/dpkg/info/akminio.") {
			t.Errorf("after dpkg -r: %s", d)
		}
	}
	for _, gone := range []string{"/usr/bin/akminio", "/usr/lib/systemd/system/akminio.service"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("after dpkg -r: %s is still there", gone)
		}
	}

	// dpkg -P: nothing left, not even the user.
	run(t, dpkg, "--purge", "akminio")
	installed = false
	for _, d := range diffSnapshots(before, snapshot(t)) {
		t.Errorf("after dpkg -P: %s", d)
	}
	t.Logf("install, checks, reinstall, remove and purge took %v", time.Since(start).Round(100*time.Millisecond))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// passwdEntry is the user's /etc/passwd line split at ':'.
func passwdEntry(t *testing.T, name string) []string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, "/etc/passwd"), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no user %s in /etc/passwd", name)
	return nil
}

func lookupUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	pw := passwdEntry(t, name)
	if _, err := fmt.Sscan(pw[2]+" "+pw[3], &uid, &gid); err != nil {
		t.Fatal(err)
	}
	return uid, gid
}

// processesOf lists the pids whose executable is exe.
func processesOf(exe string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if target, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && target == exe {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// entry is one path of a snapshot: its type, mode and owner (and a hash for the account
// files, whose content is what changes).
type entry struct{ path, desc string }

func (e entry) String() string { return e.path + " " + e.desc }

// Where a package can leave something: walked in full, except the folders other programs
// change on their own (apt's and dpkg's databases, a database server's data).
var (
	snapshotRoots = []string{"/etc", "/usr", "/opt", "/srv", "/var/lib"}
	snapshotSkip  = map[string]bool{"/var/lib/apt": true, "/var/lib/dpkg": true, "/var/lib/postgresql": true,
		"/usr/local/go": true}
	// The shadow tools' backups (/etc/passwd- ...) hold the previous version of each file by design.
	hashed = map[string]bool{"/etc/passwd": true, "/etc/group": true, "/etc/shadow": true, "/etc/gshadow": true}
)

func snapshot(t *testing.T) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, root := range snapshotRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if snapshotSkip[path] {
				return filepath.SkipDir
			}
			fi, err := d.Info()
			if err != nil {
				return nil // gone while walking
			}
			st := fi.Sys().(*syscall.Stat_t)
			desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(path)
				desc += " -> " + target
			}
			if hashed[path] {
				data, _ := os.ReadFile(path)
				desc += fmt.Sprintf(" sha256:%x", sha256.Sum256(data))
			}
			snap[path] = desc
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot %s: %v", root, err)
		}
	}
	// dpkg's record of the package (info/akminio.*): present after -r, gone after -P.
	infos, _ := filepath.Glob("/var/lib/dpkg/info/akminio.*")
	for _, p := range infos {
		snap[p] = "dpkg info"
	}
	return snap
}

// diffSnapshots lists what was added, removed or changed from a to b.
func diffSnapshots(a, b map[string]string) []entry {
	var out []entry
	for p, d := range b {
		if old, ok := a[p]; !ok {
			out = append(out, entry{p, "added (" + d + ")"})
		} else if old != d {
			out = append(out, entry{p, "changed from " + old + " to " + d})
		}
	}
	for p, d := range a {
		if _, ok := b[p]; !ok {
			out = append(out, entry{p, "removed (" + d + ")"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// TestDaemonLeavesBuildToolsOut: the daemon's binary links neither nfpm nor the Grafana
// SDK (they are for internal/cmd/package and internal/cmd/dashboard only).
func TestDaemonLeavesBuildToolsOut(t *testing.T) {
	deps := run(t, "go", "list", "-deps", "../../../cmd/akminio")
	for _, mod := range []string{"github.com/goreleaser/nfpm", "github.com/grafana/grafana-foundation-sdk"} {
		if strings.Contains(deps, mod) {
			t.Errorf("cmd/akminio depends on %s", mod)
		}
	}
}
