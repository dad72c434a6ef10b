package authentik

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/reconcile"
)

func TestObserveFreshInstall(t *testing.T) {
	f := newFixture(t)
	st, err := f.ad.Observe(context.Background(), desired())
	if err != nil {
		t.Fatal(err)
	}
	if st.ScopeMapping != nil || st.Provider != nil || st.Application != nil || len(st.Groups) != 0 || len(st.Bindings) != 0 {
		t.Errorf("fresh install: want everything missing, got %+v", st)
	}
	for _, s := range []string{"openid", "email", "profile"} {
		if st.BuiltinScopes[s] == "" {
			t.Errorf("built-in scope %q not resolved: %v", s, st.BuiltinScopes)
		}
	}
	if st.Keypairs[aksim.SelfSignedName] == "" {
		t.Errorf("keypair not resolved: %v", st.Keypairs)
	}
	for _, slug := range []string{"default-provider-authorization-implicit-consent", "default-provider-invalidation-flow"} {
		if st.Flows[slug] == "" {
			t.Errorf("flow %q not resolved: %v", slug, st.Flows)
		}
	}
}

func TestObserveMissingLookupsNameThem(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		edit func(*reconcile.Desired)
		want string
	}{
		{func(d *reconcile.Desired) { d.Provider.SigningKey = "no such key" }, `keypair "no such key"`},
		{func(d *reconcile.Desired) { d.Provider.InvalidationFlow = "no-such-flow" }, `flow "no-such-flow" not found`},
		// authentik answers an unknown managed value with a 400 (authentik/core/api/
		// property_mappings.py); the adapter turns it into this message.
		{func(d *reconcile.Desired) { d.Provider.Scopes = []string{"openid", "nonsense"} },
			`authentik: built-in scope mapping for scope "nonsense" (managed "goauthentik.io/providers/oauth2/scope-nonsense") not found`},
	} {
		d := desired()
		tc.edit(d)
		_, err := f.ad.Observe(context.Background(), d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Observe error = %v, want it to name %s", err, tc.want)
		}
	}
}

func TestApplyFromNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	st, err := f.ad.Observe(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	obs := &reconcile.Observed{Authentik: st}
	changes := fromNothing()
	// Not the authentik applier's: skipped without a request.
	changes = append(changes,
		reconcile.Change{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate, Kind: reconcile.KindPolicy, Name: "p"},
		reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionCreate, Kind: reconcile.KindGroup, Name: "Blocked", Blocked: "create_groups is off"})
	var done []reconcile.Change
	w, err := f.ad.Apply(ctx, d, obs, changes, func(c reconcile.Change) { done = append(done, c) })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(done, fromNothing()) {
		t.Errorf("done called for %+v, want the 7 authentik changes in order", done)
	}
	ak := obs.Authentik
	if ak.Provider == nil || len(ak.Provider.ClientSecret.Reveal()) < 40 || ak.Provider.ClientID == "" {
		t.Fatalf("provider in obs lacks pk, client_id or client_secret: %+v", ak.Provider)
	}
	if ak.Application == nil || ak.Application.Provider != ak.Provider.PK {
		t.Errorf("application in obs = %+v, want it pointing at provider %d", ak.Application, ak.Provider.PK)
	}
	if len(w.Created) != 2 || len(ak.Groups) != 2 || len(ak.Bindings) != 2 {
		t.Errorf("obs: groups %v, bindings %v, created bindings %v; want 2 of each", ak.Groups, ak.Bindings, w.Created)
	}
	for _, b := range ak.Bindings {
		if !slices.Contains(w.Created, b.PK) {
			t.Errorf("binding %s is not reported as created (%v)", b.PK, w.Created)
		}
	}
	if len(obs.State.CreatedBindings) != 0 {
		t.Errorf("the adapter recorded ownership itself: %v; the engine alone does", obs.State.CreatedBindings)
	}

	checkProviderReadBack(t, f, d, ak)
	checkBindingsReadBack(t, f, ak)

	// A fresh Observe sees exactly what Apply recorded, and no authentik drift is left.
	again, err := f.ad.Observe(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, ak) {
		t.Errorf("Observe after Apply:\n got %+v\nwant %+v", again, ak)
	}
	plan := reconcile.ComputePlan(d, &reconcile.Observed{Authentik: again, State: obs.State})
	if left := plan.ForSystem(reconcile.SystemAuthentik); len(left) > 0 {
		t.Errorf("authentik drift left after Apply: %+v", left)
	}
}

