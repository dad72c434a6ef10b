package authentik

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/aksim"
)

func TestTLSFromCAFile(t *testing.T) {
	sim := aksim.New(aksim.Options{Logf: func(string, ...any) {}})
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	cfg := config.Authentik{URL: srv.URL, Token: config.Secret(sim.Token())}
	ctx := context.Background()

	untrusted, err := New(cfg, WithRetry(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusted.Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Ping of an untrusted server: %v, want a certificate error", err)
	}
	if n := sim.Count("", "/api/v3/"); n != 0 {
		t.Errorf("a TLS failure reached the server %d times", n)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CAFile = ca
	trusted, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Ping(ctx); err != nil {
		t.Errorf("Ping with ca_file: %v", err)
	}

	cfg.CAFile = ""
	cfg.InsecureSkipVerify = true
	insecure, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := insecure.Ping(ctx); err != nil {
		t.Errorf("Ping with insecure_skip_verify: %v", err)
	}

	cfg.InsecureSkipVerify = false
	cfg.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("New with a missing ca_file: %v", err)
	}
}
