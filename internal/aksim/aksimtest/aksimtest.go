// Package aksimtest starts the authentik simulator for a test.
package aksimtest

import (
	"net/http"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
)

// Start runs a fresh simulator on a loopback port for the test's
// lifetime. A response that violates authentik's OpenAPI contract fails
// the test (t.Errorf); what authentik would log goes to t.Logf.
func Start(t testing.TB) *aksim.Server {
	t.Helper()
	s := aksim.New(aksim.Options{
		OnViolation: func(err error) { t.Errorf("%v", err) },
		Logf:        t.Logf,
	})
	if err := s.Start(""); err != nil {
		t.Fatalf("start authentik simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Client returns a goauthentik.io/api/v3 client for the simulator, set up
// as akminio sets up its own (server URL <base>/api/v3, bearer token).
func Client(s *aksim.Server) *api.APIClient {
	cfg := api.NewConfiguration()
	cfg.Servers = api.ServerConfigurations{{URL: s.URL() + "/api/v3"}}
	cfg.AddDefaultHeader("Authorization", "Bearer "+s.Token())
	cfg.HTTPClient = &http.Client{}
	return api.NewAPIClient(cfg)
}
