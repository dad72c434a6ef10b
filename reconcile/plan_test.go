package reconcile

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
)

const (
	sm  = "OIDC-Scope-minio"
	oid = "identity_openid"
)

type planCase struct {
	name      string
	cfg       func(*config.Config) // edits the example config
	obs       func(*Observed)      // edits the in-sync observation
	want      []Change
	unmanaged []string
}

var planCases = []planCase{
	{name: "in sync"},
	{name: "fields and objects that are not managed differ", obs: func(o *Observed) {
		a := &o.Authentik
		a.Provider.GrantTypes = []string{"refresh_token", "authorization_code", "authorization_code"}
		a.Provider.PropertyMappings = append(a.Provider.PropertyMappings, "m-openid")
		a.Bindings = []ObservedBinding{{PK: "b-user", Group: ""}, {PK: "b-other", Group: "g-elsewhere"}}
		o.MinIO.OpenID.RedirectURI = "https://old.example/cb" // not desired: not managed
		o.MinIO.OpenID.EnvKeys = map[string]bool{"display_name": true, "vendor": true}
	}},
	{name: "client id changed in authentik, not configured: MinIO follows", obs: func(o *Observed) {
		o.Authentik.Provider.ClientID = "someone-set-this"
	}, want: []Change{mnc("update", KindOpenID, oid, "client_id")}},
	// authentik scope mapping
	{name: "expression edited", obs: func(o *Observed) { o.Authentik.ScopeMapping.Expression = "return None" },
		want: []Change{akc("update", KindScopeMapping, sm, "expression")}},
	{name: "scope name and description", obs: func(o *Observed) {
		o.Authentik.ScopeMapping.ScopeName = "minio2"
		o.Authentik.ScopeMapping.Description = ""
	}, want: []Change{akc("update", KindScopeMapping, sm, "scope_name", "description")}},
	{name: "scope mapping deleted", obs: func(o *Observed) { o.Authentik.ScopeMapping = nil },
		want: []Change{akc("create", KindScopeMapping, sm), akc("update", KindProvider, "MinIO", "property_mappings")}},
	// authentik provider
	{name: "client type", obs: func(o *Observed) { o.Authentik.Provider.ClientType = "public" },
		want: []Change{akc("update", KindProvider, "MinIO", "client_type")}},
	{name: "grant types empty", obs: func(o *Observed) { o.Authentik.Provider.GrantTypes = nil },
		want: []Change{akc("update", KindProvider, "MinIO", "grant_types")}},
	{name: "configured client id", cfg: func(c *config.Config) { c.Authentik.Provider.ClientID = "minio-client" },
		want: []Change{akc("update", KindProvider, "MinIO", "client_id"), mnc("update", KindOpenID, oid, "client_id")}},
	{name: "redirect uri changed", obs: func(o *Observed) { o.Authentik.Provider.RedirectURIs[0].URL = "https://evil.example/cb" },
		want: []Change{akc("update", KindProvider, "MinIO", "redirect_uris")}},
	{name: "redirect uri regex", obs: func(o *Observed) { o.Authentik.Provider.RedirectURIs[0].MatchingMode = "regex" },
		want: []Change{akc("update", KindProvider, "MinIO", "redirect_uris")}},
	{name: "redirect uri added", obs: func(o *Observed) {
		o.Authentik.Provider.RedirectURIs = append(o.Authentik.Provider.RedirectURIs, RedirectURI{URL: "https://x/cb", MatchingMode: "strict"})
	}, want: []Change{akc("update", KindProvider, "MinIO", "redirect_uris")}},
	{name: "property mapping removed", obs: func(o *Observed) { o.Authentik.Provider.PropertyMappings = []string{"sm-1", "m-openid"} },
		want: []Change{akc("update", KindProvider, "MinIO", "property_mappings")}},
	{name: "property mapping added", obs: func(o *Observed) {
		o.Authentik.Provider.PropertyMappings = append(o.Authentik.Provider.PropertyMappings, "m-offline")
	}, want: []Change{akc("update", KindProvider, "MinIO", "property_mappings")}},
	{name: "signing key", obs: func(o *Observed) { o.Authentik.Provider.SigningKey = "kp-other" },
		want: []Change{akc("update", KindProvider, "MinIO", "signing_key")}},
	{name: "signing key removed from config", cfg: func(c *config.Config) { c.Authentik.Provider.SigningKey = "" },
		want: []Change{akc("update", KindProvider, "MinIO", "signing_key")}},
	{name: "flows", obs: func(o *Observed) {
		o.Authentik.Provider.AuthorizationFlow = "flow-explicit"
		o.Authentik.Provider.InvalidationFlow = ""
	}, want: []Change{akc("update", KindProvider, "MinIO", "authorization_flow", "invalidation_flow")}},
	{name: "keypair cannot be resolved", obs: func(o *Observed) { delete(o.Authentik.Keypairs, "authentik Self-signed Certificate") },
		want: []Change{blocked(akc("update", KindProvider, "MinIO", "signing_key"),
			`cannot resolve no certificate keypair named "authentik Self-signed Certificate"`)}},
	{name: "provider deleted", obs: func(o *Observed) { o.Authentik.Provider = nil },
		want: []Change{akc("create", KindProvider, "MinIO"), akc("update", KindApplication, "minio", "provider"),
			mnc("update", KindOpenID, oid, "client_id", "client_secret")}},
	// authentik application
	{name: "application fields", obs: func(o *Observed) {
		o.Authentik.Application.Name = "S3"
		o.Authentik.Application.Provider = 3
		o.Authentik.Application.LaunchURL = ""
	}, want: []Change{akc("update", KindApplication, "minio", "name", "provider", "meta_launch_url")}},
	{name: "application deleted", obs: func(o *Observed) { o.Authentik.Application = nil },
		want: []Change{akc("create", KindApplication, "minio")}},
	// groups and bindings
	{name: "group missing, not creatable", obs: func(o *Observed) { delete(o.Authentik.Groups, "Reporting") },
		want: []Change{blocked(akc("create", KindGroup, "Reporting"), `group "Reporting" does not exist and authentik.create_groups is false`)}},
	{name: "group missing, creatable", cfg: func(c *config.Config) { c.Authentik.CreateGroups = true },
		obs: func(o *Observed) { delete(o.Authentik.Groups, "Reporting") }, want: []Change{akc("create", KindGroup, "Reporting")}},
	{name: "restrict access: bind the groups not yet bound", cfg: func(c *config.Config) { c.Authentik.RestrictAccess = true },
		obs: func(o *Observed) {
			o.Authentik.Bindings = []ObservedBinding{{PK: "b-admins-by-hand", Group: "g-admins"}}
		},
		want: []Change{akc("create", KindBinding, "Minio users"), akc("create", KindBinding, "Reporting")}},
	{name: "restrict access: group missing, not creatable", cfg: func(c *config.Config) { c.Authentik.RestrictAccess = true },
		obs: func(o *Observed) {
			delete(o.Authentik.Groups, "Reporting")
			o.Authentik.Bindings = []ObservedBinding{{PK: "b1", Group: "g-admins"}, {PK: "b2", Group: "g-users"}}
		},
		want: []Change{
			blocked(akc("create", KindGroup, "Reporting"), `group "Reporting" does not exist and authentik.create_groups is false`),
			blocked(akc("create", KindBinding, "Reporting"), `group "Reporting" does not exist and authentik.create_groups is false`)}},
	{name: "restrict access: group no longer bound", cfg: func(c *config.Config) {
		c.Authentik.RestrictAccess = true
		c.Bindings = c.Bindings[:2]
	}, obs: func(o *Observed) {
		o.Authentik.Bindings = []ObservedBinding{{PK: "b1", Group: "g-admins"}, {PK: "b2", Group: "g-users"}, {PK: "b3", Group: "g-reporting"}, {PK: "b4", Group: "g-gone"}}
		o.State.CreatedBindings = []string{"b1", "b3"}
		// the expression follows the bindings; not under test here
		o.Authentik.ScopeMapping.Expression = RenderExpression(fxConfig().Bindings[:2], "first", "policy")
		o.MinIO.Policies["unrelated"] = []byte(`{}`) // information, beside the deletion
	}, want: []Change{withID(akc("delete", KindBinding, "Reporting"), "b3")},
		unmanaged: []string{"unrelated"}},
	{name: "restrict access off: remove what akminio bound, opening the application", obs: func(o *Observed) {
		o.Authentik.Bindings = []ObservedBinding{{PK: "b1", Group: "g-admins"}, {PK: "b2", Group: "g-users"}}
		o.State.CreatedBindings = []string{"b1", "b-already-gone", "b2"}
	}, want: []Change{withID(akc("delete", KindBinding, "Minio admins"), "b1"), withID(akc("delete", KindBinding, "Minio users"), "b2")}},
	// Deleting b1 would leave the application bound to b2 and b9 only: admins locked out.
	{name: "restrict access off: keep akminio's bindings while others restrict the application", obs: func(o *Observed) {
		o.Authentik.Bindings = []ObservedBinding{{PK: "b1", Group: "g-admins"}, {PK: "b2", Group: "g-users"}, {PK: "b9", Group: ""}}
		o.State.CreatedBindings = []string{"b1", "b-already-gone"}
	}},
	// MinIO policies
	{name: "policy deleted", obs: func(o *Observed) { delete(o.MinIO.Policies, "my-custom-policy") },
		want: []Change{mnc("create", KindPolicy, "my-custom-policy")}},
	{name: "policy document changed", obs: func(o *Observed) {
		o.MinIO.Policies["bucket-reports-reader"] = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::reports/*"]}]}`)
	}, want: []Change{mnc("update", KindPolicy, "bucket-reports-reader", "document")}},
	{name: "policy differs only in form", obs: func(o *Observed) {
		o.MinIO.Policies["bucket-reports-reader"] = []byte(`{"Statement":{"Resource":["arn:aws:s3:::reports/*","arn:aws:s3:::reports"],
			"Effect":"Allow","Sid":"","Action":["s3:ListBucket","s3:GetObject"]},"Version":"2012-10-17"}`)
	}},
	{name: "external policy missing", obs: func(o *Observed) { delete(o.MinIO.Policies, "legacy-auditors") },
		want: []Change{blocked(mnc("create", KindPolicy, "legacy-auditors"),
			`external policy "legacy-auditors" is missing: managed elsewhere, akminio never writes it`)}},
	{name: "built-in policy declared is never touched", cfg: func(c *config.Config) {
		c.Policies["readonly"] = config.Policy{JSON: []byte(`{"Statement":[{"Effect":"Deny","Action":"s3:*"}]}`)}
	}},
	// MinIO identity_openid
	{name: "openid every key", cfg: func(c *config.Config) { c.MinIO.OpenID.RedirectURI = "https://minio.company/oauth_callback" },
		obs: func(o *Observed) {
			o.MinIO.OpenID.OpenIDKeys = OpenIDKeys{Enable: "off", ConfigURL: "https://x", ClientID: "x", ClientSecret: "old-secret",
				ClaimName: "groups", Scopes: "openid,minio,profile,email", DisplayName: "SSO", RedirectURI: "https://y"}
		}, want: []Change{mnc("update", KindOpenID, oid, "enable", "config_url", "client_id", "client_secret",
			"claim_name", "scopes", "display_name", "redirect_uri")}},
	{name: "openid client secret", obs: func(o *Observed) { o.MinIO.OpenID.ClientSecret = "old-secret" },
		want: []Change{mnc("update", KindOpenID, oid, "client_secret")}},
	{name: "openid missing", obs: func(o *Observed) { o.MinIO.OpenID = nil },
		want: []Change{mnc("create", KindOpenID, oid)}},
	{name: "openid key set by the environment", obs: func(o *Observed) {
		o.MinIO.OpenID.Scopes = "openid"
		o.MinIO.OpenID.ClaimName = "groups"
		o.MinIO.OpenID.EnvKeys = map[string]bool{"scopes": true}
	}, want: []Change{blocked(mnc("update", KindOpenID, oid, "claim_name", "scopes"),
		"set by MinIO's environment variable MINIO_IDENTITY_OPENID_SCOPES: akminio cannot change it; change the environment of MinIO instead")}},
	{name: "openid named target, environment", cfg: func(c *config.Config) { c.MinIO.OpenID.ConfigName = "ak" }, obs: func(o *Observed) {
		o.MinIO.OpenID.ClientID = "x"
		o.MinIO.OpenID.EnvKeys = map[string]bool{"client_id": true}
	}, want: []Change{blocked(mnc("update", KindOpenID, "identity_openid:ak", "client_id"),
		"set by MinIO's environment variable MINIO_IDENTITY_OPENID_CLIENT_ID_AK: akminio cannot change it; change the environment of MinIO instead")}},
	{name: "openid written, restart pending", obs: func(o *Observed) {
		want := WantedOpenIDKeys(fxDesiredFor(nil), o.Authentik.Provider)
		o.MinIO.OpenID.ClientSecret = "old-secret"
		o.State.RestartPending = &PendingRestart{Target: oid, Fingerprint: want.Fingerprint()}
	}, want: []Change{pending(mnc("update", KindOpenID, oid, "client_secret"))}},
	{name: "openid pending record is stale", obs: func(o *Observed) {
		o.MinIO.OpenID.ClientSecret = "old-secret"
		o.State.RestartPending = &PendingRestart{Target: oid, Fingerprint: o.MinIO.OpenID.Fingerprint()}
	}, want: []Change{mnc("update", KindOpenID, oid, "client_secret")}},
	// prune
	{name: "prune only what akminio created", cfg: func(c *config.Config) { c.Prune = true }, obs: func(o *Observed) {
		o.MinIO.Policies["old-policy"] = []byte(`{}`)
		o.MinIO.Policies["by-hand"] = []byte(`{}`)
		o.State.CreatedPolicies = []string{"old-policy", "my-custom-policy", "legacy-auditors", "readonly", "never-existed"}
	}, want: []Change{mnc("delete", KindPolicy, "old-policy")}, unmanaged: []string{"by-hand"}},
	{name: "no prune: listed, not deleted", obs: func(o *Observed) {
		o.MinIO.Policies["old-policy"] = []byte(`{}`)
		o.MinIO.Policies["by-hand"] = []byte(`{}`)
		o.State.CreatedPolicies = []string{"old-policy"}
	}, unmanaged: []string{"by-hand", "old-policy"}},
}

// fxDesiredFor is NewDesired over the example config after edit, for fixtures outside a test.
func fxDesiredFor(edit func(*config.Config)) *Desired {
	cfg := fxConfig()
	if edit != nil {
		edit(cfg)
	}
	d, err := NewDesired(cfg)
	if err != nil {
		panic(err)
	}
	return d
}

// TestComputePlan checks each case's plan, then applies it as the adapters would and checks
// that only what could not be applied (blocked, pending) is left: the plan is idempotent.
func TestComputePlan(t *testing.T) {
	for _, tc := range planCases {
		t.Run(tc.name, func(t *testing.T) {
			d := fxDesired(t, tc.cfg)
			o := fxSynced(t, fxDesired(t, nil))
			if tc.obs != nil {
				tc.obs(o)
			}
			p := ComputePlan(d, o)
			assertChanges(t, "plan", p.Changes, tc.want)
			if !reflect.DeepEqual(p.Unmanaged, tc.unmanaged) {
				t.Errorf("Unmanaged = %q, want %q", p.Unmanaged, tc.unmanaged)
			}
			if again := ComputePlan(d, o); !reflect.DeepEqual(again, p) {
				t.Fatalf("ComputePlan is not deterministic:\n%v\n%v", p, again)
			}

			fxApply(t, d, o, applicable(p, config.ModeRepair))
			var left []Change
			for _, c := range p.Changes {
				if c.Blocked != "" || c.Pending {
					left = append(left, c)
				}
			}
			assertChanges(t, "plan after apply", ComputePlan(d, o).Changes, left)
		})
	}
}

func TestComputePlanFromNothing(t *testing.T) {
	d := fxDesired(t, func(c *config.Config) {
		c.Authentik.CreateGroups = true
		c.Authentik.RestrictAccess = true
	})
	o := fxEmpty()
	p := ComputePlan(d, o)
	want := []Change{
		mnc("create", KindPolicy, "bucket-reports-reader"),
		mnc("create", KindPolicy, "my-custom-policy"),
		akc("create", KindScopeMapping, sm),
		akc("create", KindProvider, "MinIO"),
		akc("create", KindApplication, "minio"),
		akc("create", KindGroup, "Minio admins"),
		akc("create", KindGroup, "Minio users"),
		akc("create", KindGroup, "Reporting"),
		akc("create", KindBinding, "Minio admins"),
		akc("create", KindBinding, "Minio users"),
		akc("create", KindBinding, "Reporting"),
		mnc("create", KindOpenID, oid),
	}
	assertChanges(t, "plan", p.Changes, want)
	if p.Unmanaged != nil {
		t.Errorf("Unmanaged = %q, want none", p.Unmanaged)
	}

	// Round one: apply everything (fxApply fails on a change that comes before what it needs).
	fxApply(t, d, o, applicable(p, config.ModeRepair))
	assertChanges(t, "plan after apply", ComputePlan(d, o).Changes, nil)

	// Round two: the operator adds a group; only the new difference shows.
	d2 := fxDesired(t, func(c *config.Config) {
		c.Authentik.CreateGroups = true
		c.Authentik.RestrictAccess = true
		c.Bindings = append(c.Bindings, config.Binding{Group: "Auditors", Policies: []string{"readonly"}})
	})
	p2 := ComputePlan(d2, o)
	assertChanges(t, "second round", p2.Changes, []Change{
		akc("update", KindScopeMapping, sm, "expression"),
		akc("create", KindGroup, "Auditors"),
		akc("create", KindBinding, "Auditors"),
	})
	fxApply(t, d2, o, applicable(p2, config.ModeRepair))
	assertChanges(t, "second round after apply", ComputePlan(d2, o).Changes, nil)

	// Round three: back to the first config: akminio removes the binding it made.
	p3 := ComputePlan(d, o)
	assertChanges(t, "third round", p3.Changes, []Change{
		akc("update", KindScopeMapping, sm, "expression"),
		withID(akc("delete", KindBinding, "Auditors"), "b-new-3"),
	})
}

func TestPlanFilters(t *testing.T) {
	d := fxDesired(t, nil)
	o := fxSynced(t, d)
	o.Authentik.ScopeMapping.Expression = "x"
	delete(o.MinIO.Policies, "legacy-auditors")
	o.MinIO.OpenID.ClientSecret = "old"
	o.State.RestartPending = &PendingRestart{Target: oid, Fingerprint: WantedOpenIDKeys(d, o.Authentik.Provider).Fingerprint()}
	p := ComputePlan(d, o)

	if p.Drift() != 3 {
		t.Fatalf("Drift = %d, want 3: %+v", p.Drift(), p.Changes)
	}
	if got := applicable(p, config.ModeReport); len(got) != 0 {
		t.Errorf("report mode applies %+v", got)
	}
	if got := applicable(p, "bogus"); len(got) != 0 {
		t.Errorf("an unknown mode applies %+v", got)
	}
	assertChanges(t, "repair", applicable(p, config.ModeRepair), []Change{akc("update", KindScopeMapping, sm, "expression")})
	if !p.RestartPending() || !p.RestartRequired() {
		t.Errorf("RestartPending = %v, RestartRequired = %v, want both", p.RestartPending(), p.RestartRequired())
	}
	if got := p.ForSystem(SystemMinIO); len(got) != 2 || got[0].Name != "legacy-auditors" || got[1].Kind != KindOpenID {
		t.Errorf("ForSystem(minio) = %+v", got)
	}
	if got := p.Blocked(); len(got) != 1 || got[0].Name != "legacy-auditors" {
		t.Errorf("Blocked = %+v", got)
	}
	if (Plan{}).RestartPending() || (Plan{}).Drift() != 0 {
		t.Error("an empty plan has drift")
	}
}

func assertChanges(t *testing.T, what string, got, want []Change) {
	t.Helper()
	if reflect.DeepEqual(got, want) || (len(got) == 0 && len(want) == 0) {
		return
	}
	t.Errorf("%s:\n got %s\nwant %s", what, fmtChanges(got), fmtChanges(want))
}

func fmtChanges(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "\n  %+v", c)
	}
	if len(cs) == 0 {
		b.WriteString("(none)")
	}
	return b.String()
}

// applicable is what the apply policy of mode (restart: auto) lets a run apply of p's changes.
func applicable(p Plan, mode config.Mode) []Change {
	return ApplyPolicy{Mode: mode, Restart: config.RestartAuto}.Filter(p.Changes)
}
