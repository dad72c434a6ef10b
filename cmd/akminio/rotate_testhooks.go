//go:build akminio_testhooks

package main

import (
	"os"
	"strings"
	"syscall"
	"time"

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
)

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
