package aksim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	must(t, json.NewDecoder(resp.Body).Decode(out))
}

// verify checks a token against the application's JWKS and returns its claims.
func verify(t *testing.T, s *aksim.Server, slug, token string) map[string]any {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, s.URL()+"/application/o/"+slug+"/jwks/", &set)
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	must(t, err)
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has no key %q", tok.Headers[0].KeyID)
	}
	claims := map[string]any{}
	must(t, tok.Claims(keys[0].Key, &claims))
	return claims
}

func TestDiscoveryAndMintedTokenVerifies(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	_, _ = s.AddGroup("Minio users")
	_, _ = s.AddUser("reader", "reader@example.com")
	must(t, s.AddUserToGroup("reader", "Minio users"))

	var disc map[string]any
	getJSON(t, s.URL()+"/application/o/minio/.well-known/openid-configuration", &disc)
	iss := s.URL() + "/application/o/minio/"
	if disc["issuer"] != iss || disc["jwks_uri"] != iss+"jwks/" || disc["token_endpoint"] != s.URL()+"/application/o/token/" {
		t.Fatalf("discovery: %v", disc)
	}
	// authentik's default claims, then the keys the mappings return for the anonymous
	// user (the guide mapping returns None for it: no "policy").
	for _, claim := range []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "preferred_username"} {
		if !slices.Contains(anyStrings(disc["claims_supported"]), claim) {
			t.Errorf("claims_supported %v lacks %q", disc["claims_supported"], claim)
		}
	}
	if f := s.AnonymousFailures(); len(f) != 0 {
		t.Fatalf("built-in and guide mappings must not fail for the anonymous user: %v", f)
	}

	tok, err := s.MintIDToken(context.Background(), "", "minio", "reader")
	must(t, err)
	claims := verify(t, s, "minio", tok)
	if claims["iss"] != iss || claims["aud"] != m.provider.GetClientId() || claims["preferred_username"] != "reader" ||
		claims["email"] != "reader@example.com" {
		t.Fatalf("claims: %v", claims)
	}
	if p, _ := json.Marshal(claims["policy"]); string(p) != `["readonly","my-custom-policy"]` {
		t.Fatalf("policy claim %s", p)
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Fatalf("token already expired: %v", claims["exp"])
	}
	// Without the minio scope there is no policy claim.
	tok, err = s.MintIDToken(context.Background(), "", "minio", "reader", "openid", "email")
	must(t, err)
	if claims := verify(t, s, "minio", tok); claims["policy"] != nil {
		t.Fatalf("scopes openid,email gave a policy claim: %v", claims)
	}
}

func TestMintOverHTTP(t *testing.T) {
	s := aksimtest.Start(t)
	setupMinio(t, aksimtest.Client(s))
	code, body := rawCall(t, s, "POST", "/-/sim/id-token", map[string]any{"application": "minio", "username": "akadmin"})
	if code != 200 {
		t.Fatalf("mint: %d %v", code, body)
	}
	if claims := verify(t, s, "minio", body["id_token"].(string)); claims["preferred_username"] != "akadmin" {
		t.Fatalf("claims %v", claims)
	}
	if code, _ := rawCall(t, s, "POST", "/-/sim/id-token", map[string]any{"application": "minio", "username": "akadmin"}, "Bearer nope"); code != 403 {
		t.Fatalf("mint with a wrong token: %d, want 403", code)
	}
	if code, _ := rawCall(t, s, "POST", "/-/sim/id-token", map[string]any{"application": "nope", "username": "akadmin"}); code != 404 {
		t.Fatalf("mint for a missing application: %d, want 404", code)
	}
}

func TestAnonymousFailureRecorded(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	ctx := context.Background()
	bad, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).
		ScopeMappingRequest(*api.NewScopeMappingRequest("uses-token", `return {"scope": token.scope}`, "extra")).Execute()
	must(t, err)
	patch := api.NewPatchedOAuth2ProviderRequest()
	patch.SetPropertyMappings(append(m.provider.PropertyMappings, bad.Pk))
	_, _, err = c.ProvidersAPI.ProvidersOauth2PartialUpdate(ctx, m.provider.Pk).PatchedOAuth2ProviderRequest(*patch).Execute()
	must(t, err)
	var disc map[string]any
	getJSON(t, s.URL()+"/application/o/minio/.well-known/openid-configuration", &disc)
	f := s.AnonymousFailures()
	if len(f) != 1 || f[0].Mapping != "uses-token" || f[0].Application != "minio" || !strings.Contains(f[0].Err.Error(), "NameError") {
		t.Fatalf("anonymous failures: %+v", f)
	}
}

func TestTokenEndpointClientCredentials(t *testing.T) {
	s := aksimtest.Start(t)
	m := setupMinio(t, aksimtest.Client(s))
	id, secret := m.provider.GetClientId(), m.provider.GetClientSecret()
	post := func(form url.Values, basicUser, basicPass string) (int, map[string]any) {
		req, err := http.NewRequest("POST", s.URL()+"/application/o/token/", strings.NewReader(form.Encode()))
		must(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicUser != "" {
			req.SetBasicAuth(basicUser, basicPass)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		out := map[string]any{}
		must(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	code, body := post(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"openid"}}, "", "")
	if code != 200 || body["token_type"] != "Bearer" || body["access_token"] == nil {
		t.Fatalf("form credentials: %d %v", code, body)
	}
	verify(t, s, "minio", body["access_token"].(string))
	if code, body = post(url.Values{"grant_type": {"client_credentials"}}, id, secret); code != 200 {
		t.Fatalf("basic credentials: %d %v", code, body)
	}
	// A wrong secret is tried as base64 "user:app-password" and fails: invalid_grant.
	code, body = post(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"wrong"}}, "", "")
	if code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong secret: %d %v, want 400 invalid_grant", code, body)
	}
	// authentik refuses a grant the provider does not list, before it looks
	// at the secret: invalid_grant.
	code, _ = rawCall(t, s, "PATCH", fmt.Sprintf("/api/v3/providers/oauth2/%d/", m.provider.GetPk()),
		map[string]any{"grant_types": []string{"authorization_code", "refresh_token"}})
	if code != 200 {
		t.Fatalf("PATCH grant_types: %d", code)
	}
	code, body = post(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, "", "")
	if code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("grant not in grant_types: %d %v, want 400 invalid_grant", code, body)
	}
	// The service account is in no group: an application bound to a group refuses it.
	code, _ = rawCall(t, s, "PATCH", fmt.Sprintf("/api/v3/providers/oauth2/%d/", m.provider.GetPk()),
		map[string]any{"grant_types": []string{"client_credentials"}})
	if code != 200 {
		t.Fatalf("PATCH grant_types: %d", code)
	}
	if code, body = post(url.Values{"grant_type": {"client_credentials"}}, id, secret); code != 200 {
		t.Fatalf("client_credentials allowed again: %d %v", code, body)
	}
	group, err := s.AddGroup("Token users")
	must(t, err)
	code, _ = rawCall(t, s, "POST", "/api/v3/policies/bindings/",
		map[string]any{"group": group, "target": m.app.GetPk(), "order": 0})
	if code != 201 {
		t.Fatalf("POST binding: %d", code)
	}
	if code, body = post(url.Values{"grant_type": {"client_credentials"}}, id, secret); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("application bound to a group: %d %v, want 400 invalid_grant", code, body)
	}
}

// anyStrings converts a decoded JSON array of strings.
func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