func checkProviderReadBack(t *testing.T, f *fixture, d *reconcile.Desired, ak reconcile.AuthentikState) {
	t.Helper()
	ctx := context.Background()
	p, _, err := f.raw.ProvidersAPI.ProvidersOauth2Retrieve(ctx, ak.Provider.PK).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.GetClientType()); got != "confidential" {
		t.Errorf("client_type = %q", got)
	}
	if !reflect.DeepEqual(p.GrantTypes, []api.GrantTypesEnum{"authorization_code", "refresh_token"}) {
		t.Errorf("grant_types = %v", p.GrantTypes)
	}
	if len(p.RedirectUris) != 1 || p.RedirectUris[0].Url != d.Provider.RedirectURIs[0] ||
		p.RedirectUris[0].MatchingMode != api.MATCHINGMODEENUM_STRICT {
		t.Errorf("redirect_uris = %+v", p.RedirectUris)
	}
	want := []string{ak.BuiltinScopes["openid"], ak.BuiltinScopes["email"], ak.BuiltinScopes["profile"], ak.ScopeMapping.PK}
	got := slices.Clone(p.PropertyMappings)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("property_mappings = %v, want %v", got, want)
	}
	if p.GetSigningKey() != ak.Keypairs[aksim.SelfSignedName] || p.AuthorizationFlow != ak.Flows[d.Provider.AuthorizationFlow] ||
		p.InvalidationFlow != ak.Flows[d.Provider.InvalidationFlow] {
		t.Errorf("signing_key/flows = %s/%s/%s, want the observed lookups", p.GetSigningKey(), p.AuthorizationFlow, p.InvalidationFlow)
	}
	app, _, err := f.raw.CoreAPI.CoreApplicationsRetrieve(ctx, "minio").Execute()
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != "MinIO" || app.GetProvider() != p.Pk || app.GetMetaLaunchUrl() != "https://minio.test" {
		t.Errorf("application = name %q provider %d launch %q", app.Name, app.GetProvider(), app.GetMetaLaunchUrl())
	}
	m, _, err := f.raw.PropertymappingsAPI.PropertymappingsProviderScopeRetrieve(ctx, ak.ScopeMapping.PK).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if m.Expression != d.ScopeMapping.Expression || m.ScopeName != "minio" || m.GetDescription() != d.ScopeMapping.Description {
		t.Errorf("scope mapping read back differs: %+v", m)
	}
}

func checkBindingsReadBack(t *testing.T, f *fixture, ak reconcile.AuthentikState) {
	t.Helper()
	l, _, err := f.raw.PoliciesAPI.PoliciesBindingsList(context.Background()).Target(ak.Application.PK).Execute()
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for i, b := range l.Results {
		groups = append(groups, b.GetGroup())
		if b.Order != int32(i) || !b.GetEnabled() {
			t.Errorf("binding %d: order %d enabled %v, want order %d enabled", i, b.Order, b.GetEnabled(), i)
		}
	}
	if want := []string{ak.Groups["Minio admins"], ak.Groups["Minio users"]}; !slices.Equal(groups, want) {
		t.Errorf("bound groups = %v, want %v", groups, want)
	}
}

func TestApplyRepairsDriftWritingEveryField(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	obs := f.applyFromNothing(t, d)
	secret := obs.Authentik.Provider.ClientSecret
	// An operator edits the provider and the mapping behind akminio's back.
	pk := obs.Authentik.Provider.PK
	if _, _, err := f.raw.ProvidersAPI.ProvidersOauth2PartialUpdate(ctx, pk).PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{
		GrantTypes:   []api.GrantTypesEnum{},
		RedirectUris: []api.RedirectURIRequest{{MatchingMode: api.MATCHINGMODEENUM_REGEX, Url: ".*"}},
	}).Execute(); err != nil {
		t.Fatal(err)
	}
	st, err := f.ad.Observe(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	obs.Authentik = st
	upd := reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionUpdate, Kind: reconcile.KindProvider, Name: "MinIO"}
	if _, err := f.ad.Apply(ctx, d, obs, []reconcile.Change{upd}, nil); err != nil {
		t.Fatal(err)
	}
	if obs.Authentik.Provider.ClientSecret != secret {
		t.Error("an update changed the client secret")
	}
	checkProviderReadBack(t, f, d, obs.Authentik)
}

