package aksim

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AnonymousFailure is a scope mapping that failed when the discovery
// endpoint evaluated it for the anonymous user, as authentik does on
// every /.well-known/openid-configuration request (it logs the exception
// as a property_mapping_exception event and leaves the mapping's claims
// out of claims_supported).
type AnonymousFailure struct {
	Application string // slug
	Mapping     string // mapping name
	Err         error
}

// AnonymousFailures returns every failure recorded so far, oldest first.
func (s *Server) AnonymousFailures() []AnonymousFailure {
	s.anonMu.Lock()
	defer s.anonMu.Unlock()
	return slices.Clone(s.anonFail)
}

// routesOIDC registers the per-application OpenID endpoints and the
// simulator's test-only endpoints.
func (s *Server) routesOIDC() {
	s.mux.HandleFunc("GET /application/o/{slug}/.well-known/openid-configuration", s.serveDiscovery)
	s.mux.HandleFunc("GET /application/o/{slug}/jwks/", s.serveJWKS)
	s.mux.HandleFunc("POST /application/o/token/", s.serveToken)
	s.mux.HandleFunc("POST /-/sim/id-token", s.serveMint)
}

// providerBySlug snapshots the provider of an application for userPK (0:
// anonymous). ok is false when the application or its provider is missing.
func (s *Server) providerBySlug(slug string, userPK int, scopes []string) (*claimInput, bool) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.appBySlug(slug)
	if a == nil {
		return nil, false
	}
	pk, ok := intOf(a.f["provider"])
	if !ok || st.providers[itoa(pk)] == nil {
		return nil, false
	}
	return st.snapshotClaims(st.providers[itoa(pk)], userPK, scopes), true
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	in, ok := s.providerBySlug(slug, 0, nil)
	if !ok {
		http.NotFound(w, r)
		return
	}
	base := s.baseURL(r)
	claims := []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce"}
	scopes := []string{}
	values := s.evaluateAnonymous(r.Context(), slug, in)
	for i, m := range in.mappings {
		scopes = append(scopes, m.scope)
		if d, ok := values[i].(map[string]any); ok {
			claims = append(claims, sortedKeys(d)...)
		}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append(scopes, "openid")
	}
	// id_token_signing_alg_values_supported is [provider.jwt_key's algorithm]
	// (views/provider.py).
	alg := string(jose.HS256)
	if in.key != nil {
		alg = string(in.key.alg())
	}
	o := base + "/application/o/"
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                in.issuer(base),
		"authorization_endpoint":                o + "authorize/",
		"token_endpoint":                        o + "token/",
		"userinfo_endpoint":                     o + "userinfo/",
		"end_session_endpoint":                  o + slug + "/end-session/",
		"introspection_endpoint":                o + "introspect/",
		"revocation_endpoint":                   o + "revoke/",
		"device_authorization_endpoint":         o + "device/",
		"response_types_supported":              []string{"code", "id_token", "id_token token", "code token", "code id_token", "code id_token token"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"jwks_uri":                              o + slug + "/jwks/",
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "implicit", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:device_code"},
		"id_token_signing_alg_values_supported": []string{alg},
		"subject_types_supported":               []string{"public"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"acr_values_supported":                  []string{acrDefault},
		"scopes_supported":                      scopes,
		"request_parameter_supported":           false,
		"claims_supported":                      claims,
		"claims_parameter_supported":            false,
		"code_challenge_methods_supported":      []string{"plain", "S256"},
	})
}

// evaluateAnonymous evaluates every mapping for the anonymous user and
// records the ones that fail. values[i] is mapping i's result (nil on failure).
func (s *Server) evaluateAnonymous(ctx context.Context, slug string, in *claimInput) []any {
	results := evalEach(ctx, in)
	values := make([]any, len(results))
	for i, r := range results {
		if r.Err == nil {
			values[i] = r.Value
			continue
		}
		name := in.mappings[i].name
		s.anonMu.Lock()
		s.anonFail = append(s.anonFail, AnonymousFailure{Application: slug, Mapping: name, Err: r.Err})
		s.anonMu.Unlock()
		s.logf("aksim: discovery for %q: scope mapping %q failed for the anonymous user (property_mapping_exception): %v", slug, name, r.Err)
	}
	return values
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	in, ok := s.providerBySlug(r.PathValue("slug"), 0, []string{})
	if !ok {
		http.NotFound(w, r)
		return
	}
	// views/jwks.py: the signing key as a JWK (alg from the key type; an EC key as
	// kty EC with crv P-256), and {} without "keys" when the provider signs with its
	// client secret.
	if in.key == nil {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: in.key.key.Public(), KeyID: in.key.kid,
		Algorithm: string(in.key.alg()), Use: "sig", Certificates: []*x509.Certificate{in.key.cert}}}}
	writeJSON(w, http.StatusOK, set)
}

// sign serialises claims as a JWT the way OAuth2Provider.encode does with
// jwt_key (providers/oauth2/models.py): with the signing key, RS256 for an RSA
// key and ES256 for a P-256 one, with its kid; without one, HS256 with the
// client secret.
func sign(in *claimInput, claims map[string]any) (string, error) {
	key := jose.SigningKey{Algorithm: jose.HS256, Key: []byte(str(in.p["client_secret"]))}
	if in.key != nil {
		key = jose.SigningKey{Algorithm: in.key.alg(), Key: jose.JSONWebKey{Key: in.key.key, KeyID: in.key.kid}}
	}
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("aksim: token signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("aksim: sign token: %w", err)
	}
	return tok, nil
}

