package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// minimal is a valid config with no secrets, for tests that add their own.
const minimal = `
authentik:
  url: https://authentik.example
  provider:
    redirect_uris: [https://minio.example/oauth_callback]
minio:
  endpoint: http://127.0.0.1:9000
bindings:
  - group: Minio admins
    policies: [consoleAdmin]
`

// writeConfig writes body (plus extra YAML appended) as config.yaml in a temp dir.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string, env []string) (*Config, []Warning) {
	t.Helper()
	cfg, warnings, err := Load(path, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg, warnings
}

func TestExampleDefaultsAndPaths(t *testing.T) {
	cfg, warnings := mustLoad(t, "../testdata/example-config.yaml", nil)
	dir, _ := filepath.Abs("../testdata")
	if cfg.Path != filepath.Join(dir, "example-config.yaml") {
		t.Errorf("Path = %q", cfg.Path)
	}
	if got := cfg.Policies["my-custom-policy"].File; got != filepath.Join(dir, "policies/my-custom-policy.json") {
		t.Errorf("policy file not resolved against the config's folder: %q", got)
	}
	if cfg.Authentik.Timeout != 10*time.Second || cfg.Schedule.Jitter != 30*time.Second || cfg.HTTP.Debounce != 2*time.Second {
		t.Errorf("durations: %v %v %v", cfg.Authentik.Timeout, cfg.Schedule.Jitter, cfg.HTTP.Debounce)
	}
	if string(cfg.Policies["bucket-reports-reader"].JSON) == "" || string(cfg.Policies["my-custom-policy"].JSON) == "" {
		t.Error("policy JSON not loaded")
	}
	if cfg.Policies["legacy-auditors"].JSON != nil {
		t.Error("an external policy has no document")
	}
	// The example names systemd credential files that do not exist here: warnings, not errors.
	if len(warnings) != 3 {
		t.Errorf("warnings = %v, want 3 about missing credential files", warnings)
	}
	err := cfg.RequireSecrets()
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 3 {
		t.Fatalf("RequireSecrets = %v, want 3 problems", err)
	}
	want := "authentik.token_file: /run/credentials/akminio.service/authentik-token does not exist, " +
		"and neither AKMINIO_AUTHENTIK__TOKEN nor $CREDENTIALS_DIRECTORY/authentik-token is set"
	if cerr.Problems[0] != want {
		t.Errorf("problem = %q\nwant      %q", cerr.Problems[0], want)
	}
}

