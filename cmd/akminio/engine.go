package main

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// newEngine wires the reconcile engine from a validated config: the two adapters and the
// desired state. Every command that observes or writes builds its engine here.
func newEngine(cfg *config.Config, log *zap.Logger) (*reconcile.Engine, error) {
	return newFencedEngine(cfg, log, nil)
}

// newFencedEngine is newEngine whose adapters send a write only when gate allows it (nil:
// always), checked right before each request (lease.Fence).
func newFencedEngine(cfg *config.Config, log *zap.Logger, gate lease.Gate) (*reconcile.Engine, error) {
	v, _ := buildVersion()
	fence := func(next http.RoundTripper) http.RoundTripper {
		if gate == nil {
			return next
		}
		return lease.Fence(gate, next)
	}
	// The User-Agent marks akminio's own writes in authentik's events (see daemon.OwnUserAgent).
	ak, err := authentik.New(cfg.Authentik, authentik.WithUserAgent(daemon.OwnUserAgent+v),
		authentik.WithRoundTripper(fence)) // its errors say "authentik: ..."
	if err != nil {
		return nil, err
	}
	mc, err := minio.New(cfg.MinIO, minio.WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
		return markUserAgent(fence(next))
	})) // "minio: ..."
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
	return eng, nil
}

// markUserAgent adds "akminio/<version>" to the User-Agent of akminio's MinIO admin
// requests. MinIO's audit log records it, so the daemon's /hooks/minio knows akminio's own
// writes and does not run again for them. SigV4 does not sign the User-Agent.
func markUserAgent(next http.RoundTripper) http.RoundTripper {
	v, _ := buildVersion()
	mark := daemon.OwnUserAgent + v
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", strings.TrimSpace(r.Header.Get("User-Agent")+" "+mark))
		return next.RoundTrip(r)
	})
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
