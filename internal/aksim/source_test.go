package aksim_test

// Tests that hold the simulator to authentik's source where it used to be lenient
// (issue 16). Each names the authentik file it follows.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

// TestManagedFilterRejectsUnknownValue: ?managed= is an AllValuesMultipleFilter
// (authentik/core/api/property_mappings.py), whose choices are the managed values
// present, so an unknown value is a 400 naming it, not an empty list.
func TestManagedFilterRejectsUnknownValue(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	const missing = "goauthentik.io/providers/oauth2/scope-nope"
	_, resp, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(context.Background()).
		Managed([]string{"goauthentik.io/providers/oauth2/scope-openid", missing}).Execute()
	want := `{"managed":["Select a valid choice. ` + missing + ` is not one of the available choices."]}`
	if resp == nil || resp.StatusCode != 400 || !strings.Contains(describe(err), want) {
		t.Fatalf("unknown managed value: got %v, want 400 %s", err, want)
	}
	l, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(context.Background()).
		Managed([]string{"goauthentik.io/providers/oauth2/scope-openid"}).Execute()
	must(t, err)
	if len(l.Results) != 1 {
		t.Fatalf("known managed value: %d results, want 1", len(l.Results))
	}
}

// createMapping creates a scope mapping and returns its pk.
func createMapping(t *testing.T, c *api.APIClient, name, scope, expr string) string {
	t.Helper()
	m, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeCreate(context.Background()).
		ScopeMappingRequest(*api.NewScopeMappingRequest(name, expr, scope)).Execute()
	must(t, err)
	return m.Pk
}

// attachMappings sets the provider's property mappings.
func attachMappings(t *testing.T, c *api.APIClient, provider int32, pks ...string) {
	t.Helper()
	_, _, err := c.ProvidersAPI.ProvidersOauth2PartialUpdate(context.Background(), provider).
		PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{PropertyMappings: pks}).Execute()
	must(t, err)
}

// TestMappingsMergeInScopeNameOrder: authentik merges a provider's mappings ordered by
// scope_name (providers/oauth2/views/userinfo.py get_claims) and lists scopes in that
// order in discovery (views/provider.py), not by mapping name: a later mapping's value
// replaces an earlier one's and lists are concatenated in that order.
func TestMappingsMergeInScopeNameOrder(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	// By name "A first" comes first; by scope_name "aaa" (of "Z last") does.
	first := createMapping(t, c, "A first", "zzz", `return {"winner": "zzz", "order": ["zzz"]}`)
	last := createMapping(t, c, "Z last", "aaa", `return {"winner": "aaa", "order": ["aaa"]}`)
	attachMappings(t, c, m.provider.Pk, first, last)

	p, _, err := c.ProvidersAPI.ProvidersOauth2PreviewUserRetrieve(context.Background(), m.provider.Pk).Execute()
	must(t, err)
	if p.Preview["winner"] != "zzz" || fmt.Sprint(p.Preview["order"]) != "[aaa zzz]" {
		t.Errorf("preview merged %v / %v, want winner zzz and order [aaa zzz] (scope_name order)", p.Preview["winner"], p.Preview["order"])
	}
	tok, err := s.MintIDToken(context.Background(), "", "minio", "akadmin")
	must(t, err)
	if claims := verify(t, s, "minio", tok); claims["winner"] != "zzz" {
		t.Errorf("minted token: winner %v, want zzz (scope_name order)", claims["winner"])
	}
	var disc map[string]any
	getJSON(t, s.URL()+"/application/o/minio/.well-known/openid-configuration", &disc)
	if got := fmt.Sprint(disc["scopes_supported"]); got != "[aaa zzz openid]" {
		t.Errorf("scopes_supported = %s, want [aaa zzz openid]", got)
	}
}

// TestPreviewUserIsIDTokenToDict: preview_user answers IDToken.to_dict()
// (providers/oauth2/id_token.py: iss, sub, aud, exp, iat, auth_time, acr) plus the
// merged mapping claims, nothing else; the token the mappings see has every scope name of
// the provider, and http_request.user is the previewed user
// (providers/oauth2/api/providers.py preview_user).
func TestPreviewUserIsIDTokenToDict(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	alice, err := s.AddUser("alice", "alice@example.com")
	must(t, err)
	probe := createMapping(t, c, "probe", "probe",
		`return {"token_scope": token.scope, "http_user": http_request.user.username}`)
	attachMappings(t, c, m.provider.Pk, probe, builtinPK(t, c, "openid"))

	got, _, err := c.ProvidersAPI.ProvidersOauth2PreviewUserRetrieve(context.Background(), m.provider.Pk).
		ForUser(int32(alice)).Execute()
	must(t, err)
	keys := slices.Sorted(maps.Keys(got.Preview))
	want := []string{"acr", "aud", "auth_time", "exp", "http_user", "iat", "iss", "sub", "token_scope"}
	if !slices.Equal(keys, want) {
		t.Errorf("preview keys %v, want %v (IDToken.to_dict plus the mapping's)", keys, want)
	}
	if fmt.Sprint(got.Preview["token_scope"]) != "[openid probe]" {
		t.Errorf("token.scope = %v, want every scope name of the provider [openid probe]", got.Preview["token_scope"])
	}
	if got.Preview["http_user"] != "alice" {
		t.Errorf("http_request.user.username = %q, want the previewed user alice", got.Preview["http_user"])
	}
}

// builtinPK returns the pk of the managed mapping of a built-in scope.
func builtinPK(t *testing.T, c *api.APIClient, scope string) string {
	t.Helper()
	l, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(context.Background()).
		Managed([]string{"goauthentik.io/providers/oauth2/scope-" + scope}).Execute()
	must(t, err)
	if len(l.Results) != 1 {
		t.Fatalf("built-in mapping of scope %q: %d results", scope, len(l.Results))
	}
	return l.Results[0].Pk
}
