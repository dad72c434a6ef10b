package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// readyTimeout bounds how long the daemon may take to answer /readyz with 200.
const readyTimeout = 90 * time.Second

// daemon runs `akminio run` in the foreground, its console logs on the demo's output,
// until ctx ends (Ctrl-C or SIGTERM); then it stops it with SIGTERM and expects a clean
// exit. The daemon ending by itself is a failure.
func (s *session) daemon(ctx context.Context) error {
	const step = "akminio run"
	base := "http://" + s.listen
	s.heading("akminio run: the daemon, in the foreground (its logs follow)")
	s.printf("  $ akminio run --config %s\n", s.env.ConfigPath)
	cmd := s.childCommand(ctx, "run", "--config", s.env.ConfigPath)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		return failed(step, fmt.Errorf("start %s: %w", s.akminio, err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ready := make(chan error, 1)
	go func() { ready <- waitReady(ctx, base+"/readyz") }()
	select {
	case err := <-ready:
		if err != nil && ctx.Err() == nil {
			// Not ready: stop the daemon before reporting.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return failed(step, err)
		}
		if err == nil {
			s.printf("\n  akminio is running and ready. Status: %s/status  (also /healthz, /readyz, /metrics)\n", base)
			s.printf("  Press Ctrl-C to stop akminio, MinIO and the authentik simulator.\n\n")
		}
	case err := <-exited:
		return failed(step, fmt.Errorf("the daemon ended before it was ready: %v", exitText(err)))
	}
	err := <-exited
	if ctx.Err() == nil {
		return failed(step, fmt.Errorf("the daemon ended by itself: %v", exitText(err)))
	}
	// Stopped by the demo: Wait reports the cancellation even after a clean exit, so
	// the exit status is what tells.
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		return failed(step, fmt.Errorf("the daemon did not stop cleanly on SIGTERM: %s", cmd.ProcessState))
	}
	s.printf("\n  akminio stopped.\n")
	return nil
}

// waitReady polls url until it answers 200, ctx ends or readyTimeout passes.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, readyTimeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// exitText describes how a child ended.
func exitText(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
