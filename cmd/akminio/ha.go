package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile"
)

// The elector is the engine's write gate, and holds a follower's whole run back.
var (
	_ reconcile.WriteGate   = (*lease.Elector)(nil)
	_ reconcile.WriteHolder = (*lease.Elector)(nil)
)

// newElector builds the leader election of config ha, and makes it the session's write
// gate; nil (and no gate) when ha is off. The lease lives on the MinIO of minio.endpoint,
// reached with the same credentials and TLS settings as the admin API.
func (s *session) newElector(cfg *config.Config, log *zap.Logger, onChange func(lease.Status)) (daemon.Leadership, error) {
	if !cfg.HA.Enabled {
		return nil, nil
	}
	store, err := leaseStore(cfg)
	if err != nil {
		return nil, err
	}
	id := cfg.HA.Identity
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("ha.identity is empty and the host name is unknown: %w", err)
		}
	}
	e, err := lease.New(store, lease.Options{Identity: id, Duration: cfg.HA.LeaseDuration,
		RenewInterval: cfg.HA.RenewInterval, StepBudget: cfg.WriteStep(), OnChange: onChange},
		log.Named("lease"))
	if err != nil {
		return nil, err
	}
	s.gate = e
	return e, nil
}

// leaseStore is the lease object on minio.endpoint, through minio-go.
func leaseStore(cfg *config.Config) (*lease.S3Store, error) {
	u, err := url.Parse(cfg.MinIO.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("minio.endpoint: %w", err)
	}
	secure := u.Scheme == "https"
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	if secure {
		if tr.TLSClientConfig, err = cfg.MinIO.TLSConfig(); err != nil {
			return nil, fmt.Errorf("minio: ca_file: %w", err)
		}
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.MinIO.AccessKey.Reveal(), cfg.MinIO.SecretKey.Reveal(), ""),
		Secure:    secure,
		Transport: http.RoundTripper(tr),
	})
	if err != nil {
		return nil, fmt.Errorf("lease: S3 client for %s: %w", u.Host, err)
	}
	return &lease.S3Store{Client: c, Bucket: cfg.HA.Bucket, Key: cfg.HA.Key}, nil
}
