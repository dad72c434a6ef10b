package e2eenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	api "goauthentik.io/api/v3"
)

// The two scope mapping expressions of authentik's MinIO integration guide
// (website/integrations/.../minio/index.md in goauthentik/authentik), verbatim.
const (
	GuidePlainExpression = `return {
    "policy": "readwrite",
}
`
	GuideGroupsExpression = `if ak_is_group_member(request.user, name="Minio admins"):
  return {
      "policy": "consoleAdmin",
}
elif ak_is_group_member(request.user, name="Minio users"):
  return {
      "policy": ["readonly", "my-custom-policy"]
}
return None
`
)

// CustomPolicyDocument is the document of CustomPolicy the guide's setup creates: read and
// write on CustomBucket.
const CustomPolicyDocument = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:ListBucket"],` +
	`"Resource":["arn:aws:s3:::shared","arn:aws:s3:::shared/*"]}]}`

// APIClient is a goauthentik.io/api/v3 client of the simulator with its admin token.
func (e *Env) APIClient() *api.APIClient {
	cfg := api.NewConfiguration()
	cfg.Servers = api.ServerConfigurations{{URL: e.AK.URL() + "/api/v3"}}
	cfg.AddDefaultHeader("Authorization", "Bearer "+e.AK.Token())
	cfg.HTTPClient = &http.Client{}
	return api.NewAPIClient(cfg)
}

// SetupGuide builds the state authentik's MinIO guide leaves, by hand as an operator
// following it would, with expression as the scope mapping's: in authentik a scope
// mapping MappingName (scope "minio"), a confidential OAuth2 provider ProviderName with
// the openid, email and profile mappings and this one, the self-signed signing key and
// RedirectURI, and an application AppSlug; in MinIO CustomPolicy, and identity_openid set
// with the guide's `mc admin config set` keys (config_url, client_id, client_secret,
// scopes), then a restart so that MinIO loads it.
func (e *Env) SetupGuide(ctx context.Context, expression string) error {
	c := e.APIClient()
	wrap := func(what string, resp *http.Response, err error) error {
		var oe *api.GenericOpenAPIError
		if errors.As(err, &oe) {
			return fmt.Errorf("e2eenv: guide: %s: %w: %s", what, err, oe.Body())
		}
		if err != nil {
			return fmt.Errorf("e2eenv: guide: %s: %w", what, err)
		}
		return nil
	}
	m, resp, err := c.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).ScopeMappingRequest(api.ScopeMappingRequest{
		Name: MappingName, ScopeName: MappingScope, Expression: expression}).Execute()
	if err := wrap("create scope mapping", resp, err); err != nil {
		return err
	}
	mappings := []string{m.Pk}
	for _, scope := range []string{"openid", "email", "profile"} {
		l, resp, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).
			Managed([]string{"goauthentik.io/providers/oauth2/scope-" + scope}).Execute()
		if err := wrap("find the "+scope+" mapping", resp, err); err != nil {
			return err
		}
		mappings = append(mappings, l.Results[0].Pk)
	}
	flows := map[string]string{}
	for _, slug := range []string{"default-provider-authorization-implicit-consent", "default-provider-invalidation-flow"} {
		l, resp, err := c.FlowsAPI.FlowsInstancesList(ctx).Slug(slug).Execute()
		if err := wrap("find flow "+slug, resp, err); err != nil {
			return err
		}
		flows[slug] = l.Results[0].Pk
	}
	kps, resp, err := c.CryptoAPI.CryptoCertificatekeypairsList(ctx).Name(SigningKeyName).Execute()
	if err := wrap("find the signing key", resp, err); err != nil {
		return err
	}
	ct := api.CLIENTTYPEENUM_CONFIDENTIAL
	p, resp, err := c.ProvidersAPI.ProvidersOauth2Create(ctx).OAuth2ProviderRequest(api.OAuth2ProviderRequest{
		Name:              ProviderName,
		AuthorizationFlow: flows["default-provider-authorization-implicit-consent"],
		InvalidationFlow:  flows["default-provider-invalidation-flow"],
		PropertyMappings:  mappings,
		ClientType:        &ct,
		GrantTypes:        []api.GrantTypesEnum{api.GRANTTYPESENUM_AUTHORIZATION_CODE, api.GRANTTYPESENUM_REFRESH_TOKEN},
		SigningKey:        *api.NewNullableString(&kps.Results[0].Pk),
		RedirectUris:      []api.RedirectURIRequest{{MatchingMode: api.MATCHINGMODEENUM_STRICT, Url: RedirectURI}},
	}).Execute()
	if err := wrap("create provider", resp, err); err != nil {
		return err
	}
	launch := e.MinIO.Endpoint
	_, resp, err = c.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(api.ApplicationRequest{
		Name: "MinIO", Slug: AppSlug, Provider: *api.NewNullableInt32(&p.Pk), MetaLaunchUrl: &launch}).Execute()
	if err := wrap("create application", resp, err); err != nil {
		return err
	}

	adm, err := e.MinIO.AdminClient()
	if err != nil {
		return err
	}
	if err := adm.AddCannedPolicy(ctx, CustomPolicy, json.RawMessage(CustomPolicyDocument)); err != nil {
		return fmt.Errorf("e2eenv: guide: add policy %s: %w", CustomPolicy, err)
	}
	kv := fmt.Sprintf(`identity_openid config_url=%q client_id=%q client_secret=%q scopes="openid,profile,email,minio"`,
		e.AK.URL()+"/application/o/"+AppSlug+"/.well-known/openid-configuration", p.GetClientId(), p.GetClientSecret())
	if _, err := adm.SetConfigKV(ctx, kv); err != nil {
		return fmt.Errorf("e2eenv: guide: mc admin config set identity_openid: %w", err)
	}
	if err := e.MinIO.Restart(ctx); err != nil {
		return fmt.Errorf("e2eenv: guide: restart MinIO: %w", err)
	}
	return nil
}

// ConnectionConfig is the minimal config `akminio import` starts from: how to reach both
// systems, the application's slug, and where akminio keeps its state and listens.
func (e *Env) ConnectionConfig() map[string]any {
	return map[string]any{
		"authentik": map[string]any{
			"url":         e.AK.URL(),
			"token_file":  e.SecretPath(TokenFile),
			"application": map[string]any{"slug": AppSlug},
		},
		"minio": map[string]any{
			"endpoint":        e.MinIO.Endpoint,
			"access_key_file": e.SecretPath(AccessKeyFile),
			"secret_key_file": e.SecretPath(SecretKeyFile),
		},
		"verify":    map[string]any{"users": []any{"alice", "bob"}},
		"schedule":  map[string]any{"reconcile": "@every 1h"},
		"state_dir": e.StateDir,
		"http":      map[string]any{"listen": e.listen},
	}
}
