package main

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// newEngine wires the reconcile engine from a validated config: the two adapters and the
// desired state. Every command that observes or writes builds its engine here. Both
// adapters mark their requests with akminio's User-Agent themselves (reconcile.OwnUserAgent).
func newEngine(cfg *config.Config, log *zap.Logger) (*reconcile.Engine, error) {
	return newFencedEngine(cfg, log, nil)
}

// newFencedEngine is newEngine whose adapters send a write only when gate allows it (nil:
// always), checked right before each request (lease.Fence), and whose engine asks gate
// before each write step (Engine.Gate).
func newFencedEngine(cfg *config.Config, log *zap.Logger, gate lease.Gate) (*reconcile.Engine, error) {
	v, _ := buildVersion()
	fence := func(next http.RoundTripper) http.RoundTripper {
		if gate == nil {
			return next
		}
		return lease.Fence(gate, next)
	}
	ak, err := authentik.New(cfg.Authentik, authentik.WithVersion(v),
		authentik.WithRoundTripper(fence)) // its errors say "authentik: ..."
	if err != nil {
		return nil, err
	}
	mc, err := minio.New(cfg.MinIO, minio.WithVersion(v), minio.WithRoundTripper(fence)) // "minio: ..."
	if err != nil {
		return nil, err
	}
	eng, err := reconcile.NewEngine(cfg, ak, mc, log)
	if err != nil {
		return nil, err
	}
	if gate != nil {
		// The engine asks before each write step (and, as a reconcile.WriteHolder, once per
		// run whether to hold all writes); the fence asks again before each request.
		eng.Gate = gate
	}
	if hook := engineTestHook(); hook != nil {
		hook(eng)
	}
	return eng, nil
}
