package main

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// newEngine wires the reconcile engine from a validated config: the two adapters and the
// desired state. Every command that observes or writes builds its engine here.
func newEngine(cfg *config.Config, log *zap.Logger) (*reconcile.Engine, error) {
	ak, err := authentik.New(cfg.Authentik)
	if err != nil {
		return nil, fmt.Errorf("authentik: %w", err)
	}
	mc, err := minio.New(cfg.MinIO)
	if err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	return reconcile.NewEngine(cfg, ak, mc, log)
}
