package aksim

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/akminio/akminio/internal/pyexpr"
)

// acrDefault is the acr authentik puts in every token.
const acrDefault = "goauthentik.io/providers/oauth2/default"

// mappingSnap is a scope mapping copied out of the store for evaluation.
type mappingSnap struct{ name, scope, expression string }

// claimInput is everything needed to compute a provider's claims for one
// user, copied under the lock so expressions run without holding it.
type claimInput struct {
	user     *pyexpr.User // nil: the anonymous user
	uuid     string
	uid      string
	provider map[string]any // what expressions see as provider
	p        map[string]any // the provider's stored fields
	slug     string         // the provider's application, "" if none
	mappings []mappingSnap  // ordered by scope_name, as authentik evaluates them
	key      *keyMaterial   // nil: tokens are HS256 with the client secret
	// tokenScopes is token.scope for expressions: the scopes asked for or, when none
	// were, every scope name of the provider's mappings (as preview_user builds it).
	tokenScopes []string
	// requestUser: http_request.user is the user (preview_user), not AnonymousUser.
	requestUser bool
}

// snapshotClaims copies what claim computation needs. userPK 0 means the
// anonymous user; scopes nil means every mapping of the provider.
// Callers hold st.mu.
func (st *store) snapshotClaims(p *record, userPK int, scopes []string) *claimInput {
	in := &claimInput{p: copyMap(p.f), provider: st.renderProviderBase(p)}
	in.provider["client_id"] = p.f["client_id"]
	if a := st.appForProvider(p.num); a != nil {
		in.slug = str(a.f["slug"])
	}
	if u := st.userByPK(userPK); u != nil {
		in.user = st.pyUser(u)
		in.uuid = u.id2()
		in.uid = st.uid(u.num)
	}
	for _, id := range strList(p.f["property_mappings"]) {
		m := st.mappings[id]
		if m == nil || (scopes != nil && !slices.Contains(scopes, str(m.f["scope_name"]))) {
			continue
		}
		in.mappings = append(in.mappings, mappingSnap{str(m.f["name"]), str(m.f["scope_name"]), str(m.f["expression"])})
	}
	// authentik evaluates and merges a provider's mappings ordered by scope_name
	// (providers/oauth2/views/userinfo.py get_claims, ScopeMapping...order_by("scope_name"));
	// the discovery document lists scopes in that order too (views/provider.py). Among
	// mappings of one scope the database decides; the simulator takes the name.
	slices.SortStableFunc(in.mappings, func(a, b mappingSnap) int {
		return cmp.Or(strings.Compare(a.scope, b.scope), strings.Compare(a.name, b.name))
	})
	in.tokenScopes = slices.Clone(scopes)
	if scopes == nil {
		// preview_user: _scope=" ".join(ScopeMapping.objects.filter(provider=provider)
		// .values_list("scope_name")) (providers/oauth2/api/providers.py).
		in.tokenScopes = []string{}
		for _, m := range in.mappings {
			in.tokenScopes = append(in.tokenScopes, m.scope)
		}
	}
	if k := str(p.f["signing_key"]); k != "" {
		in.key = st.keys[k]
	}
	return in
}

// pyUser is the user as expressions see it, groups resolved to all_groups.
func (st *store) pyUser(u *record) *pyexpr.User {
	out := &pyexpr.User{PK: u.num, Username: str(u.f["username"]), Name: str(u.f["name"]),
		Email: str(u.f["email"]), IsActive: u.f["is_active"] != false, Groups: []pyexpr.Group{}}
	out.Attributes, _ = u.f["attributes"].(map[string]any)
	direct := map[string]bool{}
	for _, id := range st.userGroups(u.num) {
		direct[id] = true
	}
	for _, g := range st.allGroups(u.num) {
		attrs, _ := g.f["attributes"].(map[string]any)
		out.Groups = append(out.Groups, pyexpr.Group{PK: g.id, Name: str(g.f["name"]), Attributes: attrs, Direct: direct[g.id]})
	}
	return out
}

// MappingFailure is a scope mapping whose expression failed.
type MappingFailure struct {
	Mapping string // the mapping's name
	Err     error  // *pyexpr.Error for expression failures
}

