package aksim_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/minio/minio-go/v7"
	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/miniotest"
)

// keypairPK returns the pk of a seeded keypair by name.
func keypairPK(t *testing.T, c *api.APIClient, name string) string {
	t.Helper()
	kps, _, err := c.CryptoAPI.CryptoCertificatekeypairsList(context.Background()).Name(name).Execute()
	must(t, err)
	if len(kps.Results) != 1 {
		t.Fatalf("keypair %q: %d results", name, len(kps.Results))
	}
	return kps.Results[0].Pk
}

// setSigningKey points the provider at a keypair (pk), or at none ("").
func setSigningKey(t *testing.T, c *api.APIClient, provider int32, pk string) {
	t.Helper()
	patch := api.NewPatchedOAuth2ProviderRequest()
	if pk == "" {
		patch.SetSigningKeyNil()
	} else {
		patch.SetSigningKey(pk)
	}
	_, _, err := c.ProvidersAPI.ProvidersOauth2PartialUpdate(context.Background(), provider).
		PatchedOAuth2ProviderRequest(*patch).Execute()
	must(t, err)
}

// TestSigningFollowsTheKeyType: OAuth2Provider.jwt_key (providers/oauth2/models.py) signs
// RS256 with an RSA key, ES256 with a P-256 key and HS256 with the client secret without
// a key; discovery names that algorithm (views/provider.py) and the JWKS serves the key
// with it (views/jwks.py), an EC key as kty EC, crv P-256, and no "keys" without a key.
func TestSigningFollowsTheKeyType(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	ctx := context.Background()
	for _, tc := range []struct {
		keypair string
		alg     jose.SignatureAlgorithm
	}{
		{aksim.SelfSignedName, jose.RS256},
		{aksim.ECKeypairName, jose.ES256},
		{"", jose.HS256},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			pk := ""
			if tc.keypair != "" {
				pk = keypairPK(t, c, tc.keypair)
			}
			setSigningKey(t, c, m.provider.Pk, pk)
			var disc map[string]any
			getJSON(t, s.URL()+"/application/o/minio/.well-known/openid-configuration", &disc)
			if got := anyStrings(disc["id_token_signing_alg_values_supported"]); len(got) != 1 || got[0] != string(tc.alg) {
				t.Errorf("id_token_signing_alg_values_supported = %v, want [%s]", got, tc.alg)
			}
			var set map[string][]map[string]any
			getJSON(t, s.URL()+"/application/o/minio/jwks/", &set)
			tokStr, err := s.MintIDToken(ctx, "", "minio", "akadmin")
			must(t, err)
			tok, err := jwt.ParseSigned(tokStr, []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatalf("token is not %s: %v", tc.alg, err)
			}
			claims := map[string]any{}
			if tc.alg == jose.HS256 {
				if _, ok := set["keys"]; ok || len(set) != 0 {
					t.Errorf("JWKS without a signing key = %v, want {}", set)
				}
				must(t, tok.Claims([]byte(m.provider.GetClientSecret()), &claims))
				return
			}
			if len(set["keys"]) != 1 {
				t.Fatalf("JWKS = %v, want one key", set)
			}
			jwk := set["keys"][0]
			wantKty := map[jose.SignatureAlgorithm]string{jose.RS256: "RSA", jose.ES256: "EC"}[tc.alg]
			if jwk["alg"] != string(tc.alg) || jwk["kty"] != wantKty || jwk["use"] != "sig" || jwk["kid"] != tok.Headers[0].KeyID {
				t.Errorf("JWK %v, want alg %s, kty %s, use sig, kid %s", jwk, tc.alg, wantKty, tok.Headers[0].KeyID)
			}
			var keys jose.JSONWebKeySet
			getJSON(t, s.URL()+"/application/o/minio/jwks/", &keys)
			pub := keys.Keys[0].Key
			switch k := pub.(type) {
			case *ecdsa.PublicKey:
				if tc.alg != jose.ES256 || k.Curve != elliptic.P256() || jwk["crv"] != "P-256" {
					t.Errorf("EC key on %v (crv %v) for %s", k.Curve.Params().Name, jwk["crv"], tc.alg)
				}
			case *rsa.PublicKey:
				if tc.alg != jose.RS256 {
					t.Errorf("RSA key for %s", tc.alg)
				}
			}
			must(t, tok.Claims(pub, &claims))
			if claims["aud"] != m.provider.GetClientId() {
				t.Errorf("aud %v", claims["aud"])
			}
		})
	}
}

// TestMinIOAcceptsES256 logs in at a real MinIO with an ES256 token: MinIO reads the
// provider's discovery document and JWKS from the simulator and verifies the EC signature.
func TestMinIOAcceptsES256(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	setSigningKey(t, c, m.provider.Pk, keypairPK(t, c, aksim.ECKeypairName))
	_, _ = s.AddGroup("Minio admins")
	_, _ = s.AddUser("alice", "alice@example.com")
	must(t, s.AddUserToGroup("alice", "Minio admins"))

	ctx := context.Background()
	mc := miniotest.Start(t, miniotest.WithEnv(
		"MINIO_IDENTITY_OPENID_CONFIG_URL="+s.URL()+"/application/o/minio/.well-known/openid-configuration",
		"MINIO_IDENTITY_OPENID_CLIENT_ID="+m.provider.GetClientId(),
		"MINIO_IDENTITY_OPENID_CLAIM_NAME=policy"))
	if err := mc.S3(t).MakeBucket(ctx, "data", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.MintIDToken(ctx, "", "minio", "alice")
	must(t, err)
	if parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256}); err != nil || parsed.Headers[0].Algorithm != "ES256" {
		t.Fatalf("minted token is not ES256: %v", err)
	}
	creds, err := miniotest.AssumeRoleWithWebIdentity(ctx, mc.Endpoint, tok, 0)
	if err != nil {
		t.Fatalf("MinIO refused the ES256 token: %v", err)
	}
	access, err := miniotest.Probe(ctx, mc.Endpoint, creds, "data")
	must(t, err)
	if !access.CanRead || !access.CanWrite {
		t.Errorf("alice (consoleAdmin) through an ES256 token: %+v, want read and write", access)
	}
}
