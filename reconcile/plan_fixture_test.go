package reconcile

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/minio/pkg/v3/policy"
)

// Secrets the fixtures carry; no output may ever contain them.
const (
	fxProviderSecret = "PROVIDER-SECRET-d0-n0t-pr1nt"
	fxCreatedSecret  = "CREATED-SECRET-n3ver-sh0wn"
)

// fxLookups are authentik's keypairs, flows and built-in scope mappings.
func fxLookups(a *AuthentikState) {
	a.BuiltinScopes = map[string]string{"openid": "m-openid", "email": "m-email", "profile": "m-profile", "offline_access": "m-offline"}
	a.Keypairs = map[string]string{"authentik Self-signed Certificate": "kp-self", "other key": "kp-other"}
	a.Flows = map[string]string{
		"default-provider-authorization-implicit-consent": "flow-auth",
		"default-provider-authorization-explicit-consent": "flow-explicit",
		"default-provider-invalidation-flow":              "flow-inv",
	}
}

// fxEmpty is a fresh authentik (lookups only) and a fresh MinIO (built-in policies only),
// with the external policy that someone else manages.
func fxEmpty() *Observed {
	o := &Observed{}
	fxLookups(&o.Authentik)
	o.Authentik.Groups = map[string]string{}
	o.MinIO.Policies = map[string][]byte{}
	for _, name := range config.BuiltinPolicies {
		o.MinIO.Policies[name] = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}`)
	}
	o.MinIO.Policies["legacy-auditors"] = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::audit/*"]}]}`)
	return o
}

// fxSynced is what both systems look like when they match d, as their APIs return it:
// sets in other orders, policies in MinIO's own form, generated pks, id and secret.
func fxSynced(t *testing.T, d *Desired) *Observed {
	t.Helper()
	o := fxEmpty()
	a := &o.Authentik
	a.ScopeMapping = &ObservedScopeMapping{PK: "sm-1", Name: d.ScopeMapping.Name, ScopeName: d.ScopeMapping.ScopeName,
		Expression: d.ScopeMapping.Expression, Description: d.ScopeMapping.Description}
	a.Provider = &ObservedProvider{
		PK: 7, Name: d.Provider.Name, ClientType: ClientTypeConfidential,
		GrantTypes:   []string{"refresh_token", "authorization_code"},
		ClientID:     "generated-client-id",
		ClientSecret: fxProviderSecret,
		RedirectURIs: []RedirectURI{{URL: "https://minio.company/oauth_callback", MatchingMode: MatchingModeStrict}},
		// another order than the config's
		PropertyMappings:  []string{"sm-1", "m-profile", "m-openid", "m-email"},
		SigningKey:        "kp-self",
		AuthorizationFlow: "flow-auth",
		InvalidationFlow:  "flow-inv",
	}
	a.Application = &ObservedApplication{PK: "app-1", Slug: d.Application.Slug, Name: d.Application.Name, Provider: 7, LaunchURL: d.Application.LaunchURL}
	a.Groups = map[string]string{"Minio admins": "g-admins", "Minio users": "g-users", "Reporting": "g-reporting"}
	for name, doc := range d.Policies {
		o.MinIO.Policies[name] = fxMinIOForm(t, doc)
	}
	o.MinIO.OpenID = &ObservedOpenIDTarget{OpenIDKeys: WantedOpenIDKeys(d, a.Provider)}
	return o
}

