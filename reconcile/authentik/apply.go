package authentik

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/reconcile"
)

// Apply implements reconcile.AuthentikAdapter. Each object is written whole (every managed
// field from d), never only the fields that differ, so one write repairs any drift in it.
//
// What each change does:
//
//	scope_mapping   create | update   name, scope_name, expression, description
//	provider        create | update   see providerFields
//	application     create | update   name, slug, provider, meta_launch_url (by slug)
//	group           create            name
//	policy_binding  create            group, target application, next free order, enabled
//	policy_binding  delete            only a binding recorded in obs.State.CreatedBindings
//
// It returns the pks of the bindings it created and deleted; the engine alone records them
// in the ownership registry (obs.State).
func (a *Adapter) Apply(ctx context.Context, d *reconcile.Desired, obs *reconcile.Observed, changes []reconcile.Change, done reconcile.Done) (reconcile.Written, error) {
	var w reconcile.Written
	for _, c := range changes {
		if c.System != reconcile.SystemAuthentik || c.Blocked != "" || c.Pending {
			continue
		}
		if err := a.applyOne(ctx, d, obs, c, &w); err != nil {
			return w, err
		}
		if done != nil {
			done(c)
		}
	}
	return w, nil
}

func (a *Adapter) applyOne(ctx context.Context, d *reconcile.Desired, obs *reconcile.Observed, c reconcile.Change, w *reconcile.Written) error {
	ak := &obs.Authentik
	switch {
	case c.Kind == reconcile.KindScopeMapping && c.Action != reconcile.ActionDelete:
		return a.writeScopeMapping(ctx, d, ak)
	case c.Kind == reconcile.KindProvider && c.Action != reconcile.ActionDelete:
		return a.writeProvider(ctx, d, ak)
	case c.Kind == reconcile.KindApplication && c.Action != reconcile.ActionDelete:
		return a.writeApplication(ctx, d, ak)
	case c.Kind == reconcile.KindGroup && c.Action == reconcile.ActionCreate:
		return a.createGroup(ctx, c.Name, ak)
	case c.Kind == reconcile.KindBinding && c.Action == reconcile.ActionCreate:
		pk, err := a.createBinding(ctx, d, c.Name, ak)
		if err == nil {
			w.Created = append(w.Created, pk)
		}
		return err
	case c.Kind == reconcile.KindBinding && c.Action == reconcile.ActionDelete:
		pk, err := a.deleteBinding(ctx, d, c, ak, obs.State.CreatedBindings)
		if err == nil {
			w.Deleted = append(w.Deleted, pk)
		}
		return err
	}
	return fmt.Errorf("authentik: cannot %s %s %q: akminio does not make such changes", c.Action, c.Kind, c.Name)
}

// writeScopeMapping creates the scope mapping, or patches the observed one.
func (a *Adapter) writeScopeMapping(ctx context.Context, d *reconcile.Desired, ak *reconcile.AuthentikState) error {
	want := d.ScopeMapping
	if ak.ScopeMapping == nil {
		m, resp, err := a.api.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).
			ScopeMappingRequest(api.ScopeMappingRequest{
				Name: want.Name, ScopeName: want.ScopeName, Expression: want.Expression,
				Description: &want.Description,
			}).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: create scope mapping %q", want.Name), resp, err, bodyExcerpt)
		}
		ak.ScopeMapping = observedScopeMapping(m)
		return nil
	}
	m, resp, err := a.api.PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(ctx, ak.ScopeMapping.PK).
		PatchedScopeMappingRequest(api.PatchedScopeMappingRequest{
			Name: &want.Name, ScopeName: &want.ScopeName, Expression: &want.Expression,
			Description: &want.Description,
		}).Execute()
	if err != nil {
		return callError(fmt.Sprintf("authentik: update scope mapping %q", want.Name), resp, err, bodyExcerpt)
	}
	ak.ScopeMapping = observedScopeMapping(m)
	return nil
}

// providerFields are the provider's managed fields, resolved to pks through ak's lookups.
type providerFields struct {
	propertyMappings []string
	signingKey       api.NullableString // null: no signing key
	authFlow         string
	invalidFlow      string
	redirectURIs     []api.RedirectURIRequest
	clientID         *string // nil: not managed
}

