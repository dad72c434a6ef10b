package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a child akminio gets to stop after SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// reconcile runs plan (drift expected: nothing exists yet), apply, and plan again (no drift).
func (s *session) reconcile(ctx context.Context) error {
	steps := []struct {
		title, step string
		args        []string
		want        int
		meaning     string
	}{
		{"akminio plan: what is missing on a fresh authentik and MinIO", "plan (before apply)",
			[]string{"plan"}, 2, "exit 2: drift found, as expected from nothing"},
		{"akminio apply: create it, restart MinIO, verify with the canary users", "apply",
			[]string{"apply"}, 0, "exit 0: in sync"},
		{"akminio plan again", "plan (after apply)",
			[]string{"plan"}, 0, "exit 0: no drift"},
	}
	for _, st := range steps {
		s.heading(st.title)
		s.printf("  $ akminio %s --config %s\n", strings.Join(st.args, " "), s.env.ConfigPath)
		out, code, err := s.akminioCommand(ctx, st.args...)
		s.printf("%s", indent(out))
		if err != nil {
			return failed(st.step, err)
		}
		if code != st.want {
			return failed(st.step, fmt.Errorf("akminio %s exited %d, want %d; its log ends with:\n%s",
				st.args[0], code, st.want, indent(s.logTail(20))))
		}
		s.printf("  -> %s\n", st.meaning)
	}
	return nil
}

// akminioCommand runs the akminio binary with args and the demo config, and returns its
// standard output and exit status. Its logs (standard error) go to s.logPath. err is set
// only when the command could not be run or was interrupted.
func (s *session) akminioCommand(ctx context.Context, args ...string) (string, int, error) {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- akminio %s\n", strings.Join(args, " "))
	var stdout bytes.Buffer
	cmd := s.childCommand(ctx, append(args, "--config", s.env.ConfigPath)...)
	cmd.Stdout = &stdout
	cmd.Stderr = logFile
	err = cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), 0, ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return stdout.String(), exit.ExitCode(), nil
	}
	if err != nil {
		return stdout.String(), 0, fmt.Errorf("run %s: %w", s.akminio, err)
	}
	return stdout.String(), 0, nil
}

// childCommand prepares the akminio binary with args: cancelling ctx sends it SIGTERM and
// kills it after stopGrace; it dies with the demo even if the demo is killed.
func (s *session) childCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.akminio, args...)
	cmd.Dir = s.dir
	cmd.Env = childEnv(os.Environ())
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	return cmd
}

// childEnv drops the caller's AKMINIO_* and CREDENTIALS_DIRECTORY variables, which would
// override keys or secrets of the demo config.
func childEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			env = append(env, kv)
		}
	}
	return env
}

// logTail returns the last n lines of akminio's log.
func (s *session) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
