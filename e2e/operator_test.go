package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"

	api "goauthentik.io/api/v3"
)

// The operator: changes made through authentik's API (goauthentik.io/api/v3) the way an
// administrator or a script would, to introduce drift.

// must turns a generated client call's result into its value, failing the test on error:
// must(req.Execute())(t).
func must[T any](v T, _ *http.Response, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		fatalIf(t, err)
		return v
	}
}

// fatalIf fails the test on err, quoting the body of an API error.
func fatalIf(t testing.TB, err error) {
	t.Helper()
	var oe *api.GenericOpenAPIError
	if errors.As(err, &oe) {
		t.Fatalf("%v: %s", err, oe.Body())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// done is must for calls that return no value: done(req.Execute())(t).
func done(_ *http.Response, err error) func(testing.TB) {
	return func(t testing.TB) {
		t.Helper()
		fatalIf(t, err)
	}
}

// mappingPK returns the pk of the scope mapping named name.
func (s *suite) mappingPK(t testing.TB, name string) string {
	t.Helper()
	l := must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeList(context.Background()).Name(name).Execute())(t)
	if len(l.Results) != 1 {
		t.Fatalf("scope mappings named %q: %d, want 1", name, len(l.Results))
	}
	return l.Results[0].Pk
}

// builtinMappingPK returns the pk of authentik's managed mapping for scope.
func (s *suite) builtinMappingPK(t testing.TB, scope string) string {
	t.Helper()
	l := must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeList(context.Background()).
		Managed([]string{"goauthentik.io/providers/oauth2/scope-" + scope}).Execute())(t)
	if len(l.Results) != 1 {
		t.Fatalf("built-in mapping of scope %q: %d results, want 1", scope, len(l.Results))
	}
	return l.Results[0].Pk
}

// provider returns the OAuth2 provider named name.
func (s *suite) provider(t testing.TB, name string) api.OAuth2Provider {
	t.Helper()
	l := must(s.ak.ProvidersAPI.ProvidersOauth2List(context.Background()).Name(name).Execute())(t)
	if len(l.Results) != 1 {
		t.Fatalf("providers named %q: %d, want 1", name, len(l.Results))
	}
	return l.Results[0]
}

// flowPK returns the pk of the flow with slug.
func (s *suite) flowPK(t testing.TB, slug string) string {
	t.Helper()
	l := must(s.ak.FlowsAPI.FlowsInstancesList(context.Background()).Slug(slug).Execute())(t)
	if len(l.Results) != 1 {
		t.Fatalf("flows with slug %q: %d, want 1", slug, len(l.Results))
	}
	return l.Results[0].Pk
}

func (s *suite) patchMapping(t testing.TB, name string, req api.PatchedScopeMappingRequest) {
	t.Helper()
	must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(context.Background(), s.mappingPK(t, name)).
		PatchedScopeMappingRequest(req).Execute())(t)
}

func (s *suite) patchProvider(t testing.TB, name string, req api.PatchedOAuth2ProviderRequest) {
	t.Helper()
	must(s.ak.ProvidersAPI.ProvidersOauth2PartialUpdate(context.Background(), s.provider(t, name).Pk).
		PatchedOAuth2ProviderRequest(req).Execute())(t)
}

func (s *suite) patchApplication(t testing.TB, slug string, req api.PatchedApplicationRequest) {
	t.Helper()
	must(s.ak.CoreAPI.CoreApplicationsPartialUpdate(context.Background(), slug).
		PatchedApplicationRequest(req).Execute())(t)
}

// nullString is an explicit JSON null for a nullable field.
func nullString() api.NullableString { return *api.NewNullableString(nil) }

// nullInt is an explicit JSON null for a nullable field.
func nullInt() api.NullableInt32 { return *api.NewNullableInt32(nil) }

func ptr[T any](v T) *T { return &v }
