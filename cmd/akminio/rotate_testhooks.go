//go:build akminio_testhooks

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/rotate"
)

// Test-only environment of binaries built with -tags akminio_testhooks (the end-to-end
// tests build one). Release builds do not contain this file and ignore these variables.
const (
	// envCrashAfter names a rotation step (rotate.Steps): the process kills itself with
	// SIGKILL right after that step, as a crash or a power cut would stop it.
	envCrashAfter = "AKMINIO_TEST_CRASH_AFTER"
	// envRestartTimeout bounds a MinIO restart during a rotation (a Go duration).
	envRestartTimeout = "AKMINIO_TEST_RESTART_TIMEOUT"
	// envCrashAfterWrite, when set, makes an apply (or a daemon run) kill itself with SIGKILL
	// right after the first write step (reconcile step name, "minio create policy x") that
	// is not in its value (step names separated by ";"), before saving what that write
	// left. It writes "akminio testhook: killed after <step>" to stderr first.
	envCrashAfterWrite = "AKMINIO_TEST_CRASH_AFTER_WRITE"
)

// engineTestHook returns, when AKMINIO_TEST_CRASH_AFTER_WRITE is set, the hook that puts
// the crash fault point into every engine (Engine.AfterWrite).
func engineTestHook() func(*reconcile.Engine) {
	v, ok := os.LookupEnv(envCrashAfterWrite)
	if !ok {
		return nil
	}
	survived := strings.Split(v, ";")
	return func(e *reconcile.Engine) {
		e.AfterWrite = func(step string) {
			if !slices.Contains(survived, step) {
				fmt.Fprintf(os.Stderr, "akminio testhook: killed after %s\n", step)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // SIGKILL cannot be caught; never go on
			}
		}
	}
}

// rotationTestHooks returns the session's rotation hooks of a test build.
func rotationTestHooks() func(environ []string, d *rotate.Deps) {
	return func(environ []string, d *rotate.Deps) {
		for _, kv := range environ {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case envCrashAfter:
				step := v
				d.Fault = func(s string) {
					if s == step {
						_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
						select {} // SIGKILL cannot be caught; never go on
					}
				}
			case envRestartTimeout:
				if t, err := time.ParseDuration(v); err == nil {
					d.RestartTimeout = t
				}
			}
		}
	}
}