// resolveProvider resolves d's provider to the values written: the built-in mappings of
// the configured scopes plus akminio's scope mapping (which an earlier change of this
// Apply may just have created), the keypair and flow pks, strict redirect URIs.
func resolveProvider(d *reconcile.Desired, ak *reconcile.AuthentikState) (providerFields, error) {
	var f providerFields
	what := fmt.Sprintf("authentik: provider %q", d.Provider.Name)
	for _, s := range d.Provider.Scopes {
		pk, ok := ak.BuiltinScopes[s]
		if !ok {
			return f, fmt.Errorf("%s: built-in scope mapping for scope %q was not observed", what, s)
		}
		f.propertyMappings = append(f.propertyMappings, pk)
	}
	if ak.ScopeMapping == nil {
		return f, fmt.Errorf("%s: scope mapping %q does not exist yet", what, d.ScopeMapping.Name)
	}
	if !slices.Contains(f.propertyMappings, ak.ScopeMapping.PK) {
		f.propertyMappings = append(f.propertyMappings, ak.ScopeMapping.PK)
	}
	if name := d.Provider.SigningKey; name != "" {
		pk, ok := ak.Keypairs[name]
		if !ok {
			return f, fmt.Errorf("%s: certificate keypair %q was not observed", what, name)
		}
		f.signingKey.Set(&pk)
	} else {
		f.signingKey.Set(nil)
	}
	var ok bool
	if f.authFlow, ok = ak.Flows[d.Provider.AuthorizationFlow]; !ok {
		return f, fmt.Errorf("%s: flow %q was not observed", what, d.Provider.AuthorizationFlow)
	}
	if f.invalidFlow, ok = ak.Flows[d.Provider.InvalidationFlow]; !ok {
		return f, fmt.Errorf("%s: flow %q was not observed", what, d.Provider.InvalidationFlow)
	}
	for _, u := range d.Provider.RedirectURIs {
		f.redirectURIs = append(f.redirectURIs, api.RedirectURIRequest{
			MatchingMode: api.MATCHINGMODEENUM_STRICT, Url: u,
			RedirectUriType: api.REDIRECTURITYPEENUM_AUTHORIZATION.Ptr(),
		})
	}
	if d.Provider.ClientID != "" {
		f.clientID = &d.Provider.ClientID
	}
	return f, nil
}

// grantTypes returns reconcile.ProviderGrantTypes as the API's enum.
func grantTypes() []api.GrantTypesEnum {
	out := make([]api.GrantTypesEnum, len(reconcile.ProviderGrantTypes))
	for i, g := range reconcile.ProviderGrantTypes {
		out[i] = api.GrantTypesEnum(g)
	}
	return out
}

// writeProvider creates the provider (authentik generates client_id, unless configured, and
// client_secret) or patches the observed one, then records the answer, secret included, in
// ak.Provider. Errors quote only the names of rejected fields: provider bodies hold the
// client secret.
func (a *Adapter) writeProvider(ctx context.Context, d *reconcile.Desired, ak *reconcile.AuthentikState) error {
	f, err := resolveProvider(d, ak)
	if err != nil {
		return err
	}
	name := d.Provider.Name
	if ak.Provider == nil {
		p, resp, err := a.api.ProvidersAPI.ProvidersOauth2Create(ctx).OAuth2ProviderRequest(api.OAuth2ProviderRequest{
			Name: name, AuthorizationFlow: f.authFlow, InvalidationFlow: f.invalidFlow,
			PropertyMappings: f.propertyMappings, ClientType: api.CLIENTTYPEENUM_CONFIDENTIAL.Ptr(),
			GrantTypes: grantTypes(), ClientId: f.clientID, SigningKey: f.signingKey,
			RedirectUris: f.redirectURIs,
		}).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: create provider %q", name), resp, err, bodyFieldNames)
		}
		ak.Provider, err = observedProvider(p)
		return err
	}
	pk := ak.Provider.PK
	// Logout URIs are not managed: keep those the provider has.
	cur, resp, err := a.api.ProvidersAPI.ProvidersOauth2Retrieve(ctx, pk).Execute()
	if err != nil {
		return callError(fmt.Sprintf("authentik: read provider %q", name), resp, err, bodyFieldNames)
	}
	uris := f.redirectURIs
	for _, r := range cur.RedirectUris {
		if r.RedirectUriType != nil && *r.RedirectUriType != api.REDIRECTURITYPEENUM_AUTHORIZATION {
			uris = append(uris, api.RedirectURIRequest{MatchingMode: r.MatchingMode, Url: r.Url, RedirectUriType: r.RedirectUriType})
		}
	}
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2PartialUpdate(ctx, pk).PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{
		Name: &name, AuthorizationFlow: &f.authFlow, InvalidationFlow: &f.invalidFlow,
		PropertyMappings: f.propertyMappings, ClientType: api.CLIENTTYPEENUM_CONFIDENTIAL.Ptr(),
		GrantTypes: grantTypes(), ClientId: f.clientID, SigningKey: f.signingKey,
		RedirectUris: uris,
	}).Execute()
	if err != nil {
		return callError(fmt.Sprintf("authentik: update provider %q", name), resp, err, bodyFieldNames)
	}
	ak.Provider, err = observedProvider(p)
	return err
}