// evalEach evaluates every mapping of the snapshot in one python3 run;
// results[i] belongs to in.mappings[i]. A failure of the run as a whole
// is reported as every mapping's error.
func evalEach(ctx context.Context, in *claimInput) []pyexpr.Result {
	jobs := make([]pyexpr.Job, len(in.mappings))
	for i, m := range in.mappings {
		jobs[i] = pyexpr.Job{Expression: m.expression, Input: pyexpr.Input{User: in.user, Provider: in.provider,
			Scopes: in.tokenScopes, RequestUser: in.requestUser}}
	}
	results, err := pyexpr.EvaluateMany(ctx, jobs)
	if err != nil {
		results = make([]pyexpr.Result, len(jobs))
		for i := range results {
			results[i].Err = err
		}
	}
	return results
}

// evaluate runs every mapping for the snapshot's user and deep-merges the
// results as authentik does: None adds nothing, a dict is merged (nested
// dicts merged, lists concatenated, other values replaced), a non-dict
// result is ignored and an exception skips the mapping (returned as a
// failure).
func evaluate(ctx context.Context, in *claimInput) (map[string]any, []MappingFailure) {
	claims := map[string]any{}
	var fails []MappingFailure
	for i, r := range evalEach(ctx, in) {
		if r.Err != nil {
			fails = append(fails, MappingFailure{Mapping: in.mappings[i].name, Err: r.Err})
			continue
		}
		if d, ok := r.Value.(map[string]any); ok {
			deepMerge(claims, d)
		}
	}
	return claims, fails
}

// deepMerge merges src into dst like Python deepmerge's always_merger.
func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		switch sv := v.(type) {
		case map[string]any:
			if dv, ok := dst[k].(map[string]any); ok {
				deepMerge(dv, sv)
				continue
			}
		case []any:
			if dv, ok := dst[k].([]any); ok {
				dst[k] = append(slices.Clone(dv), sv...)
				continue
			}
		}
		dst[k] = v
	}
}

// issuer is the provider's iss: per_provider (default) is
// <base>/application/o/<slug>/.
func (in *claimInput) issuer(base string) string {
	if str(in.p["issuer_mode"]) == "global" {
		return base + "/"
	}
	return base + "/application/o/" + in.slug + "/"
}

// subject is the sub claim for the provider's sub_mode.
func (in *claimInput) subject() string {
	u := in.user
	switch str(in.p["sub_mode"]) {
	case "user_id":
		return strconv.Itoa(u.PK)
	case "user_uuid":
		return in.uuid
	case "user_username":
		return u.Username
	case "user_email":
		return u.Email
	case "user_upn":
		if upn, ok := u.Attributes["upn"].(string); ok {
			return upn
		}
	}
	return in.uid
}

// idTokenClaims computes the ID token claims for the snapshot's user as
// IDToken.new and IDToken.to_dict do (providers/oauth2/id_token.py): iss,
// sub, aud, exp, iat, auth_time and acr (amr, nonce and sid need a login
// session, which the simulator has not), then, with include_claims_in_id_token
// (the default), the merged mapping claims, which replace standard ones of the
// same name. Nothing else: preferred_username and email come only from
// mappings (the built-in profile and email ones).
func (s *Server) idTokenClaims(ctx context.Context, base string, in *claimInput) map[string]any {
	now := time.Now()
	out := map[string]any{
		"iss": in.issuer(base), "sub": in.subject(), "aud": str(in.p["client_id"]),
		"exp": now.Add(validity(str(in.p["access_token_validity"]), time.Hour)).Unix(),
		"iat": now.Unix(), "auth_time": now.Unix(), "acr": acrDefault,
	}
	if in.p["include_claims_in_id_token"] != false {
		claims, fails := evaluate(ctx, in)
		for _, f := range fails {
			s.logf("aksim: scope mapping %q failed for user %q (property_mapping_exception): %v", f.Mapping, in.user.Username, f.Err)
		}
		for k, v := range claims {
			out[k] = v
		}
	}
	return out
}

// validity parses authentik's timedelta strings ("hours=1;minutes=30").
func validity(spec string, def time.Duration) time.Duration {
	units := map[string]time.Duration{"weeks": 7 * 24 * time.Hour, "days": 24 * time.Hour,
		"hours": time.Hour, "minutes": time.Minute, "seconds": time.Second, "microseconds": time.Microsecond}
	var total time.Duration
	for _, part := range strings.Split(spec, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || units[k] == 0 {
			return def
		}
		total += time.Duration(n * float64(units[k]))
	}
	if total <= 0 {
		return def
	}
	return total
}
