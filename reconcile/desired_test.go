package reconcile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
)

// fxConfig is the spec's example configuration as a literal (what config.Load returns for
// example-config.yaml, secrets left out).
func fxConfig() *config.Config {
	reports := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":   "Allow",
			"Action":   []any{"s3:GetObject", "s3:ListBucket"},
			"Resource": []any{"arn:aws:s3:::reports", "arn:aws:s3:::reports/*"},
		}},
	}
	return &config.Config{
		Authentik: config.Authentik{
			URL:         "https://authentik.company/",
			Application: config.Application{Slug: "minio", Name: "MinIO", LaunchURL: "https://minio.company"},
			Provider: config.Provider{
				Name:              "MinIO",
				RedirectURIs:      []string{"https://minio.company/oauth_callback"},
				SigningKey:        "authentik Self-signed Certificate",
				AuthorizationFlow: "default-provider-authorization-implicit-consent",
				InvalidationFlow:  "default-provider-invalidation-flow",
				Scopes:            []string{"openid", "email", "profile"},
			},
			ScopeMapping: config.ScopeMapping{Name: "OIDC-Scope-minio", Scope: "minio", Claim: "policy"},
		},
		MinIO: config.MinIO{
			OpenID: config.OpenID{
				DisplayName: "authentik",
				ClaimName:   "policy",
				Scopes:      []string{"openid", "profile", "email", "minio"},
			},
			Restart: config.RestartAuto,
		},
		Policies: map[string]config.Policy{
			"my-custom-policy":      {File: "policies/my-custom-policy.json", JSON: []byte(customPolicy)},
			"legacy-auditors":       {External: true},
			"bucket-reports-reader": {Document: reports},
		},
		Bindings: []config.Binding{
			{Group: "Minio admins", Policies: []string{"consoleAdmin"}},
			{Group: "Minio users", Policies: []string{"readonly", "my-custom-policy"}},
			{Group: "Reporting", Policies: []string{"bucket-reports-reader", "legacy-auditors"}},
			{Group: "Minio users", Policies: []string{"readonly"}},
		},
		Match: config.MatchFirst,
		Mode:  config.ModeRepair,
	}
}

// fxDesired is NewDesired over fxConfig, after edit.
func fxDesired(t *testing.T, edit func(*config.Config)) *Desired {
	t.Helper()
	cfg := fxConfig()
	if edit != nil {
		edit(cfg)
	}
	d, err := NewDesired(cfg)
	if err != nil {
		t.Fatalf("NewDesired: %v", err)
	}
	return d
}

func TestNewDesired(t *testing.T) {
	cfg := fxConfig()
	d := fxDesired(t, nil)

	if want := RenderExpression(cfg.Bindings, cfg.Match, "policy"); d.ScopeMapping.Expression != want {
		t.Errorf("expression is not RenderExpression's output:\n%s", d.ScopeMapping.Expression)
	}
	if d.ScopeMapping.Name != "OIDC-Scope-minio" || d.ScopeMapping.ScopeName != "minio" || !strings.Contains(d.ScopeMapping.Description, "akminio") {
		t.Errorf("scope mapping = %+v", d.ScopeMapping)
	}
	if want := []string{"Minio admins", "Minio users", "Reporting"}; !reflect.DeepEqual(d.Groups, want) {
		t.Errorf("Groups = %q, want %q (in order, unique)", d.Groups, want)
	}
	if want := []string{"consoleAdmin", "readonly", "my-custom-policy", "bucket-reports-reader", "legacy-auditors"}; !reflect.DeepEqual(d.BoundPolicies, want) {
		t.Errorf("BoundPolicies = %q, want %q", d.BoundPolicies, want)
	}
	if want := []string{"legacy-auditors"}; !reflect.DeepEqual(d.ExternalPolicies, want) {
		t.Errorf("ExternalPolicies = %q, want %q", d.ExternalPolicies, want)
	}
	if len(d.Policies) != 2 {
		t.Fatalf("Policies = %v, want my-custom-policy and bucket-reports-reader", d.Policies)
	}
	wantReports := `{"Statement":[{"Action":["s3:GetObject","s3:ListBucket"],"Effect":"Allow","Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}],"Version":"2012-10-17"}`
	if got := string(d.Policies["bucket-reports-reader"]); got != wantReports {
		t.Errorf("inline document normalised to %s, want %s", got, wantReports)
	}
	if !PoliciesEqual(d.Policies["my-custom-policy"], []byte(customPolicy)) {
		t.Errorf("file policy changed meaning: %s", d.Policies["my-custom-policy"])
	}
	wantOpenID := OpenIDSettings{
		Target:      "identity_openid",
		ConfigURL:   "https://authentik.company/application/o/minio/.well-known/openid-configuration",
		ClaimName:   "policy",
		Scopes:      []string{"openid", "profile", "email", "minio"},
		DisplayName: "authentik",
	}
	if !reflect.DeepEqual(d.OpenID, wantOpenID) {
		t.Errorf("OpenID = %+v, want %+v", d.OpenID, wantOpenID)
	}
	if d.Provider.Name != "MinIO" || d.Provider.ClientID != "" || d.Application.Slug != "minio" || d.Restart != config.RestartAuto {
		t.Errorf("provider/application/restart not copied: %+v %+v %q", d.Provider, d.Application, d.Restart)
	}
	// Verification computes what each canary user should get from these two.
	if !reflect.DeepEqual(d.Bindings, cfg.Bindings) || d.Match != cfg.Match {
		t.Errorf("Bindings/Match not copied: %+v %q, want %+v %q", d.Bindings, d.Match, cfg.Bindings, cfg.Match)
	}
	if got := ExpectedPolicies(d.Bindings, d.Match, []string{"Minio users"}); !reflect.DeepEqual(got, []string{"readonly", "my-custom-policy"}) {
		t.Errorf("a member of Minio users is expected to get %q", got)
	}
}

func TestNewDesiredNamedTarget(t *testing.T) {
	d := fxDesired(t, func(c *config.Config) {
		c.MinIO.OpenID.ConfigName = "authentik"
		c.Authentik.URL = "http://127.0.0.1:9000"
		c.Authentik.Application.Slug = "s3"
	})
	if d.OpenID.Target != "identity_openid:authentik" {
		t.Errorf("Target = %q", d.OpenID.Target)
	}
	if want := "http://127.0.0.1:9000/application/o/s3/.well-known/openid-configuration"; d.OpenID.ConfigURL != want {
		t.Errorf("ConfigURL = %q, want %q", d.OpenID.ConfigURL, want)
	}
}

func TestNewDesiredBadPolicy(t *testing.T) {
	for name, pol := range map[string]config.Policy{
		"broken":  {File: "broken.json", JSON: []byte(`{"Statement": 3}`)},
		"nothing": {File: "x.json"},
	} {
		cfg := fxConfig()
		cfg.Policies[name] = pol
		_, err := NewDesired(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "policies."+name+": ") {
			t.Errorf("policy %s: error = %v, want one naming policies.%s", name, err, name)
		}
	}
	if _, err := NewDesired(nil); err == nil {
		t.Error("NewDesired(nil) succeeded")
	}
}