// writeApplication creates the application or patches it by slug, pointing it at the
// provider in ak (which an earlier change of this Apply may just have created).
func (a *Adapter) writeApplication(ctx context.Context, d *reconcile.Desired, ak *reconcile.AuthentikState) error {
	want := d.Application
	if ak.Provider == nil {
		return fmt.Errorf("authentik: application %q: provider %q does not exist yet", want.Slug, d.Provider.Name)
	}
	provider := *api.NewNullableInt32(&ak.Provider.PK)
	if ak.Application == nil {
		app, resp, err := a.api.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(api.ApplicationRequest{
			Name: want.Name, Slug: want.Slug, Provider: provider, MetaLaunchUrl: &want.LaunchURL,
		}).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: create application %q", want.Slug), resp, err, bodyExcerpt)
		}
		ak.Application = observedApplication(app)
		return nil
	}
	app, resp, err := a.api.CoreAPI.CoreApplicationsPartialUpdate(ctx, want.Slug).PatchedApplicationRequest(api.PatchedApplicationRequest{
		Name: &want.Name, Provider: provider, MetaLaunchUrl: &want.LaunchURL,
	}).Execute()
	if err != nil {
		return callError(fmt.Sprintf("authentik: update application %q", want.Slug), resp, err, bodyExcerpt)
	}
	ak.Application = observedApplication(app)
	return nil
}

// createGroup creates a group named in bindings and records its pk.
func (a *Adapter) createGroup(ctx context.Context, name string, ak *reconcile.AuthentikState) error {
	g, resp, err := a.api.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(api.GroupRequest{Name: name}).Execute()
	if err != nil {
		return callError(fmt.Sprintf("authentik: create group %q", name), resp, err, bodyExcerpt)
	}
	if ak.Groups == nil {
		ak.Groups = map[string]string{}
	}
	ak.Groups[name] = g.Pk
	return nil
}

// createBinding binds the group to the application at the next free order and returns the
// new binding's pk (the engine records it as akminio's).
func (a *Adapter) createBinding(ctx context.Context, d *reconcile.Desired, group string, ak *reconcile.AuthentikState) (string, error) {
	what := fmt.Sprintf("authentik: bind group %q to application %q", group, d.Application.Slug)
	gpk, ok := ak.Groups[group]
	if !ok {
		return "", fmt.Errorf("%s: the group does not exist", what)
	}
	if ak.Application == nil {
		return "", fmt.Errorf("%s: the application does not exist", what)
	}
	order := int32(0)
	for _, b := range ak.Bindings {
		order = max(order, b.Order+1)
	}
	b, resp, err := a.api.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(api.PolicyBindingRequest{
		Group: *api.NewNullableString(&gpk), Target: ak.Application.PK, Order: order,
		Enabled: api.PtrBool(true),
	}).Execute()
	if err != nil {
		return "", callError(what, resp, err, bodyExcerpt)
	}
	ak.Bindings = append(ak.Bindings, observedBinding(b))
	return b.Pk, nil
}

// deleteBinding deletes a binding that akminio created: c.ID is its pk (c.Name, the name
// of its group, is for messages; without an ID, the binding akminio created for that
// group); owned are the pks of the bindings akminio created. A binding already gone counts
// as deleted. It returns the pk deleted.
func (a *Adapter) deleteBinding(ctx context.Context, d *reconcile.Desired, c reconcile.Change, ak *reconcile.AuthentikState, owned []string) (string, error) {
	pk := c.ID
	if pk == "" {
		for _, b := range ak.Bindings {
			if b.Group != "" && b.Group == ak.Groups[c.Name] && slices.Contains(owned, b.PK) {
				pk = b.PK
				break
			}
		}
	}
	what := fmt.Sprintf("authentik: delete policy binding of group %q to application %q", c.Name, d.Application.Slug)
	if pk == "" {
		return "", fmt.Errorf("%s: no binding akminio created was observed", what)
	}
	if !slices.Contains(owned, pk) {
		return "", fmt.Errorf("%s: binding %s was not created by akminio, so it is left alone", what, pk)
	}
	resp, err := a.api.PoliciesAPI.PoliciesBindingsDestroy(ctx, pk).Execute()
	if err != nil && statusOf(resp) != http.StatusNotFound {
		return "", callError(what, resp, err, bodyExcerpt)
	}
	ak.Bindings = slices.DeleteFunc(ak.Bindings, func(b reconcile.ObservedBinding) bool { return b.PK == pk })
	return pk, nil
}
