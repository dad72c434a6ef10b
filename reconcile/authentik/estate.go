package authentik

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	api "goauthentik.io/api/v3"
	"golang.org/x/sync/errgroup"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/access"
	"github.com/akminio/akminio/reconcile/adopt"
)

var (
	_ adopt.AuthentikReader = (*Adapter)(nil)
	_ access.Source         = (*Adapter)(nil)
)

// ReadEstate implements adopt.AuthentikReader: the application by slug, its OAuth2
// provider with every reference resolved to a name or slug (signing key, flows), the
// provider's scope mappings, every group with its parents, and how many policy bindings
// the application has. It only reads.
//
// Requests: application 1, provider 1, one per scope mapping, keypair 1, flows 2, groups
// (all pages), bindings (all pages).
func (a *Adapter) ReadEstate(ctx context.Context, slug string) (adopt.AuthentikEstate, error) {
	var est adopt.AuthentikEstate
	app, resp, err := a.api.CoreAPI.CoreApplicationsRetrieve(ctx, slug).Execute()
	if statusOf(resp) == http.StatusNotFound {
		return est, fmt.Errorf("authentik: no application with slug %q (authentik.application.slug)", slug)
	}
	if err != nil {
		return est, callError(fmt.Sprintf("authentik: retrieve application %q", slug), resp, err, bodyExcerpt)
	}
	est.Application = adopt.Application{Slug: app.Slug, Name: app.Name, LaunchURL: app.GetMetaLaunchUrl()}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		groups, err := a.allGroups(gctx)
		est.Groups = groups
		return err
	})
	g.Go(func() error {
		bs, err := a.bindings(gctx, observedApplication(app))
		est.Bindings = len(bs)
		return err
	})
	if pk := app.GetProvider(); pk != 0 {
		g.Go(func() error { return a.readProvider(gctx, pk, &est) })
	}
	if err := g.Wait(); err != nil {
		return adopt.AuthentikEstate{}, err
	}
	return est, nil
}

// readProvider fills est.Provider and est.Mappings. A provider of another type (SAML,
// proxy) is not found among the OAuth2 providers: est.Provider stays nil.
func (a *Adapter) readProvider(ctx context.Context, pk int32, est *adopt.AuthentikEstate) error {
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2Retrieve(ctx, pk).Execute()
	if statusOf(resp) == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return callError(fmt.Sprintf("authentik: read provider %d", pk), resp, err, bodyFieldNames)
	}
	o, err := observedProvider(p)
	if err != nil {
		return err // a newer provider API that akminio could not manage afterwards
	}
	prov := &adopt.Provider{PK: p.Pk, Name: p.Name, ClientType: o.ClientType, GrantTypes: o.GrantTypes, RedirectURIs: o.RedirectURIs}
	if kp := p.GetSigningKey(); kp != "" {
		k, resp, err := a.api.CryptoAPI.CryptoCertificatekeypairsRetrieve(ctx, kp).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: read signing key of provider %q", p.Name), resp, err, bodyExcerpt)
		}
		prov.SigningKey = k.Name
	}
	for _, f := range []struct {
		pk  string
		out *string
	}{{p.AuthorizationFlow, &prov.AuthorizationFlow}, {p.InvalidationFlow, &prov.InvalidationFlow}} {
		if f.pk == "" {
			continue
		}
		l, resp, err := a.api.FlowsAPI.FlowsInstancesList(ctx).FlowUuid(f.pk).PageSize(a.pageSize).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: find flow %s of provider %q", f.pk, p.Name), resp, err, bodyExcerpt)
		}
		for _, fl := range l.Results {
			if fl.Pk == f.pk {
				*f.out = fl.Slug
			}
		}
		if *f.out == "" {
			return fmt.Errorf("authentik: flow %s of provider %q not found", f.pk, p.Name)
		}
	}
	for _, mpk := range p.PropertyMappings {
		m, resp, err := a.api.PropertymappingsAPI.PropertymappingsProviderScopeRetrieve(ctx, mpk).Execute()
		if statusOf(resp) == http.StatusNotFound {
			continue // not a scope mapping
		}
		if err != nil {
			return callError(fmt.Sprintf("authentik: read scope mapping %s of provider %q", mpk, p.Name), resp, err, bodyExcerpt)
		}
		est.Mappings = append(est.Mappings, adopt.Mapping{Name: m.Name, ScopeName: m.ScopeName, Expression: m.Expression, Managed: m.GetManaged()})
	}
	est.Provider = prov
	return nil
}

// allGroups lists every group without members, with parents.
func (a *Adapter) allGroups(ctx context.Context) ([]adopt.Group, error) {
	groups, err := a.listGroups(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adopt.Group, len(groups))
	for i, g := range groups {
		out[i] = adopt.Group{PK: g.Pk, Name: g.Name, Parents: slices.Clone(g.Parents)}
	}
	return out, nil
}