func TestDefaultsFillEveryOptionalKey(t *testing.T) {
	cfg, _ := mustLoad(t, writeConfig(t, minimal), nil)
	checks := map[string]bool{
		"application.name":      cfg.Authentik.Application.Name == "MinIO",
		"application.slug":      cfg.Authentik.Application.Slug == "minio",
		"provider.name":         cfg.Authentik.Provider.Name == "MinIO",
		"provider.scopes":       slices.Equal(cfg.Authentik.Provider.Scopes, []string{"openid", "email", "profile"}),
		"provider.signing_key":  cfg.Authentik.Provider.SigningKey == "authentik Self-signed Certificate",
		"scope_mapping":         cfg.Authentik.ScopeMapping == ScopeMapping{Name: "OIDC-Scope-minio", Scope: "minio", Claim: "policy"},
		"openid.scopes":         slices.Equal(cfg.MinIO.OpenID.Scopes, []string{"openid", "profile", "email", "minio"}),
		"openid.display_name":   cfg.MinIO.OpenID.DisplayName == "authentik",
		"minio.restart":         cfg.MinIO.Restart == RestartAuto,
		"match/mode":            cfg.Match == MatchFirst && cfg.Mode == ModeRepair,
		"schedule":              cfg.Schedule.Reconcile == "@every 5m" && cfg.Schedule.RotateSecret == "0 3 1 * *",
		"state_dir":             cfg.StateDir == "/var/lib/akminio",
		"http.listen":           cfg.HTTP.Listen == "127.0.0.1:9470",
		"log":                   cfg.Log == Log{Level: "info", Format: "json"},
		"minio.timeout":         cfg.MinIO.Timeout == 10*time.Second,
		"authentik.create_grps": !cfg.Authentik.CreateGroups,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default of %s not applied", name)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	path := writeConfig(t, minimal)
	env := []string{
		"AKMINIO_MINIO__ENDPOINT=https://minio.internal:9000",
		"AKMINIO_STATE_DIR=state",                             // single underscore inside a key
		"AKMINIO_AUTHENTIK__PROVIDER__CLIENT_ID=minio-client", // three levels
		"AKMINIO_AUTHENTIK__CREATE_GROUPS=true",               // bool from a string
		"AKMINIO_MINIO__OPENID__SCOPES=openid, minio",         // list from a string
		"AKMINIO_SCHEDULE__ROTATE_SECRET=",                    // empty beats the default
		"AKMINIO_SCHEDULE__JITTER=1m",                         // duration
		"AKMINIO_CONFIG=/elsewhere.yaml",                      // not a key
		"AKMINIO_MINIO_BIN=/usr/local/bin/minio",              // names no key: warned, ignored
	}
	cfg, warnings := mustLoad(t, path, env)
	if cfg.MinIO.Endpoint != "https://minio.internal:9000" {
		t.Errorf("endpoint = %q", cfg.MinIO.Endpoint)
	}
	if cfg.StateDir != filepath.Join(filepath.Dir(path), "state") {
		t.Errorf("state_dir = %q, want it resolved against the config's folder", cfg.StateDir)
	}
	if cfg.Authentik.Provider.ClientID != "minio-client" || !cfg.Authentik.CreateGroups {
		t.Errorf("client_id = %q, create_groups = %v", cfg.Authentik.Provider.ClientID, cfg.Authentik.CreateGroups)
	}
	if !slices.Equal(cfg.MinIO.OpenID.Scopes, []string{"openid", "minio"}) {
		t.Errorf("scopes = %q", cfg.MinIO.OpenID.Scopes)
	}
	if cfg.Schedule.RotateSecret != "" || cfg.Schedule.Jitter != time.Minute {
		t.Errorf("schedule = %+v", cfg.Schedule)
	}
	want := []Warning{{Key: "AKMINIO_MINIO_BIN", Message: "names no config key (minio_bin); ignored"}}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings = %v, want %v", warnings, want)
	}
}

