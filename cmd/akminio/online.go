package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// backendResult is the outcome of reaching one backend.
type backendResult struct {
	system string // "authentik" or "minio"
	detail string // what answered, on success
	err    error
}

// checkBackends reaches authentik and MinIO concurrently, each bounded by its timeout, and
// returns their results in a fixed order.
func checkBackends(ctx context.Context, cfg *config.Config) []backendResult {
	results := []backendResult{{system: "authentik"}, {system: "minio"}}
	var wg sync.WaitGroup
	wg.Go(func() { results[0].detail, results[0].err = checkAuthentik(ctx, cfg.Authentik) })
	wg.Go(func() { results[1].detail, results[1].err = checkMinIO(ctx, cfg.MinIO) })
	wg.Wait()
	return results
}

// checkAuthentik asks authentik who the token belongs to (GET /api/v3/core/users/me/).
func checkAuthentik(ctx context.Context, a config.Authentik) (string, error) {
	ad, err := authentik.New(a)
	if err != nil {
		return "", err
	}
	user, err := ad.Whoami(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %s", a.URL, strings.TrimPrefix(err.Error(), "authentik: "))
	}
	return fmt.Sprintf("%s answers as user %q", a.URL, user), nil
}

// checkMinIO asks MinIO for its server info with the admin credentials.
func checkMinIO(ctx context.Context, m config.MinIO) (string, error) {
	ad, err := minio.New(m)
	if err != nil {
		return "", err
	}
	info, err := ad.ServerInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %s", m.Endpoint, strings.TrimPrefix(err.Error(), "minio: "))
	}
	return fmt.Sprintf("%s answers: %s", m.Endpoint, info), nil
}
