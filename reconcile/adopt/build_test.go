package adopt

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

const connYAML = `authentik:
  url: https://authentik.example
  token: inline-token-value
  application: {slug: minio}
minio:
  endpoint: http://127.0.0.1:9000
  access_key_file: access
  secret_key_file: secret
verify:
  users: [alice]
state_dir: state
`

// conn loads a connection config; the MinIO keys come from files, the token is inline.
func conn(t *testing.T, yaml string, environ ...string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"access": "minio-root", "secret": "minio-root-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "connect.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := config.LoadConnection(path, environ)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func guideEstate(expr string) (AuthentikEstate, MinIOEstate) {
	ak := AuthentikEstate{
		Application: Application{Slug: "minio", Name: "MinIO", LaunchURL: "https://minio.example"},
		Provider: &Provider{PK: 1, Name: "MinIO", ClientType: "confidential", GrantTypes: []string{"authorization_code", "refresh_token"},
			RedirectURIs: []reconcile.RedirectURI{{URL: "https://minio.example/oauth_callback", MatchingMode: "strict"}},
			SigningKey:   "authentik Self-signed Certificate", AuthorizationFlow: "default-provider-authorization-implicit-consent",
			InvalidationFlow: "default-provider-invalidation-flow"},
		Mappings: []Mapping{
			{Name: "authentik default OAuth Mapping: OpenID 'openid'", ScopeName: "openid", Managed: ManagedScopePrefix + "openid"},
			{Name: "authentik default OAuth Mapping: OpenID 'email'", ScopeName: "email", Managed: ManagedScopePrefix + "email"},
			{Name: "OIDC-Scope-minio", ScopeName: "minio", Expression: expr},
		},
		Groups: []Group{{PK: "a", Name: "Minio admins"}, {PK: "u", Name: "Minio users"}, {PK: "i", Name: "Minio interns", Parents: []string{"u"}}},
	}
	mc := MinIOEstate{
		Targets: map[string]*reconcile.ObservedOpenIDTarget{"identity_openid": {OpenIDKeys: reconcile.OpenIDKeys{
			Enable: "on", ConfigURL: "https://authentik.internal/application/o/minio/.well-known/openid-configuration",
			ClientID: "id", Scopes: "openid,profile,email,minio"}}},
		Policies: map[string][]byte{
			"readonly":         []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::*"]}]}`),
			"my-custom-policy": []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::shared/*"]}]}`),
			"old/auditors":     []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::logs"]}]}`),
		},
	}
	return ak, mc
}

// written writes imp to a folder and loads the config back as every command does.
func written(t *testing.T, imp *Import) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	path, err := Write(dir, imp, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, nil)
	if err != nil {
		raw, _ := os.ReadFile(path)
		t.Fatalf("the written config does not load: %v\n%s", err, raw)
	}
	return cfg, dir
}

func TestBuildGuide(t *testing.T) {
	ak, mc := guideEstate(GuideGroups)
	imp, err := Build(conn(t, connYAML), ak, mc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Problems) > 0 {
		t.Fatalf("problems: %v", imp.Problems)
	}
	cfg, dir := written(t, imp)
	want := []config.Binding{b("Minio admins", "consoleAdmin"), b("Minio users", "readonly", "my-custom-policy")}
	if !reflect.DeepEqual(cfg.Bindings, want) || cfg.Match != config.MatchFirst || cfg.Mode != config.ModeRepair {
		t.Errorf("bindings %+v match %s mode %s", cfg.Bindings, cfg.Match, cfg.Mode)
	}
	if p := cfg.Policies["my-custom-policy"]; p.External || p.File == "" {
		t.Errorf("a bound policy is akminio's: %+v", p)
	}
	if p := cfg.Policies["old/auditors"]; !p.External {
		t.Errorf("an unbound policy is external: %+v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "policies", "old_auditors.json")); err != nil {
		t.Errorf("the unbound policy's document is saved too: %v", err)
	}
	if !reflect.DeepEqual(cfg.Authentik.Provider.Scopes, []string{"openid", "email"}) || cfg.MinIO.OpenID.ClaimName != "policy" {
		t.Errorf("scopes %v claim %q", cfg.Authentik.Provider.Scopes, cfg.MinIO.OpenID.ClaimName)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if strings.Contains(string(raw), "inline-token-value") {
		t.Errorf("the inline token is in the config:\n%s", raw)
	}
	st, err := os.Stat(filepath.Join(dir, "secrets", "authentik-token"))
	if err != nil || st.Mode().Perm() != 0o600 || cfg.Authentik.Token.Reveal() != "inline-token-value" {
		t.Errorf("the inline token moves to secrets/authentik-token, mode 0600: %v %v", st, err)
	}
	if !strings.Contains(string(raw), `#     1 | if ak_is_group_member(request.user, name="Minio admins"):`) {
		t.Errorf("the expression is not kept verbatim:\n%s", raw)
	}
	// A second import into the same folder writes nothing.
	if _, err := Write(dir, imp, false); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second Write: %v", err)
	}
}

func TestBuildOwnPoliciesAndEnvironmentSecrets(t *testing.T) {
	ak, mc := guideEstate(GuidePlain)
	c := conn(t, strings.Replace(connYAML, "  token: inline-token-value\n", "", 1), "AKMINIO_AUTHENTIK__TOKEN=from-env")
	imp, err := Build(c, ak, mc, Options{OwnPolicies: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(imp.Config), "# token comes from AKMINIO_AUTHENTIK__TOKEN") {
		t.Errorf("config does not say where the token comes from:\n%s", imp.Config)
	}
	dir := t.TempDir()
	path, err := Write(dir, imp, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, []string{"AKMINIO_AUTHENTIK__TOKEN=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Policies["old/auditors"]; p.External || p.File == "" {
		t.Errorf("--own-policies: %+v", p)
	}
	if len(cfg.Bindings) != 1 || !cfg.Bindings[0].Everyone {
		t.Errorf("bindings %+v", cfg.Bindings)
	}
}

func TestBuildNeedsReview(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(*AuthentikEstate, *MinIOEstate)
		want     string
		bindings int // written for review: the expression's, when it was read
	}{
		{"direct membership of a group with children", func(ak *AuthentikEstate, _ *MinIOEstate) {
			ak.Mappings[2].Expression = "if request.user.groups.filter(name=\"Minio users\").exists():\n    return {\"policy\": \"readonly\"}\n"
		}, `has child groups (Minio interns)`, 1},
		{"a second mapping of its own", func(ak *AuthentikEstate, _ *MinIOEstate) {
			ak.Mappings = append(ak.Mappings, Mapping{Name: "extra", ScopeName: "extra", Expression: "return None"})
		}, `second scope mapping of its own, "extra"`, 2},
		{"a line not read", func(ak *AuthentikEstate, _ *MinIOEstate) {
			ak.Mappings[2].Expression = "if request.user.attributes.get(\"admin\"):\n    return {\"policy\": \"consoleAdmin\"}\n"
		}, `line 1: it reads the user's attributes`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ak, mc := guideEstate(GuideGroups)
			tc.edit(&ak, &mc)
			imp, err := Build(conn(t, connYAML), ak, mc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(imp.Problems, "\n"), tc.want) {
				t.Errorf("problems %v, want %q", imp.Problems, tc.want)
			}
			cfg, _ := written(t, imp)
			if cfg.Mode != config.ModeReport || len(cfg.Bindings) != tc.bindings {
				t.Errorf("mode %s, bindings %+v: want report mode and %d bindings", cfg.Mode, cfg.Bindings, tc.bindings)
			}
			if !strings.Contains(string(imp.Config), "REVIEW NEEDED") || !strings.Contains(string(imp.Config), visible(strings.SplitN(tc.want, "\n", 2)[0])) {
				t.Errorf("the config does not say what to review:\n%s", imp.Config)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	ak, mc := guideEstate(GuideGroups)
	noProvider := ak
	noProvider.Provider = nil
	if _, err := Build(conn(t, connYAML), noProvider, mc, Options{}); !errors.As(err, new(*ImportError)) {
		t.Errorf("no provider: %v", err)
	}
	other := MinIOEstate{Policies: mc.Policies, Targets: map[string]*reconcile.ObservedOpenIDTarget{
		"identity_openid": {OpenIDKeys: reconcile.OpenIDKeys{ConfigURL: "https://x/application/o/grafana/.well-known/openid-configuration"}}}}
	if _, err := Build(conn(t, connYAML), ak, other, Options{}); err == nil || !strings.Contains(err.Error(), "no identity_openid target") {
		t.Errorf("no target for the application: %v", err)
	}
}

// TestBuildHostileNames: group and policy names with quotes, newlines and YAML syntax
// survive the written file exactly.
func TestBuildHostileNames(t *testing.T) {
	group := "ops: \"x\"\n- y # z"
	expr := "if ak_is_group_member(request.user, name=" + `"ops: \"x\"\n- y # z"` + "):\n    return {\"policy\": [\"my-custom-policy\"]}\n"
	ak, mc := guideEstate(expr)
	ak.Groups = append(ak.Groups, Group{PK: "o", Name: group})
	imp, err := Build(conn(t, connYAML), ak, mc, Options{})
	if err != nil || len(imp.Problems) > 0 {
		t.Fatalf("%v %v", err, imp.Problems)
	}
	cfg, _ := written(t, imp)
	if len(cfg.Bindings) != 1 || cfg.Bindings[0].Group != group {
		t.Errorf("bindings %+v, want group %q", cfg.Bindings, group)
	}
}