// fxMinIOForm is doc as MinIO stores and returns it: parsed by MinIO's policy package and
// marshalled again (sets in map order, its own key order).
func fxMinIOForm(t *testing.T, doc []byte) []byte {
	t.Helper()
	p, err := policy.ParseConfig(strings.NewReader(string(doc)))
	if err != nil {
		t.Fatalf("MinIO rejects %s: %v", doc, err)
	}
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fxApply applies changes to o the way the adapters do: each object written with every
// managed field from d, created objects get new pks (and a provider its id and secret),
// identity_openid takes effect as after a restart. It fails the test when a change comes
// before what it depends on (the plan's order is the apply order).
func fxApply(t *testing.T, d *Desired, o *Observed, changes []Change) {
	t.Helper()
	a := &o.Authentik
	for _, c := range changes {
		if c.Blocked != "" || c.Pending {
			t.Fatalf("applied a change that is blocked or pending: %+v", c)
		}
		switch c.Kind {
		case KindPolicy:
			fxApplyPolicy(t, d, o, c)
		case KindScopeMapping:
			pk := "sm-new"
			if a.ScopeMapping != nil {
				pk = a.ScopeMapping.PK
			}
			s := d.ScopeMapping
			a.ScopeMapping = &ObservedScopeMapping{PK: pk, Name: s.Name, ScopeName: s.ScopeName, Expression: s.Expression, Description: s.Description}
		case KindProvider:
			fxApplyProvider(t, d, o)
		case KindApplication:
			if a.Provider == nil {
				t.Fatalf("application written before the provider exists")
			}
			a.Application = &ObservedApplication{PK: "app-new", Slug: d.Application.Slug, Name: d.Application.Name,
				Provider: a.Provider.PK, LaunchURL: d.Application.LaunchURL}
		case KindGroup:
			a.Groups[c.Name] = "g-new-" + c.Name
		case KindBinding:
			fxApplyBinding(t, o, c)
		case KindOpenID:
			if a.Provider == nil {
				t.Fatalf("identity_openid written before the provider exists")
			}
			var env map[string]bool
			if o.MinIO.OpenID != nil {
				env = o.MinIO.OpenID.EnvKeys
			}
			o.MinIO.OpenID = &ObservedOpenIDTarget{OpenIDKeys: WantedOpenIDKeys(d, a.Provider), EnvKeys: env}
		default:
			t.Fatalf("unknown kind in %+v", c)
		}
	}
}

func fxApplyPolicy(t *testing.T, d *Desired, o *Observed, c Change) {
	switch c.Action {
	case ActionDelete:
		delete(o.MinIO.Policies, c.Name)
		o.State.CreatedPolicies = slices.DeleteFunc(o.State.CreatedPolicies, func(s string) bool { return s == c.Name })
	case ActionCreate:
		o.State.CreatedPolicies = append(o.State.CreatedPolicies, c.Name)
		fallthrough
	default:
		o.MinIO.Policies[c.Name] = fxMinIOForm(t, d.Policies[c.Name])
	}
}

func fxApplyProvider(t *testing.T, d *Desired, o *Observed) {
	a := &o.Authentik
	if a.ScopeMapping == nil {
		t.Fatalf("provider written before the scope mapping exists")
	}
	p := &ObservedProvider{PK: 42, ClientID: "created-client-id", ClientSecret: fxCreatedSecret}
	if a.Provider != nil {
		p.PK, p.ClientID, p.ClientSecret = a.Provider.PK, a.Provider.ClientID, a.Provider.ClientSecret
	}
	if d.Provider.ClientID != "" {
		p.ClientID = d.Provider.ClientID
	}
	p.Name, p.ClientType, p.GrantTypes = d.Provider.Name, ClientTypeConfidential, slices.Clone(ProviderGrantTypes)
	for _, u := range d.Provider.RedirectURIs {
		p.RedirectURIs = append(p.RedirectURIs, RedirectURI{URL: u, MatchingMode: MatchingModeStrict})
	}
	for _, s := range d.Provider.Scopes {
		p.PropertyMappings = append(p.PropertyMappings, a.BuiltinScopes[s])
	}
	p.PropertyMappings = append(p.PropertyMappings, a.ScopeMapping.PK)
	p.SigningKey = a.Keypairs[d.Provider.SigningKey]
	p.AuthorizationFlow, p.InvalidationFlow = a.Flows[d.Provider.AuthorizationFlow], a.Flows[d.Provider.InvalidationFlow]
	a.Provider = p
}

func fxApplyBinding(t *testing.T, o *Observed, c Change) {
	a := &o.Authentik
	if c.Action == ActionDelete {
		if !slices.Contains(o.State.CreatedBindings, c.ID) {
			t.Fatalf("deleted binding %q that akminio did not create", c.ID)
		}
		a.Bindings = slices.DeleteFunc(a.Bindings, func(b ObservedBinding) bool { return b.PK == c.ID })
		o.State.CreatedBindings = slices.DeleteFunc(o.State.CreatedBindings, func(s string) bool { return s == c.ID })
		return
	}
	gpk, ok := a.Groups[c.Name]
	if !ok {
		t.Fatalf("binding of group %q written before the group exists", c.Name)
	}
	if a.Application == nil {
		t.Fatalf("binding written before the application exists")
	}
	pk := fmt.Sprintf("b-new-%d", len(a.Bindings))
	a.Bindings = append(a.Bindings, ObservedBinding{PK: pk, Group: gpk})
	o.State.CreatedBindings = append(o.State.CreatedBindings, pk)
}

// Shorthands for expected changes.
func akc(action Action, kind Kind, name string, fields ...string) Change {
	return Change{System: SystemAuthentik, Action: action, Kind: kind, Name: name, Fields: fields}
}

func mnc(action Action, kind Kind, name string, fields ...string) Change {
	c := Change{System: SystemMinIO, Action: action, Kind: kind, Name: name, Fields: fields}
	c.RestartRequired = kind == KindOpenID
	return c
}

func blocked(c Change, reason string) Change { c.Blocked = reason; return c }
func pending(c Change) Change                { c.Pending = true; return c }
func withID(c Change, id string) Change      { c.ID = id; return c }
