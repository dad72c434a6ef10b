package config

import (
	"fmt"
	"reflect"
	"testing"
)

// TestSecurityWarnings: plain http:// to a host that is not loopback and
// insecure_skip_verify each give a warning naming the key, at load; loopback http:// and
// verified https:// give none.
func TestSecurityWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, akURL, minioURL string
		skipAK, skipMinIO     bool
		want                  []string // keys warned about
	}{
		{"https and loopback", "https://authentik.example", "http://127.0.0.1:9000", false, false, nil},
		{"localhost and ::1", "http://localhost:9000", "http://[::1]:9000", false, false, nil},
		{"plain authentik", "http://authentik.example", "https://minio.example:9000", false, false, []string{"authentik.url"}},
		{"plain minio", "https://authentik.example", "http://10.0.0.5:9000", false, false, []string{"minio.endpoint"}},
		{"skip verify both", "https://authentik.example", "https://minio.example:9000", true, true,
			[]string{"authentik.insecure_skip_verify", "minio.insecure_skip_verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`
authentik:
  url: %s
  insecure_skip_verify: %v
  provider:
    redirect_uris: [https://minio.example/oauth_callback]
minio:
  endpoint: %s
  insecure_skip_verify: %v
bindings:
  - group: Minio admins
    policies: [consoleAdmin]
`, tc.akURL, tc.skipAK, tc.minioURL, tc.skipMinIO)
			cfg, warnings := mustLoad(t, writeConfig(t, body), nil)
			var keys []string
			for _, w := range warnings {
				keys = append(keys, w.Key)
			}
			if !reflect.DeepEqual(keys, tc.want) {
				t.Fatalf("warnings %v, want keys %v", warnings, tc.want)
			}
			if !reflect.DeepEqual(cfg.SecurityWarnings(), warnings) {
				t.Errorf("SecurityWarnings() = %v, want what Load warned", cfg.SecurityWarnings())
			}
		})
	}
}