// ErrNotFound is returned by MintIDToken for an unknown application
// (or one without a provider) or user.
var ErrNotFound = errors.New("aksim: not found")

// MintIDToken returns a signed ID token for username as application slug's
// provider would issue it after a login with the given scopes (none: all
// of the provider's mappings). Claims come from evaluating the provider's
// scope mappings for the user. base is the URL the issuer is built from;
// empty means URL().
func (s *Server) MintIDToken(ctx context.Context, base, slug, username string, scopes ...string) (string, error) {
	if base == "" {
		base = s.URL()
	}
	s.st.mu.Lock()
	u := find(s.st.users, "username", username)
	s.st.mu.Unlock()
	if u == nil {
		return "", fmt.Errorf("%w: user %q", ErrNotFound, username)
	}
	var sc []string
	if len(scopes) > 0 {
		sc = scopes
	}
	in, ok := s.providerBySlug(slug, u.num, sc)
	if !ok {
		return "", fmt.Errorf("%w: application %q with a provider", ErrNotFound, slug)
	}
	return sign(in, s.idTokenClaims(ctx, base, in))
}

// mintRequest is the body of POST /-/sim/id-token.
type mintRequest struct {
	Application string   `json:"application"`
	Username    string   `json:"username"`
	Scopes      []string `json:"scopes"`
}

// serveMint is the HTTP form of MintIDToken, guarded by the API token.
func (s *Server) serveMint(w http.ResponseWriter, r *http.Request) {
	if err := checkBearer(r.Header.Get("Authorization"), s.opts.Token); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]any{"detail": err.Error()})
		return
	}
	var req mintRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"non_field_errors": []string{"invalid JSON body: " + err.Error()}})
		return
	}
	tok, err := s.MintIDToken(r.Context(), s.baseURL(r), req.Application, req.Username, req.Scopes...)
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"detail": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"id_token": tok})
	}
}

// invalidGrant is authentik's description of the invalid_grant error.
const invalidGrant = "The provided authorization grant or refresh token is invalid, expired, revoked, " +
	"does not match the redirection URI used in the authorization request, or was issued to another client."

// invalidClient is authentik's description of the invalid_client error.
const invalidClient = "Client authentication failed (e.g., unknown client, no client authentication included, " +
	"or unsupported authentication method)"

// tokenError is authentik's token endpoint error body.
func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": desc})
}

// serveToken implements grant_type=client_credentials with the client's
// id and secret (form fields or HTTP basic auth).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "The request is otherwise malformed")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	in := s.providerByClientID(id)
	if in == nil {
		tokenError(w, "invalid_client", invalidClient)
		return
	}
	// authentik checks the provider's grant_types before the secret
	// (TokenRequest.parse): an empty list, as a provider created by API
	// without grant_types has, refuses every grant.
	grant := r.PostForm.Get("grant_type")
	if !slices.Contains(strList(in.p["grant_types"]), grant) {
		tokenError(w, "invalid_grant", invalidGrant)
		return
	}
	if grant != "client_credentials" {
		tokenError(w, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	// A secret other than the provider's is tried as base64 "user:app-password", which
	// fails here, so authentik answers invalid_grant (TokenParams
	// __post_init_client_credentials). A public client's secret is compared the same way.
	if secret != str(in.p["client_secret"]) {
		tokenError(w, "invalid_grant", invalidGrant)
		return
	}
	// The generated service account must pass the application's policy bindings; it is in
	// no group, so an application bound to groups refuses it.
	if !s.st.serviceAccountMayAccess(in.slug) {
		tokenError(w, "invalid_grant", invalidGrant)
		return
	}
	s.issueClientCredentials(w, r, in)
}

// serviceAccountMayAccess reports whether a client_credentials service account, a user in no
// group, passes the policy bindings of the application with that slug (the provider's);
// a provider without an application refuses it, as authentik does.
func (st *store) serviceAccountMayAccess(slug string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := find(st.apps, "slug", slug)
	return a != nil && st.canAccess(a, -1)
}

// providerByClientID snapshots the provider with that client_id (no user).
func (s *Server) providerByClientID(id string) *claimInput {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if id == "" {
		return nil
	}
	p := find(st.providers, "client_id", id)
	if p == nil {
		return nil
	}
	return st.snapshotClaims(p, 0, []string{})
}

// issueClientCredentials answers a token for the provider's service account.
func (s *Server) issueClientCredentials(w http.ResponseWriter, r *http.Request, in *claimInput) {
	now := time.Now()
	life := validity(str(in.p["access_token_validity"]), time.Hour)
	account := "ak-" + str(in.p["name"]) + "-client_credentials"
	claims := map[string]any{"iss": in.issuer(s.baseURL(r)), "sub": account, "aud": str(in.p["client_id"]),
		"exp": now.Add(life).Unix(), "iat": now.Unix(), "auth_time": now.Unix(), "acr": acrDefault,
		"azp": str(in.p["client_id"]), "preferred_username": account}
	tok, err := sign(in, claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "server_error", "error_description": err.Error()})
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	sort.Strings(scopes)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer",
		"scope": strings.Join(scopes, " "), "expires_in": int(life.Seconds()), "id_token": tok})
}
