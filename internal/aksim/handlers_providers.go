package aksim

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/akminio/akminio/internal/pyexpr"
)

func init() {
	for id, h := range map[string]handler{
		"providers_oauth2_list":                          (*Server).providersList,
		"providers_oauth2_retrieve":                      (*Server).providersRetrieve,
		"providers_oauth2_create":                        (*Server).providersCreate,
		"providers_oauth2_partial_update":                (*Server).providersUpdate,
		"providers_oauth2_update":                        (*Server).providersUpdate,
		"providers_oauth2_destroy":                       (*Server).providersDestroy,
		"providers_oauth2_preview_user_retrieve":         (*Server).providersPreviewUser,
		"propertymappings_provider_scope_list":           (*Server).mappingsList,
		"propertymappings_provider_scope_retrieve":       (*Server).mappingsRetrieve,
		"propertymappings_provider_scope_create":         (*Server).mappingsCreate,
		"propertymappings_provider_scope_partial_update": (*Server).mappingsUpdate,
		"propertymappings_provider_scope_update":         (*Server).mappingsUpdate,
		"propertymappings_provider_scope_destroy":        (*Server).mappingsDestroy,
	} {
		apiHandlers[id] = h
	}
}

// alnum is authentik's generate_id/generate_key alphabet.
const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString returns n characters of [A-Za-z0-9] from crypto/rand, as
// authentik generates client ids (40) and secrets (128).
func randomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[randIndex(len(alnum))]
	}
	return string(b)
}

// randIndex draws an unbiased index below n.
func randIndex(n int) int {
	limit := 256 - 256%n
	var one [1]byte
	for {
		_, _ = rand.Read(one[:])
		if int(one[0]) < limit {
			return int(one[0]) % n
		}
	}
}

// providerDefaults are OAuth2Provider's model defaults. grant_types is
// empty, as reported for providers created through the API in 2026.5.
func providerDefaults() map[string]any {
	return map[string]any{
		"authentication_flow": nil, "property_mappings": []any{}, "client_type": "confidential",
		"grant_types": []any{}, "access_code_validity": "minutes=1", "access_token_validity": "hours=1",
		"refresh_token_validity": "days=30", "refresh_token_threshold": "seconds=0",
		"include_claims_in_id_token": true, "signing_key": nil, "encryption_key": nil,
		"redirect_uris": []any{}, "logout_uri": "", "logout_method": "backchannel",
		"sub_mode": "hashed_user_id", "issuer_mode": "per_provider",
		"jwt_federation_sources": []any{}, "jwt_federation_providers": []any{},
	}
}

// renderProviderBase is the generic Provider schema (Application.provider_obj).
func (st *store) renderProviderBase(p *record) map[string]any {
	out := map[string]any{
		"pk": p.num, "name": p.f["name"], "authentication_flow": p.f["authentication_flow"],
		"authorization_flow": p.f["authorization_flow"], "invalidation_flow": p.f["invalidation_flow"],
		"property_mappings": p.f["property_mappings"], "component": "ak-provider-oauth2-form",
		"assigned_application_slug": nil, "assigned_application_name": nil,
		"assigned_backchannel_application_slug": nil, "assigned_backchannel_application_name": nil,
		"verbose_name": "OAuth2/OpenID Provider", "verbose_name_plural": "OAuth2/OpenID Providers",
		"meta_model_name": "authentik_providers_oauth2.oauth2provider",
	}
	if a := st.appForProvider(p.num); a != nil {
		out["assigned_application_slug"] = a.f["slug"]
		out["assigned_application_name"] = a.f["name"]
	}
	return out
}

// renderProvider is the OAuth2Provider schema.
func (st *store) renderProvider(p *record) map[string]any {
	out := copyMap(p.f)
	for k, v := range st.renderProviderBase(p) {
		out[k] = v
	}
	return out
}

func (s *Server) providerFromPath(c *call) *record { return s.st.providers[c.params["id"]] }

func (s *Server) providersList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, p := range sorted(st.providers, byField("name")) {
		if !fieldFilters(c, p, "name", "client_id", "authorization_flow", "signing_key", "client_type") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(p.f["name"]), q) {
			continue
		}
		if has(c, "application") {
			if a := st.appForProvider(p.num); a == nil || a.id != qget(c, "application") {
				continue
			}
		}
		out = append(out, p)
	}
	return paginate(c, out, st.renderProvider)
}

func (s *Server) providersRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	p := s.providerFromPath(c)
	if p == nil {
		return errNotFound("OAuth2/OpenID Provider")
	}
	return http.StatusOK, s.st.renderProvider(p)
}

