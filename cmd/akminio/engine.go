package main

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// newEngine wires the reconcile engine from a validated config: the two adapters and the
// desired state. Every command that observes or writes builds its engine here.
func newEngine(cfg *config.Config, log *zap.Logger) (*reconcile.Engine, error) {
	v, _ := buildVersion()
	// The User-Agent marks akminio's own writes in authentik's events (see daemon.OwnUserAgent).
	ak, err := authentik.New(cfg.Authentik, authentik.WithUserAgent(daemon.OwnUserAgent+v)) // its errors say "authentik: ..."
	if err != nil {
		return nil, err
	}
	mc, err := minio.New(cfg.MinIO, minio.WithRoundTripper(markUserAgent)) // "minio: ..."
	if err != nil {
		return nil, err
	}
	return reconcile.NewEngine(cfg, ak, mc, log)
}

// markUserAgent puts "akminio/<version>" in front of the User-Agent of akminio's MinIO
// admin requests. MinIO's audit log records it, so the daemon's /hooks/minio knows
// akminio's own writes (by that prefix) and does not run again for them. SigV4 does not
// sign the User-Agent.
func markUserAgent(next http.RoundTripper) http.RoundTripper {
	v, _ := buildVersion()
	mark := daemon.OwnUserAgent + v
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", strings.TrimSpace(mark+" "+r.Header.Get("User-Agent")))
		return next.RoundTrip(r)
	})
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
