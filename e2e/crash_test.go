package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/miniotest"
)

// TestCrashAtEveryWrite kills `akminio apply` with SIGKILL right after a write step (a
// binary built with -tags akminio_testhooks, AKMINIO_TEST_CRASH_AFTER_WRITE listing the
// steps already crashed after), from a fresh install (everything to create,
// identity_openid and a MinIO restart included), again and again: each run redoes what the
// crashes left undone and dies right after its first write not crashed after yet, before
// saving what it did, so every distinct write of the install is followed by a crash.
// After each crash, the four demo users log in through STS: nobody gets more than declared
// (alice read and write, bob and dave read, carol nothing). When a run has nothing left to
// write it ends normally; the estate must then be in sync and the logins exactly as declared.
func TestCrashAtEveryWrite(t *testing.T) {
	env := e2eenvtest.Start(t)
	bin := e2eenvtest.BinaryWithTags(t, "akminio_testhooks")
	scan := e2eenvtest.Scan(env)
	run := func(extra ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, "apply", "--config", env.ConfigPath)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, extra...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		scan.Output("output of akminio apply "+strings.Join(extra, " "), out.String())
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ProcessState.String() == "signal: killed":
			return out.String(), -9
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return out.String(), 0
	}
	var steps []string
	for crash := 1; ; crash++ {
		if crash > 30 {
			t.Fatalf("still writing after %d crashes: %q", crash-1, steps)
		}
		out, code := run("AKMINIO_TEST_CRASH_AFTER_WRITE=" + strings.Join(steps, ";"))
		if code != -9 {
			if code != 0 {
				t.Fatalf("the run after %d crashes: exit %d\n%s", crash-1, code, out)
			}
			break
		}
		_, step, ok := strings.Cut(out, "akminio testhook: killed after ")
		if !ok {
			t.Fatalf("killed, but not by the test hook:\n%s", out)
		}
		step, _, _ = strings.Cut(step, "\n")
		steps = append(steps, step)
		t.Logf("crash %d, right after %s", crash, steps[len(steps)-1])
		noWiderLogins(t, env, crash)
	}
	t.Logf("%d writes, each followed by a crash: %q", len(steps), steps)
	if len(steps) < 5 {
		t.Errorf("only %d writes crashed after; a fresh install makes more", len(steps))
	}
	if out, code := run(); code != 0 {
		t.Fatalf("apply after the crashes: exit %d\n%s", code, out)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "plan"); code != 0 {
		t.Errorf("plan after the crashes: exit %d, want 0 (in sync)", code)
	}
	wantLogins(t, env)
}

// noWiderLogins fails when a demo user gets more through STS than the config declares.
// A refused or failing login is narrower, which a crash may leave.
func noWiderLogins(t *testing.T, env *e2eenv.Env, crash int) {
	t.Helper()
	declared := map[string]miniotest.Access{
		"alice": {CanRead: true, CanWrite: true}, "bob": {CanRead: true}, "carol": {}, "dave": {CanRead: true},
	}
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		a, err := env.Login(context.Background(), user)
		if err != nil {
			continue // no access at all
		}
		d := declared[user]
		if (a.CanRead && !d.CanRead) || (a.CanWrite && !d.CanWrite) {
			t.Errorf("after crash %d: %s can read %v, write %v; declared read %v, write %v", crash, user, a.CanRead, a.CanWrite, d.CanRead, d.CanWrite)
		}
	}
}
