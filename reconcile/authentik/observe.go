package authentik

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	api "goauthentik.io/api/v3"
	"golang.org/x/sync/errgroup"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

// ManagedScopePrefix is the managed name of authentik's built-in scope mappings, followed by
// the scope ("goauthentik.io/providers/oauth2/scope-openid").
const ManagedScopePrefix = "goauthentik.io/providers/oauth2/scope-"

// Observe implements reconcile.AuthentikAdapter. The independent reads run concurrently
// (at most the Adapter's concurrency in flight); the first error cancels the rest and no
// partial state is returned. All its responses together are capped at MaxObserveBytes.
func (a *Adapter) Observe(ctx context.Context, d *reconcile.Desired) (reconcile.AuthentikState, error) {
	ctx = httplimit.WithBudget(ctx, MaxObserveBytes)
	var st reconcile.AuthentikState
	flowSlugs := distinct(d.Provider.AuthorizationFlow, d.Provider.InvalidationFlow)
	flowPKs := make([]string, len(flowSlugs))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { st.Groups, err = a.observeGroups(gctx, d.Groups); return err })
	g.Go(func() (err error) { st.BuiltinScopes, err = a.builtinScopes(gctx, d.Provider.Scopes); return err })
	g.Go(func() (err error) { st.ScopeMapping, err = a.scopeMapping(gctx, d.ScopeMapping.Name); return err })
	g.Go(func() (err error) { st.Provider, err = a.provider(gctx, d.Provider.Name); return err })
	g.Go(func() (err error) {
		if st.Application, err = a.application(gctx, d.Application.Slug); err != nil || st.Application == nil {
			return err
		}
		st.Bindings, err = a.bindings(gctx, st.Application)
		return err
	})
	g.Go(func() (err error) { st.Keypairs, err = a.keypair(gctx, d.Provider.SigningKey); return err })
	for i, slug := range flowSlugs {
		g.Go(func() (err error) { flowPKs[i], err = a.flow(gctx, slug); return err })
	}
	if err := g.Wait(); err != nil {
		return reconcile.AuthentikState{}, err
	}
	st.Flows = make(map[string]string, len(flowSlugs))
	for i, slug := range flowSlugs {
		st.Flows[slug] = flowPKs[i]
	}
	return st, nil
}

// listGroups lists every group, without members (observation and import both need them all).
func (a *Adapter) listGroups(ctx context.Context) ([]api.Group, error) {
	return listAll(ctx, a, "authentik: list groups", bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.Group, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.CoreAPI.CoreGroupsList(ctx).IncludeUsers(false).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
}

// observeGroups lists every group (without members) and keeps those named in names.
func (a *Adapter) observeGroups(ctx context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	groups, err := a.listGroups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if _, seen := out[g.Name]; !seen && slices.Contains(names, g.Name) {
			out[g.Name] = g.Pk
		}
	}
	return out, nil
}

// builtinScopes finds the managed mapping of each scope in one call (the managed filter
// takes several values). A missing one is an error naming it: authentik answers a managed
// value that no mapping has with a 400 (its filter's choices are the values present), an
// older or lenient server with a shorter list; both give the same message.
func (a *Adapter) builtinScopes(ctx context.Context, scopes []string) (map[string]string, error) {
	out := map[string]string{}
	if len(scopes) == 0 {
		return out, nil
	}
	managed := make([]string, len(scopes))
	for i, s := range scopes {
		managed[i] = ManagedScopePrefix + s
	}
	found, err := a.listScopeMappings(ctx, "authentik: list built-in scope mappings", func(r api.ApiPropertymappingsProviderScopeListRequest) api.ApiPropertymappingsProviderScopeListRequest {
		return r.Managed(managed)
	})
	if i, ok := unknownManaged(err, managed); ok {
		return nil, builtinNotFound(scopes[i], managed[i])
	}
	if err != nil {
		return nil, err
	}
	byManaged := map[string]string{}
	for _, m := range found {
		if v, ok := m.GetManagedOk(); ok && v != nil {
			byManaged[*v] = m.Pk
		}
	}
	for i, s := range scopes {
		pk, ok := byManaged[managed[i]]
		if !ok {
			return nil, builtinNotFound(s, managed[i])
		}
		out[s] = pk
	}
	return out, nil
}

func builtinNotFound(scope, managed string) error {
	return fmt.Errorf("authentik: built-in scope mapping for scope %q (managed %q) not found", scope, managed)
}

