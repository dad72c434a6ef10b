package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
)

// guideExpression is the scope mapping of authentik's MinIO integration guide (its
// if/elif example), with this environment's groups and policies.
const guideExpression = `if ak_is_group_member(request.user, name="Minio admins"):
    return {
        "policy": "consoleAdmin",
    }
elif ak_is_group_member(request.user, name="Minio users"):
    return {
        "policy": ["readonly"]
    }
return None
`

// TestProofByHand is issue 3's end-to-end proof of the environment, without akminio: both
// sides are configured by hand, through authentik's API and madmin-go, as the guides say,
// and STS logins show that the setup works: an admin reads and writes, a readonly user
// only reads, a user in no group is refused.
func TestProofByHand(t *testing.T) {
	env := e2eenvtest.Start(t)
	ctx := context.Background()
	s := &suite{env: env, ak: aksimtest.Client(env.AK)}

	mapping := must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).ScopeMappingRequest(api.ScopeMappingRequest{
		Name: "OIDC-Scope-minio", ScopeName: "minio", Expression: guideExpression,
	}).Execute())(t)
	keypairs := must(s.ak.CryptoAPI.CryptoCertificatekeypairsList(ctx).Name(e2eenv.SigningKeyName).Execute())(t)
	if len(keypairs.Results) != 1 {
		t.Fatalf("keypairs named %q: %d", e2eenv.SigningKeyName, len(keypairs.Results))
	}
	provider := must(s.ak.ProvidersAPI.ProvidersOauth2Create(ctx).OAuth2ProviderRequest(api.OAuth2ProviderRequest{
		Name:              "MinIO",
		AuthorizationFlow: s.flowPK(t, "default-provider-authorization-implicit-consent"),
		InvalidationFlow:  s.flowPK(t, "default-provider-invalidation-flow"),
		ClientType:        api.CLIENTTYPEENUM_CONFIDENTIAL.Ptr(),
		GrantTypes:        []api.GrantTypesEnum{api.GRANTTYPESENUM_AUTHORIZATION_CODE, api.GRANTTYPESENUM_REFRESH_TOKEN},
		SigningKey:        *api.NewNullableString(&keypairs.Results[0].Pk),
		PropertyMappings: []string{
			s.builtinMappingPK(t, "openid"), s.builtinMappingPK(t, "email"), s.builtinMappingPK(t, "profile"), mapping.Pk,
		},
		RedirectUris: []api.RedirectURIRequest{{
			MatchingMode: api.MATCHINGMODEENUM_STRICT, Url: e2eenv.RedirectURI,
			RedirectUriType: api.REDIRECTURITYPEENUM_AUTHORIZATION.Ptr(),
		}},
	}).Execute())(t)
	must(s.ak.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(api.ApplicationRequest{
		Name: "MinIO", Slug: "minio", Provider: *api.NewNullableInt32(&provider.Pk),
	}).Execute())(t)

	adm, err := env.MinIO.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	kv := fmt.Sprintf(`identity_openid config_url="%s/application/o/minio/.well-known/openid-configuration" client_id=%s client_secret=%s claim_name=policy scopes="openid,profile,email,minio" display_name=authentik`,
		env.AK.URL(), provider.GetClientId(), provider.GetClientSecret())
	restart, err := adm.SetConfigKV(ctx, kv)
	if err != nil {
		t.Fatalf("SetConfigKV identity_openid: %v", err)
	}
	if !restart {
		t.Error("SetConfigKV identity_openid did not ask for a restart; platform-facts.md says it does")
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := env.MinIO.Restart(rctx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		user, group string
		read, write bool
	}{
		{"alice", "Minio admins", true, true},
		{"bob", "Minio users", true, false},
		{"dave", "Minio interns, a child of Minio users", true, false},
	} {
		a, err := env.Login(ctx, tc.user)
		if err != nil {
			t.Errorf("%s (%s): %v", tc.user, tc.group, err)
			continue
		}
		if a.CanRead != tc.read || a.CanWrite != tc.write {
			t.Errorf("%s (%s): read %v write %v, want read %v write %v", tc.user, tc.group, a.CanRead, a.CanWrite, tc.read, tc.write)
		}
	}
	_, err = env.Login(ctx, "carol")
	if err == nil || !strings.Contains(err.Error(), "policy claim missing") {
		t.Errorf("carol (no group): %v; want STS to refuse with \"policy claim missing\"", err)
	}
}
