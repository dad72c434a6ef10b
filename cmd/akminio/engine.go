package main

import (
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// newEngine wires the reconcile engine from a validated config: the two adapters and the
// desired state. Every command that observes or writes builds its engine here. Both
// adapters mark their requests with akminio's User-Agent themselves (reconcile.OwnUserAgent).
func newEngine(cfg *config.Config, log *zap.Logger) (*reconcile.Engine, error) {
	v, _ := buildVersion()
	ak, err := authentik.New(cfg.Authentik, authentik.WithVersion(v)) // its errors say "authentik: ..."
	if err != nil {
		return nil, err
	}
	mc, err := minio.New(cfg.MinIO, minio.WithVersion(v)) // "minio: ..."
	if err != nil {
		return nil, err
	}
	return reconcile.NewEngine(cfg, ak, mc, log)
}
