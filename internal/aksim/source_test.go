package aksim_test

// Tests that hold the simulator to authentik's source where it used to be lenient
// (issue 16). Each names the authentik file it follows.

import (
	"context"
	"encoding/json"
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

// TestSaveTimeValidation: what authentik refuses when a mapping or provider is saved.
//   - scope_name must not contain a space (providers/oauth2/api/scopes.py, no_space);
//   - a regex-mode redirect URI must compile with Python's re, and matching_mode is a
//     ChoiceField (providers/oauth2/api/providers.py);
//   - an expression that does not compile reads "Expression Syntax Error: ..." with the
//     instance's name as file name (common/expression/evaluator.py validate).
func TestSaveTimeValidation(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	provider := fmt.Sprintf("/api/v3/providers/oauth2/%d/", m.provider.Pk)
	uris := func(mode, url string) map[string]any {
		return map[string]any{"redirect_uris": []any{
			map[string]any{"matching_mode": "strict", "url": "http://127.0.0.1:9001/oauth_callback"},
			map[string]any{"matching_mode": mode, "url": url}}}
	}
	mapping := createMapping(t, c, "stored name", "minio", "return None")
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		want               string // JSON of the 400 body ("…": Python's own words), or "" for a 2xx
	}{
		{"scope_name with a space", "POST", "/api/v3/propertymappings/provider/scope/",
			map[string]any{"name": "spaced", "scope_name": "minio policy", "expression": "return None"},
			`{"scope_name":["Value must not contain spaces."]}`},
		{"scope_name with a space on update", "PATCH", "/api/v3/propertymappings/provider/scope/" + mapping + "/",
			map[string]any{"scope_name": "a b"}, `{"scope_name":["Value must not contain spaces."]}`},
		{"regex that does not compile", "PATCH", provider, uris("regex", "**"),
			`{"redirect_uris":["Invalid Regex Pattern: **"]}`},
		// Python's re has lookahead, which Go's regexp lacks: Python decides.
		{"regex only Python compiles", "PATCH", provider, uris("regex", `https://(?!evil)\w+\.example/cb`), ""},
		{"matching_mode outside the choices", "PATCH", provider, uris("fuzzy", "http://x/"),
			`{"redirect_uris":[{},{"matching_mode":["\"fuzzy\" is not a valid choice."]}]}`},
		{"syntax error on create", "POST", "/api/v3/propertymappings/provider/scope/",
			map[string]any{"name": "broken", "scope_name": "minio", "expression": "return {"},
			`{"expression":["Expression Syntax Error: … (None, line 2)"]}`},
		{"syntax error on update names the mapping", "PATCH", "/api/v3/propertymappings/provider/scope/" + mapping + "/",
			map[string]any{"name": "new name", "expression": "return {"},
			`{"expression":["Expression Syntax Error: … (stored name, line 2)"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rawCall(t, s, tc.method, tc.path, tc.body)
			got, _ := json.Marshal(body)
			if tc.want == "" {
				if code >= 300 {
					t.Fatalf("got %d %s, want success", code, got)
				}
				return
			}
			ok := string(got) == tc.want
			if prefix, suffix, found := strings.Cut(tc.want, "…"); found {
				ok = len(got) > len(prefix)+len(suffix) && strings.HasPrefix(string(got), prefix) && strings.HasSuffix(string(got), suffix)
			}
			if code != 400 || !ok {
				t.Fatalf("got %d %s, want 400 %s", code, got, tc.want)
			}
		})
	}
}