func TestEnvironmentOverrideIsValidated(t *testing.T) {
	_, _, err := Load(writeConfig(t, minimal), []string{"AKMINIO_AUTHENTIK__TIMEOUT=soon", "AKMINIO_MODE=dry-run"})
	want := "authentik.timeout: \"soon\" is not a duration (write it with a unit, such as 10s or 5m)\n" +
		"mode: \"dry-run\" is not one of repair, report"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestResolvePath(t *testing.T) {
	env := []string{"AKMINIO_CONFIG=/from/env.yaml"}
	for _, tc := range []struct {
		flag string
		env  []string
		want string
	}{
		{"/from/flag.yaml", env, "/from/flag.yaml"},
		{"", env, "/from/env.yaml"},
		{"", nil, DefaultPath},
	} {
		if got := ResolvePath(tc.flag, tc.env); got != tc.want {
			t.Errorf("ResolvePath(%q, %v) = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

func TestMissingFileAndBadYAML(t *testing.T) {
	_, _, err := Load("/nonexistent/akminio.yaml", nil)
	if err == nil || err.Error() != "/nonexistent/akminio.yaml: config file does not exist" {
		t.Errorf("err = %v", err)
	}
}

func TestParsePolicyNormalises(t *testing.T) {
	got, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Statement":[{"Action":"s3:GetObject","Effect":"Allow","Resource":"arn:aws:s3:::b/*"}],"Version":"2012-10-17"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseScheduleMatchesValidation(t *testing.T) {
	for spec, ok := range map[string]bool{"@every 5m": true, "0 3 1 * *": true, "@daily": true, "0 0 3 1 * *": false, "5m": false} {
		if _, err := ParseSchedule(spec); (err == nil) != ok {
			t.Errorf("ParseSchedule(%q) err = %v, want ok=%v", spec, err, ok)
		}
	}
}

// TestSecretNeverInOutput checks that a secret's value shows up neither in an error nor in
// the printed config.
func TestSecretNeverInOutput(t *testing.T) {
	const token = "s3cr3t-token-value"
	path := writeConfig(t, minimal+"mode: nope\n")
	_, _, err := Load(path, []string{"AKMINIO_AUTHENTIK__TOKEN=" + token})
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("err = %v", err)
	}
	cfg, _ := mustLoad(t, writeConfig(t, minimal), []string{"AKMINIO_AUTHENTIK__TOKEN=" + token})
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%#v", *cfg)} {
		if strings.Contains(s, token) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if cfg.Authentik.Token.Reveal() != token {
		t.Errorf("token not loaded")
	}
}

func TestEndpointHelpers(t *testing.T) {
	cfg, _ := mustLoad(t, writeConfig(t, strings.Replace(minimal, "https://authentik.example", "https://authentik.example/", 1)), nil)
	if got := cfg.Authentik.APIURL(); got != "https://authentik.example/api/v3" {
		t.Errorf("APIURL = %q", got)
	}
	if got := cfg.Authentik.OpenIDConfigURL(); got != "https://authentik.example/application/o/minio/.well-known/openid-configuration" {
		t.Errorf("OpenIDConfigURL = %q", got)
	}
	if cfg.MinIO.HostPort() != "127.0.0.1:9000" || cfg.MinIO.Secure() || cfg.MinIO.OpenID.ConfigTarget() != "identity_openid" {
		t.Errorf("minio helpers: %q %v %q", cfg.MinIO.HostPort(), cfg.MinIO.Secure(), cfg.MinIO.OpenID.ConfigTarget())
	}
}

// TestParsePolicyStatementFields: statement fields match case-insensitively, as in MinIO,
// and a field MinIO would drop is an error rather than a silently wider policy.
func TestParsePolicyStatementFields(t *testing.T) {
	if _, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[{"effect":"Allow","action":["s3:GetObject"],"resource":["arn:aws:s3:::b/*"],"Sid":"x"}]}`)); err != nil {
		t.Errorf("lower-case field names: %v", err)
	}
	_, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":["s3:GetObject"],"NotResource":["arn:aws:s3:::b/*"],"Principal":"*"}]}`))
	if err == nil || !strings.Contains(err.Error(), `Statement[0] has unknown field "Principal"`) {
		t.Errorf("err = %v, want Principal rejected", err)
	}
}

// TestEnvironmentUnknownKey: a misspelt variable inside a config section is an unknown key,
// as it would be in the file, not an override silently ignored.
func TestEnvironmentUnknownKey(t *testing.T) {
	_, warnings, err := Load(writeConfig(t, minimal), []string{
		"AKMINIO_MINIO__ENDPONT=http://10.0.0.1:9000",
		"AKMINIO_AUTHENTIK__PROVIDER__CLIENTID=x",
		"AKMINIO_BINDINGS__0__GROUP=admins",
		"AKMINIO_TEST_CRASH_AFTER=3", // no section: tooling's, warned about
	})
	want := "authentik.provider.clientid: unknown key (set by AKMINIO_AUTHENTIK__PROVIDER__CLIENTID)\n" +
		"bindings.0.group: unknown key (set by AKMINIO_BINDINGS__0__GROUP)\n" +
		"minio.endpont: unknown key (set by AKMINIO_MINIO__ENDPONT)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if len(warnings) != 1 || warnings[0].Key != "AKMINIO_TEST_CRASH_AFTER" {
		t.Errorf("warnings = %v", warnings)
	}
}

// TestEveryExampleKeyHasAnEnvironmentVariable: each key the example sets (outside policy
// documents, which are free-form) round-trips through its AKMINIO_ variable name and is
// accepted as an override.
func TestEveryExampleKeyHasAnEnvironmentVariable(t *testing.T) {
	data, err := os.ReadFile("../testdata/example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := yaml.Parser().Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(m, ""), nil); err != nil {
		t.Fatal(err)
	}
	keys := k.Keys()
	if len(keys) < 50 {
		t.Fatalf("only %d keys in the example", len(keys))
	}
	for _, key := range keys {
		if strings.Contains(key, ".document.") {
			continue
		}
		name := envName(key)
		if got := envKey(name); got != key {
			t.Errorf("%s: %s maps back to %q", key, name, got)
		}
		if !isKnownKey(strings.Split(key, ".")) {
			t.Errorf("%s: %s is not accepted as an override", key, name)
		}
	}
}

// TestEnvironmentOverridesKeysWithUnderscores sets nested keys whose names hold underscores.
func TestEnvironmentOverridesKeysWithUnderscores(t *testing.T) {
	path := writeConfig(t, minimal)
	cfg, _ := mustLoad(t, path, []string{
		"AKMINIO_AUTHENTIK__INSECURE_SKIP_VERIFY=true",
		"AKMINIO_MINIO__INSECURE_SKIP_VERIFY=1",
		"AKMINIO_HTTP__HOOK_TOKEN_FILE=hook-token",
		"AKMINIO_AUTHENTIK__PROVIDER__SIGNING_KEY=my key",
		"AKMINIO_AUTHENTIK__APPLICATION__LAUNCH_URL=https://console.example",
		"AKMINIO_MINIO__OPENID__CONFIG_NAME=authentik",
		"AKMINIO_MINIO__OPENID__CLAIM_NAME=groups",
		"AKMINIO_AUTHENTIK__SCOPE_MAPPING__CLAIM=groups",
		"AKMINIO_AUTHENTIK__PROVIDER__REDIRECT_URIS=https://a.example/cb,https://b.example/cb",
		"AKMINIO_VERIFY__USERS=alice, bob",
		"AKMINIO_ALERTS__WEBHOOK_URL=https://hooks.example/akminio",
		"AKMINIO_LOG__FORMAT=console",
	})
	dir := filepath.Dir(path)
	for what, ok := range map[string]bool{
		"authentik.insecure_skip_verify": cfg.Authentik.InsecureSkipVerify,
		"minio.insecure_skip_verify":     cfg.MinIO.InsecureSkipVerify,
		"http.hook_token_file":           cfg.HTTP.HookTokenFile == filepath.Join(dir, "hook-token"),
		"provider.signing_key":           cfg.Authentik.Provider.SigningKey == "my key",
		"application.launch_url":         cfg.Authentik.Application.LaunchURL == "https://console.example",
		"openid.config_name":             cfg.MinIO.OpenID.ConfigTarget() == "identity_openid:authentik",
		"claims":                         cfg.MinIO.OpenID.ClaimName == "groups" && cfg.Authentik.ScopeMapping.Claim == "groups",
		"redirect_uris":                  slices.Equal(cfg.Authentik.Provider.RedirectURIs, []string{"https://a.example/cb", "https://b.example/cb"}),
		"verify.users":                   slices.Equal(cfg.Verify.Users, []string{"alice", "bob"}),
		"alerts.webhook_url":             cfg.Alerts.WebhookURL == "https://hooks.example/akminio",
		"log.format":                     cfg.Log.Format == "console",
	} {
		if !ok {
			t.Errorf("%s not overridden", what)
		}
	}
}

// TestUneditedConfigIsInert: a file saying "unedited: true" (the Debian package's copy of
// the example) is refused with only the first-run message, whatever else it holds;
// "unedited: false" is an edited file and loads.
func TestUneditedConfigIsInert(t *testing.T) {
	example, err := os.ReadFile("../testdata/example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, append([]byte("unedited: true\n"), example...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(path, nil)
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0] != FirstRunMessage(path) {
		t.Fatalf("Load(unedited example) = %v, want only the first-run message", err)
	}
	if !strings.Contains(cerr.Problems[0], `delete the line "unedited: true"`) {
		t.Errorf("first-run message does not say what to do: %s", cerr.Problems[0])
	}

	if _, _, err := Load(writeConfig(t, "unedited: false\n"+minimal), nil); err != nil {
		t.Errorf("unedited: false: %v", err)
	}
}
