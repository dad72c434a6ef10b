// Package e2eenvtest is a short import path for the test side of internal/e2eenv: Start
// and Binary here are e2eenv.Start and e2eenv.Binary. Run the binary against an
// environment with env.Akminio(t, "plan", "--output", "json").
package e2eenvtest

import (
	"testing"

	"github.com/akminio/akminio/internal/e2eenv"
)

// Start sets up an e2eenv.Env in t.TempDir() and closes it when the test ends.
func Start(t testing.TB) *e2eenv.Env {
	t.Helper()
	return e2eenv.Start(t)
}

// Binary builds ./cmd/akminio once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return e2eenv.Binary(t)
}