// unknownManaged finds which of the managed values a list error refuses: authentik's
// managed filter is a multiple-choice filter whose choices are the values present
// (authentik/core/api/property_mappings.py, AllValuesMultipleFilter), so an unknown value
// is a 400 {"managed": ["Select a valid choice. <value> is not one of the available
// choices."]} naming the first such value, as Django words it.
func unknownManaged(err error, managed []string) (int, bool) {
	var gen *api.GenericOpenAPIError
	if err == nil || !errors.As(err, &gen) {
		return 0, false
	}
	var body struct {
		Managed []string `json:"managed"`
	}
	if json.Unmarshal(gen.Body(), &body) != nil {
		return 0, false
	}
	for _, msg := range body.Managed {
		for i, m := range managed {
			if msg == "Select a valid choice. "+m+" is not one of the available choices." {
				return i, true
			}
		}
	}
	return 0, false
}

// scopeMapping finds akminio's scope mapping by its exact name; nil when missing.
func (a *Adapter) scopeMapping(ctx context.Context, name string) (*reconcile.ObservedScopeMapping, error) {
	what := fmt.Sprintf("authentik: list scope mappings named %q", name)
	found, err := a.listScopeMappings(ctx, what, func(r api.ApiPropertymappingsProviderScopeListRequest) api.ApiPropertymappingsProviderScopeListRequest {
		return r.Name(name)
	})
	if err != nil {
		return nil, err
	}
	for _, m := range found {
		if m.Name == name {
			return observedScopeMapping(&m), nil
		}
	}
	return nil, nil
}