// checkProvider validates uniqueness and references of a provider write.
func (st *store) checkProvider(self *record, f map[string]any) (int, any) {
	for _, o := range st.providers {
		if o == self {
			continue
		}
		if o.f["name"] == f["name"] {
			return errField("name", "Provider with this name already exists.")
		}
		if o.f["client_id"] == f["client_id"] {
			return errField("client_id", "OAuth2/OpenID Provider with this Client ID already exists.")
		}
	}
	for _, k := range []string{"authorization_flow", "invalidation_flow", "authentication_flow"} {
		if v := f[k]; v != nil && st.flows[str(v)] == nil {
			return errField(k, `Invalid pk "`+str(v)+`" - object does not exist.`)
		}
	}
	for _, k := range []string{"signing_key", "encryption_key"} {
		if v := f[k]; v != nil && st.keypairs[str(v)] == nil {
			return errField(k, `Invalid pk "`+str(v)+`" - object does not exist.`)
		}
	}
	for _, m := range strList(f["property_mappings"]) {
		if st.mappings[m] == nil {
			return errField("property_mappings", `Invalid pk "`+m+`" - object does not exist.`)
		}
	}
	return 0, nil
}

// checkRedirectURIs is OAuth2ProviderSerializer.validate_redirect_uris
// (providers/oauth2/api/providers.py): a regex-mode URL must compile with
// Python's re, else 400 {"redirect_uris": ["Invalid Regex Pattern: <url>"]}.
// (matching_mode outside strict/regex is refused by the request contract, in
// DRF's ChoiceField words.)
func checkRedirectURIs(c *call) (int, any) {
	list, _ := c.body["redirect_uris"].([]any)
	var patterns []string
	for _, e := range list {
		if u, ok := e.(map[string]any); ok && u["matching_mode"] == "regex" {
			patterns = append(patterns, str(u["url"]))
		}
	}
	bad, err := pyexpr.FirstInvalidRegex(c.r.Context(), patterns)
	switch {
	case err != nil:
		return http.StatusInternalServerError, map[string]any{"detail": "aksim: compile redirect URI: " + err.Error()}
	case bad >= 0:
		return errField("redirect_uris", "Invalid Regex Pattern: "+patterns[bad])
	}
	return 0, nil
}

func (s *Server) providersCreate(c *call) (int, any) {
	if code, body := checkRedirectURIs(c); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	f := providerDefaults()
	for k, v := range c.body {
		f[k] = v
	}
	if str(f["client_id"]) == "" {
		f["client_id"] = randomString(40)
	}
	if _, set := c.body["client_secret"]; !set {
		f["client_secret"] = randomString(128)
	}
	if code, body := st.checkProvider(nil, f); code != 0 {
		return code, body
	}
	n := nextNum(st.providers)
	p := st.add(st.providers, strconv.Itoa(n), n, f)
	st.rememberSecret(f)
	return http.StatusCreated, st.renderProvider(p)
}

func (s *Server) providersUpdate(c *call) (int, any) {
	if code, body := checkRedirectURIs(c); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := s.providerFromPath(c)
	if p == nil {
		return errNotFound("OAuth2/OpenID Provider")
	}
	f := copyMap(p.f)
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkProvider(p, f); code != 0 {
		return code, body
	}
	p.f = f
	st.rememberSecret(f)
	return http.StatusOK, st.renderProvider(p)
}

// rememberSecret records a provider's client secret for ProviderSecrets; st.mu is held.
func (st *store) rememberSecret(f map[string]any) {
	if v := str(f["client_secret"]); v != "" && !slices.Contains(st.secrets, v) {
		st.secrets = append(st.secrets, v)
	}
}

// ProviderSecrets returns every client secret an OAuth2 provider has had since the start,
// for tests that scan akminio's output for secrets.
func (s *Server) ProviderSecrets() []string {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return slices.Clone(s.st.secrets)
}

func (s *Server) providersDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := s.providerFromPath(c)
	if p == nil {
		return errNotFound("OAuth2/OpenID Provider")
	}
	if a := st.appForProvider(p.num); a != nil {
		a.f["provider"] = nil
	}
	delete(st.providers, p.id)
	return http.StatusNoContent, nil
}

// providersPreviewUser answers the ID token claims the provider would
// issue for ?for_user (default: the token's user), as authentik's
// preview_user does, without a login.
func (s *Server) providersPreviewUser(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	p := s.providerFromPath(c)
	forUser := adminPK
	if has(c, "for_user") {
		forUser, _ = strconv.Atoi(qget(c, "for_user"))
	}
	var snap *claimInput
	if p != nil && st.userByPK(forUser) != nil {
		// The token's scope is every scope name of the provider and the copied
		// request's user is the previewed user (providers/oauth2/api/providers.py).
		snap = st.snapshotClaims(p, forUser, nil)
		snap.requestUser = true
	}
	st.mu.Unlock()
	if p == nil {
		return errNotFound("OAuth2/OpenID Provider")
	}
	if snap == nil {
		return http.StatusBadRequest, map[string]any{"for_user": "User not found"}
	}
	claims := s.idTokenClaims(c.r.Context(), s.baseURL(c.r), snap)
	return http.StatusOK, map[string]any{"preview": claims}
}

// renderMapping is the ScopeMapping schema.
func renderMapping(m *record) map[string]any {
	out := copyMap(m.f)
	out["pk"] = m.id
	out["component"] = "ak-property-mapping-provider-scope-form"
	out["verbose_name"] = "Scope Mapping"
	out["verbose_name_plural"] = "Scope Mappings"
	out["meta_model_name"] = "authentik_providers_oauth2.scopemapping"
	return out
}

