package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/logging"
	"github.com/akminio/akminio/reconcile/rotate"
)

// TestDaemonRunSettlesRotationFirst: a daemon run that finds a rotation intent it cannot
// settle fails before the engine observes or writes anything, and says why.
func TestDaemonRunSettlesRotationFirst(t *testing.T) {
	cfg, _, err := config.Load(filepath.Join("..", "..", "testdata", "example-config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	cfg.Authentik.Token = "t"
	cfg.MinIO.AccessKey, cfg.MinIO.SecretKey = "k", "s"
	if err := os.WriteFile(rotate.IntentPath(cfg.StateDir), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &session{scrubber: logging.NewScrubber()}
	r, err := s.newSettlingRunner(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Apply(context.Background())
	if err == nil || res != nil {
		t.Fatalf("Apply = %v, %v; want an error and no result", res, err)
	}
	if !strings.Contains(err.Error(), "could not be settled, so the reconcile run did not start") {
		t.Errorf("error = %v", err)
	}
	if _, statErr := os.Stat(rotate.IntentPath(cfg.StateDir)); statErr != nil {
		t.Errorf("the intent must stay on disk: %v", statErr)
	}
}