func (a *Adapter) listScopeMappings(ctx context.Context, what string, filter func(api.ApiPropertymappingsProviderScopeListRequest) api.ApiPropertymappingsProviderScopeListRequest) ([]api.ScopeMapping, error) {
	return listAll(ctx, a, what, bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.ScopeMapping, api.Pagination, *http.Response, error) {
			r := a.api.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Page(page).PageSize(a.pageSize)
			l, resp, err := filter(r).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
}

// provider finds the OAuth2 provider by its exact name; nil when missing.
func (a *Adapter) provider(ctx context.Context, name string) (*reconcile.ObservedProvider, error) {
	what := fmt.Sprintf("authentik: list OAuth2 providers named %q", name)
	found, err := listAll(ctx, a, what, bodyFieldNames,
		func(ctx context.Context, page int32) ([]api.OAuth2Provider, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.ProvidersAPI.ProvidersOauth2List(ctx).Name(name).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return nil, err
	}
	for _, p := range found {
		if p.Name == name {
			return observedProvider(&p)
		}
	}
	return nil, nil
}

// application retrieves the application by slug (a retrieve, unlike a list, is not limited
// to applications the token's user may access); nil when it does not exist.
func (a *Adapter) application(ctx context.Context, slug string) (*reconcile.ObservedApplication, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.release()
	app, resp, err := a.api.CoreAPI.CoreApplicationsRetrieve(ctx, slug).Execute()
	if statusOf(resp) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, callError(fmt.Sprintf("authentik: retrieve application %q", slug), resp, err, bodyExcerpt)
	}
	return observedApplication(app), nil
}

// bindings lists every policy binding whose target is the application.
func (a *Adapter) bindings(ctx context.Context, app *reconcile.ObservedApplication) ([]reconcile.ObservedBinding, error) {
	what := fmt.Sprintf("authentik: list policy bindings of application %q", app.Slug)
	found, err := listAll(ctx, a, what, bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.PolicyBinding, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.PoliciesAPI.PoliciesBindingsList(ctx).Target(app.PK).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.ObservedBinding, 0, len(found))
	for _, b := range found {
		if b.Target == app.PK {
			out = append(out, observedBinding(&b))
		}
	}
	return out, nil
}

// keypair resolves the signing key's name to its pk. A missing keypair, or one without a
// private key (it could not sign), is an error naming it. No signing key: no request.
func (a *Adapter) keypair(ctx context.Context, name string) (map[string]string, error) {
	out := map[string]string{}
	if name == "" {
		return out, nil
	}
	what := fmt.Sprintf("authentik: list certificate keypairs named %q", name)
	found, err := listAll(ctx, a, what, bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.CertificateKeyPair, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.CryptoAPI.CryptoCertificatekeypairsList(ctx).Name(name).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return nil, err
	}
	for _, k := range found {
		if k.Name != name {
			continue
		}
		if !k.PrivateKeyAvailable {
			return nil, fmt.Errorf("authentik: certificate keypair %q (provider.signing_key) has no private key, so it cannot sign tokens", name)
		}
		out[name] = k.Pk
		return out, nil
	}
	return nil, fmt.Errorf("authentik: certificate keypair %q (provider.signing_key) not found", name)
}

// flow resolves a flow slug to its pk; a missing flow is an error naming it.
func (a *Adapter) flow(ctx context.Context, slug string) (string, error) {
	what := fmt.Sprintf("authentik: list flows with slug %q", slug)
	found, err := listAll(ctx, a, what, bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.Flow, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.FlowsAPI.FlowsInstancesList(ctx).Slug(slug).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return "", err
	}
	for _, f := range found {
		if f.Slug == slug {
			return f.Pk, nil
		}
	}
	return "", fmt.Errorf("authentik: flow %q not found", slug)
}

// distinct returns the non-empty values, first occurrence kept.
func distinct(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func observedScopeMapping(m *api.ScopeMapping) *reconcile.ObservedScopeMapping {
	return &reconcile.ObservedScopeMapping{
		PK: m.Pk, Name: m.Name, ScopeName: m.ScopeName, Expression: m.Expression,
		Description: m.GetDescription(),
	}
}

// ErrSecretField: the provider API answered without client_secret. authentik releases
// after 2026.5 move the secret into a separate Secret object (migrations
// 0038_oauth2provider_secret and 0039_remove_oauth2provider__client_secret): the provider
// then has "secret", the Secret's pk, and the value lives under /secrets/secrets/. Reading
// such an answer as "no secret" would plan a wrong diff (and a rotation against nothing),
// so akminio stops instead.
var ErrSecretField = errors.New("the provider API has no client_secret field, which akminio needs")

// providerSecret returns the provider's client secret, or ErrSecretField (naming the
// fields the answer has instead, never their values) when the answer lacks client_secret.
func providerSecret(p *api.OAuth2Provider) (config.Secret, error) {
	if p.ClientSecret != nil {
		return config.Secret(*p.ClientSecret), nil
	}
	var other []string
	for k := range p.AdditionalProperties {
		if strings.Contains(k, "secret") {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	instead := ""
	if len(other) > 0 {
		instead = " (it has " + strings.Join(other, ", ") + ")"
	}
	return "", fmt.Errorf("authentik: provider %q: %w%s: this authentik keeps client secrets in separate secret objects "+
		"(authentik's migration 0038_oauth2provider_secret), which this akminio does not support",
		p.Name, ErrSecretField, instead)
}

func observedProvider(p *api.OAuth2Provider) (*reconcile.ObservedProvider, error) {
	secret, err := providerSecret(p)
	if err != nil {
		return nil, err
	}
	o := &reconcile.ObservedProvider{
		PK:                p.Pk,
		Name:              p.Name,
		ClientID:          p.GetClientId(),
		ClientSecret:      secret,
		PropertyMappings:  slices.Clone(p.PropertyMappings),
		SigningKey:        p.GetSigningKey(),
		AuthorizationFlow: p.AuthorizationFlow,
		InvalidationFlow:  p.InvalidationFlow,
	}
	if p.ClientType != nil {
		o.ClientType = string(*p.ClientType)
	}
	for _, g := range p.GrantTypes {
		o.GrantTypes = append(o.GrantTypes, string(g))
	}
	for _, r := range p.RedirectUris {
		if r.RedirectUriType != nil && *r.RedirectUriType != api.REDIRECTURITYPEENUM_AUTHORIZATION {
			continue // logout URIs are not managed
		}
		o.RedirectURIs = append(o.RedirectURIs, reconcile.RedirectURI{URL: r.Url, MatchingMode: string(r.MatchingMode)})
	}
	return o, nil
}

func observedApplication(app *api.Application) *reconcile.ObservedApplication {
	return &reconcile.ObservedApplication{
		PK: app.Pk, Slug: app.Slug, Name: app.Name,
		Provider: app.GetProvider(), LaunchURL: app.GetMetaLaunchUrl(),
	}
}

func observedBinding(b *api.PolicyBinding) reconcile.ObservedBinding {
	return reconcile.ObservedBinding{PK: b.Pk, Group: b.GetGroup(), Order: b.Order}
}
