package aksim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
)

// guideExpression is the scope mapping of authentik's MinIO integration guide.
const guideExpression = `if ak_is_group_member(request.user, name="Minio admins"):
    return {"policy": "consoleAdmin"}
elif ak_is_group_member(request.user, name="Minio users"):
    return {"policy": ["readonly", "my-custom-policy"]}
return None
`

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(describe(err))
	}
}

// describe includes the response body of an API error.
func describe(err error) string {
	if e, ok := err.(*api.GenericOpenAPIError); ok {
		return e.Error() + ": " + string(e.Body())
	}
	return err.Error()
}

// rawCall sends a request with the simulator's token (or the given
// authorization header) and returns the status and decoded JSON body.
func rawCall(t *testing.T, s *aksim.Server, method, path string, body any, auth ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token())
	if len(auth) > 0 {
		req.Header.Set("Authorization", auth[0])
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: non-JSON body %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// minioSetup is what the MinIO guide creates by hand.
type minioSetup struct {
	provider api.OAuth2Provider
	app      api.Application
}

// setupMinio creates the guide's scope mapping, a confidential provider
// signed with the self-signed key and an application "minio".
func setupMinio(t *testing.T, c *api.APIClient) minioSetup {
	t.Helper()
	ctx := context.Background()
	m, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).
		ScopeMappingRequest(*api.NewScopeMappingRequest("OIDC-Scope-minio", guideExpression, "minio")).Execute()
	must(t, err)
	builtins, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Managed([]string{
		"goauthentik.io/providers/oauth2/scope-openid", "goauthentik.io/providers/oauth2/scope-email",
		"goauthentik.io/providers/oauth2/scope-profile"}).Execute()
	must(t, err)
	if len(builtins.Results) != 3 {
		t.Fatalf("managed filter found %d built-in mappings, want 3", len(builtins.Results))
	}
	mappings := []string{m.Pk}
	for _, b := range builtins.Results {
		mappings = append(mappings, b.Pk)
	}
	flow := func(slug string) string {
		f, _, err := c.FlowsAPI.FlowsInstancesRetrieve(ctx, slug).Execute()
		must(t, err)
		return f.Pk
	}
	kps, _, err := c.CryptoAPI.CryptoCertificatekeypairsList(ctx).Name(aksim.SelfSignedName).Execute()
	must(t, err)
	req := api.NewOAuth2ProviderRequest("minio", flow("default-provider-authorization-implicit-consent"),
		flow("default-provider-invalidation-flow"),
		[]api.RedirectURIRequest{*api.NewRedirectURIRequest(api.MATCHINGMODEENUM_STRICT, "http://127.0.0.1:9001/oauth_callback")})
	req.SetPropertyMappings(mappings)
	req.SetSigningKey(kps.Results[0].Pk)
	req.SetGrantTypes([]api.GrantTypesEnum{api.GRANTTYPESENUM_AUTHORIZATION_CODE, api.GRANTTYPESENUM_REFRESH_TOKEN, api.GRANTTYPESENUM_CLIENT_CREDENTIALS})
	p, _, err := c.ProvidersAPI.ProvidersOauth2Create(ctx).OAuth2ProviderRequest(*req).Execute()
	must(t, err)
	areq := api.NewApplicationRequest("MinIO", "minio")
	areq.SetProvider(p.Pk)
	a, _, err := c.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(*areq).Execute()
	must(t, err)
	p2, _, err := c.ProvidersAPI.ProvidersOauth2Retrieve(ctx, p.Pk).Execute()
	must(t, err)
	return minioSetup{provider: *p2, app: *a}
}