// Members returns the usernames of the members of the named groups and of every group
// below them (whom ak_is_group_member counts as members too), sorted, at most limit of
// them; more reports that there were more.
func (a *Adapter) Members(ctx context.Context, groups []string, limit int) (names []string, more bool, err error) {
	all, err := a.allGroups(ctx)
	if err != nil {
		return nil, false, err
	}
	want := map[string]bool{}
	for _, g := range all {
		if slices.Contains(groups, g.Name) {
			want[g.PK] = true
		}
	}
	for grown := true; grown; { // add children until nothing changes (cycles end too)
		grown = false
		for _, g := range all {
			if !want[g.PK] && slices.ContainsFunc(g.Parents, func(p string) bool { return want[p] }) {
				want[g.PK], grown = true, true
			}
		}
	}
	var byName []string
	for _, g := range all {
		if want[g.PK] {
			byName = append(byName, g.Name)
		}
	}
	if len(byName) == 0 {
		return nil, false, nil
	}
	users, err := listAll(ctx, a, "authentik: list members of the bound groups", bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.User, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.CoreAPI.CoreUsersList(ctx).GroupsByName(byName).IncludeGroups(false).
				IncludeRoles(false).Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return nil, false, err
	}
	for _, u := range users {
		names = append(names, u.Username)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if limit > 0 && len(names) > limit {
		return names[:limit], true, nil
	}
	return names, false, nil
}

// PreviewUsers previews many users at once (see PreviewUser), the adapter's concurrency
// at a time, reading the groups once for everyone. providerPK 0 (no provider yet) gives
// each user's groups and no claims. progress, when set, is called after each user.
func (a *Adapter) PreviewUsers(ctx context.Context, providerPK int32, usernames []string, progress func(done, total int)) ([]reconcile.UserPreview, error) {
	all, err := a.allGroups(ctx)
	if err != nil {
		return nil, err
	}
	byPK := make(map[string]adopt.Group, len(all))
	for _, g := range all {
		byPK[g.PK] = g
	}
	out := make([]reconcile.UserPreview, len(usernames))
	var done atomic.Int32
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range usernames {
		g.Go(func() error {
			if err := a.acquire(gctx); err != nil {
				return err
			}
			defer a.release()
			p, err := a.previewOne(gctx, providerPK, name, byPK)
			if err != nil {
				return err
			}
			out[i] = p
			if progress != nil {
				n := int(done.Add(1))
				mu.Lock()
				progress(n, len(usernames))
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func (a *Adapter) previewOne(ctx context.Context, providerPK int32, username string, groups map[string]adopt.Group) (reconcile.UserPreview, error) {
	what := fmt.Sprintf("authentik: preview claims of user %q", username)
	l, resp, err := a.api.CoreAPI.CoreUsersList(ctx).Username(username).IncludeGroups(true).
		IncludeRoles(false).PageSize(a.pageSize).Execute()
	if err != nil {
		return reconcile.UserPreview{}, callError(what+": look up user", resp, err, bodyExcerpt)
	}
	i := slices.IndexFunc(l.Results, func(u api.User) bool { return u.Username == username })
	if i < 0 {
		return reconcile.UserPreview{}, fmt.Errorf("%s: no user named %q in authentik", what, username)
	}
	user := l.Results[i]
	u := reconcile.UserPreview{Username: username, Groups: ancestors(user.GroupsObj, groups)}
	if providerPK == 0 {
		return u, nil
	}
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2PreviewUserRetrieve(ctx, providerPK).ForUser(user.Pk).Execute()
	if err != nil {
		return reconcile.UserPreview{}, callError(fmt.Sprintf("%s from provider %d", what, providerPK), resp, err, bodyFieldNames)
	}
	u.Claims = p.Preview
	return u, nil
}

// ancestors is the names of the direct groups and of all their ancestors, each once.
func ancestors(direct []api.PartialGroup, groups map[string]adopt.Group) []string {
	seen := map[string]bool{}
	var names, queue []string
	for _, g := range direct {
		if !seen[g.Pk] {
			seen[g.Pk] = true
			names = append(names, g.Name)
			queue = append(queue, g.Pk)
		}
	}
	for len(queue) > 0 {
		pk := queue[0]
		queue = queue[1:]
		for _, p := range groups[pk].Parents {
			if !seen[p] {
				seen[p] = true
				names = append(names, groups[p].Name)
				queue = append(queue, p)
			}
		}
	}
	return names
}

// ProviderPK implements access.Source: the OAuth2 provider's pk by exact name, 0 when none.
func (a *Adapter) ProviderPK(ctx context.Context, name string) (int32, error) {
	p, err := a.provider(ctx, name)
	if err != nil || p == nil {
		return 0, err
	}
	return p.PK, nil
}

// MappingExpression implements access.Source: the scope mapping's expression by exact name.
func (a *Adapter) MappingExpression(ctx context.Context, name string) (string, bool, error) {
	m, err := a.scopeMapping(ctx, name)
	if err != nil || m == nil {
		return "", false, err
	}
	return m.Expression, true, nil
}