func (s *Server) mappingsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	managed := c.r.URL.Query()["managed"]
	if code, body := st.checkManagedFilter(managed); code != 0 {
		return code, body
	}
	var out []*record
	for _, m := range sorted(st.mappings, func(r *record) string { return str(r.f["scope_name"]) + "\x00" + str(r.f["name"]) }) {
		if !fieldFilters(c, m, "name", "scope_name") {
			continue
		}
		if len(managed) > 0 && !slices.Contains(managed, str(m.f["managed"])) {
			continue
		}
		if v, ok := boolParam(c, "managed__isnull"); ok && (m.f["managed"] == nil) != v {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(m.f["name"]), q) && !containsFold(str(m.f["scope_name"]), q) {
			continue
		}
		out = append(out, m)
	}
	return paginate(c, out, renderMapping)
}

// checkManagedFilter validates ?managed= as authentik does: the filter is an
// AllValuesMultipleFilter (authentik/core/api/property_mappings.py,
// PropertyMappingFilterSet, which providers/oauth2/api/scopes.py's
// ScopeMappingFilter extends), a multiple-choice filter whose choices are the
// managed values present, so a value no mapping has is a 400 naming the first
// such value in Django's words, not an empty list. Callers hold st.mu.
func (st *store) checkManagedFilter(values []string) (int, any) {
	present := map[string]bool{}
	for _, m := range st.mappings {
		if v, ok := m.f["managed"].(string); ok {
			present[v] = true
		}
	}
	for _, v := range values {
		if !present[v] {
			return errField("managed", "Select a valid choice. "+v+" is not one of the available choices.")
		}
	}
	return 0, nil
}

func (s *Server) mappingsRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	m := s.st.mappings[c.params["pm_uuid"]]
	if m == nil {
		return errNotFound("Scope Mapping")
	}
	return http.StatusOK, renderMapping(m)
}

// checkMapping enforces unique names (across all property mappings; the
// simulator only has scope mappings) and unique managed identifiers.
func (st *store) checkMapping(self *record, f map[string]any) (int, any) {
	for _, o := range st.mappings {
		if o == self {
			continue
		}
		if o.f["name"] == f["name"] {
			return errField("name", "Property Mapping with this name already exists.")
		}
		if f["managed"] != nil && o.f["managed"] == f["managed"] {
			return errField("managed", "property mapping with this managed already exists.")
		}
	}
	return 0, nil
}

// validateMapping is ScopeMappingSerializer's field validation on save
// (providers/oauth2/api/scopes.py): scope_name must not contain a space (its
// no_space validator), and the expression must compile
// (PropertyMappingSerializer.validate_expression, core/api/property_mappings.py),
// a failure worded by common/expression/evaluator.py's validate as
// "Expression Syntax Error: <Python's message>", whose file name is the
// instance's name ("None" on create: filename "").
func validateMapping(c *call, filename string) (int, any) {
	if v, ok := c.body["scope_name"]; ok && strings.Contains(str(v), " ") {
		return errField("scope_name", "Value must not contain spaces.")
	}
	expr, ok := c.body["expression"]
	if !ok {
		return 0, nil
	}
	err := pyexpr.CompileNamed(c.r.Context(), str(expr), filename)
	switch {
	case errors.Is(err, pyexpr.ErrSyntax):
		return errField("expression", err.Error())
	case err != nil:
		return http.StatusInternalServerError, map[string]any{"detail": "aksim: compile expression: " + err.Error()}
	}
	return 0, nil
}

func (s *Server) mappingsCreate(c *call) (int, any) {
	if code, body := validateMapping(c, ""); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	f := map[string]any{"managed": nil, "description": ""}
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkMapping(nil, f); code != 0 {
		return code, body
	}
	m := st.add(st.mappings, uuid.NewString(), 0, f)
	return http.StatusCreated, renderMapping(m)
}

func (s *Server) mappingsUpdate(c *call) (int, any) {
	s.st.mu.Lock()
	var stored string
	if m := s.st.mappings[c.params["pm_uuid"]]; m != nil {
		stored = str(m.f["name"])
	}
	s.st.mu.Unlock()
	if code, body := validateMapping(c, stored); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.mappings[c.params["pm_uuid"]]
	if m == nil {
		return errNotFound("Scope Mapping")
	}
	f := copyMap(m.f)
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkMapping(m, f); code != 0 {
		return code, body
	}
	m.f = f
	return http.StatusOK, renderMapping(m)
}

func (s *Server) mappingsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["pm_uuid"]
	if st.mappings[id] == nil {
		return errNotFound("Scope Mapping")
	}
	delete(st.mappings, id)
	for _, p := range st.providers {
		pm := strList(p.f["property_mappings"])
		kept := pm[:0]
		for _, x := range pm {
			if x != id {
				kept = append(kept, x)
			}
		}
		p.f["property_mappings"] = anyList(kept)
	}
	return http.StatusNoContent, nil
}