func TestApplyDeletesOnlyBindingsItCreated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	obs := f.applyFromNothing(t, d)
	theirs, _, err := f.raw.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(api.PolicyBindingRequest{
		Group: *api.NewNullableString(api.PtrString(obs.Authentik.Groups["Minio users"])), Target: obs.Authentik.Application.PK, Order: 50,
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	del := func(id string) reconcile.Change {
		return reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionDelete, Kind: reconcile.KindBinding, Name: "Minio users", ID: id}
	}
	if w, err := f.ad.Apply(ctx, d, obs, []reconcile.Change{del(theirs.Pk)}, nil); err == nil || !strings.Contains(err.Error(), "not created by akminio") || len(w.Deleted) != 0 {
		t.Errorf("deleting an operator's binding: err = %v, deleted %v; want a refusal", err, w.Deleted)
	}
	mine := obs.State.CreatedBindings[1]
	w, err := f.ad.Apply(ctx, d, obs, []reconcile.Change{del(mine)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Deleted, []string{mine}) || len(obs.State.CreatedBindings) != 2 {
		t.Errorf("deleted = %v, registry after delete = %v; want %s reported and the registry left to the engine", w.Deleted, obs.State.CreatedBindings, mine)
	}
	if f.sim.Count(http.MethodDelete, "/api/v3/policies/bindings/") != 1 {
		t.Errorf("want exactly one DELETE")
	}
	if _, resp, _ := f.raw.PoliciesAPI.PoliciesBindingsRetrieve(ctx, theirs.Pk).Execute(); statusOf(resp) != http.StatusOK {
		t.Errorf("the operator's binding is gone (status %d)", statusOf(resp))
	}
}

func TestPreviewUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	obs := f.applyFromNothing(t, d)
	child, _, err := f.raw.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(api.GroupRequest{
		Name: "Minio admins EU", Parents: []string{obs.Authentik.Groups["Minio admins"]},
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	f.seedUser(t, "alice", child.Pk)
	f.seedUser(t, "nobody")

	u, err := f.ad.PreviewUser(ctx, obs.Authentik.Provider.PK, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Groups, []string{"Minio admins EU", "Minio admins"}) {
		t.Errorf("alice's groups = %v, want the child group and its parent", u.Groups)
	}
	if got, ok := reconcile.ClaimPolicies(u.Claims, "policy"); !ok || !slices.Equal(got, []string{"consoleAdmin"}) {
		t.Errorf("alice's policy claim = %v (%v), claims %v", got, ok, u.Claims)
	}
	u, err = f.ad.PreviewUser(ctx, obs.Authentik.Provider.PK, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := reconcile.ClaimPolicies(u.Claims, "policy"); ok {
		t.Errorf("a group-less user got a policy claim %v", got)
	}
	if _, err := f.ad.PreviewUser(ctx, obs.Authentik.Provider.PK, "mallory"); err == nil || !strings.Contains(err.Error(), `"mallory"`) {
		t.Errorf("unknown user: err = %v, want it named", err)
	}
}

func TestClientSecretRoundTripAndPing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.ad.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	obs := f.applyFromNothing(t, desired())
	pk := obs.Authentik.Provider.PK
	want := config.Secret(strings.Repeat("s3cr3T", 21) + "xx")
	if err := f.ad.SetClientSecret(ctx, pk, want); err != nil {
		t.Fatal(err)
	}
	got, err := f.ad.ClientSecret(ctx, pk)
	if err != nil || got.Reveal() != want.Reveal() {
		t.Errorf("ClientSecret = (%d chars, %v), want the secret just set", len(got.Reveal()), err)
	}
	bad, err := New(config.Authentik{URL: f.url, Token: "wrong"}, WithRetry(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Ping with a wrong token: %v, want a 403", err)
	}
}
