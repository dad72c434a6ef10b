package aksim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

const (
	// adminPK is akadmin's pk; the API token belongs to akadmin.
	adminPK = 1
	// SelfSignedName is the keypair every authentik install starts with.
	SelfSignedName = "authentik Self-signed Certificate"
	// ECKeypairName is an ECDSA P-256 keypair the simulator adds to a fresh
	// install (authentik does not generate one, but an operator may import or
	// generate one, and the simulator's API cannot create keypairs): a
	// provider signing with it issues ES256 tokens.
	ECKeypairName = "aksim ECDSA P-256 Certificate"
	// AdminsGroup is the superuser group of a fresh install.
	AdminsGroup = "authentik Admins"
)

// Managed scope mappings, from authentik's blueprints/system/providers-oauth2.yaml.
var builtinMappings = []struct{ managed, name, scope, description, expression string }{
	{"goauthentik.io/providers/oauth2/scope-openid", "authentik default OAuth Mapping: OpenID 'openid'", "openid", "",
		"# This scope is required by the OpenID-spec, and must as such exist in authentik.\n" +
			"# The scope by itself does not grant any information\nreturn {}\n"},
	{"goauthentik.io/providers/oauth2/scope-email", "authentik default OAuth Mapping: OpenID 'email'", "email", "Email address",
		"return {\n    \"email\": request.user.email,\n    \"email_verified\": False\n}\n"},
	{"goauthentik.io/providers/oauth2/scope-profile", "authentik default OAuth Mapping: OpenID 'profile'", "profile", "General Profile Information",
		"return {\n" +
			"    # Because authentik only saves the user's full name, and has no concept of first and last names,\n" +
			"    # the full name is used as given name.\n" +
			"    # You can override this behaviour in custom mappings, i.e. `request.user.name.split(\" \")`\n" +
			"    \"name\": request.user.name,\n    \"given_name\": request.user.name,\n" +
			"    \"preferred_username\": request.user.username,\n    \"nickname\": request.user.username,\n" +
			"    \"groups\": [group.name for group in request.user.ak_groups.all()],\n}\n"},
	{"goauthentik.io/providers/oauth2/scope-offline_access", "authentik default OAuth Mapping: OpenID 'offline_access'", "offline_access",
		"Access to request new tokens without interaction",
		"# This scope grants the application a refresh token that can be used to refresh user data\n" +
			"# and let the application access authentik without the users interaction\nreturn {}\n"},
}

// Default flows of a fresh install (blueprints/default/*).
var builtinFlows = []struct{ slug, name, title, designation, authentication string }{
	{"default-authentication-flow", "Welcome to authentik!", "Welcome to authentik!", "authentication", "none"},
	{"default-provider-authorization-explicit-consent", "Authorize Application", "Redirecting to %(app)s", "authorization", "require_authenticated"},
	{"default-provider-authorization-implicit-consent", "Authorize Application", "Redirecting to %(app)s", "authorization", "require_authenticated"},
	{"default-provider-invalidation-flow", "Logged out of application", "You've logged out of %(app)s.", "invalidation", "none"},
}

// keyMaterial is a keypair's private key and certificate.
type keyMaterial struct {
	key     crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey (P-256)
	cert    *x509.Certificate
	certPEM string
	keyPEM  string
	kid     string
	keyType string // the API's key_type: "rsa" or "ec"
}

// alg is the JWT algorithm tokens signed with the key use, as authentik's
// JWTAlgorithms.from_private_key picks it (providers/oauth2/models.py): RS256
// for an RSA key, ES256 for a P-256 key.
func (k *keyMaterial) alg() jose.SignatureAlgorithm {
	if k.keyType == "ec" {
		return jose.ES256
	}
	return jose.RS256
}

var (
	keysOnce sync.Once
	rsaKey   *keyMaterial
	ecKey    *keyMaterial
	keysErr  error
)

// seedKeys generates the RSA 2048 and ECDSA P-256 keys and certificates once
// per process; every simulator in the process shares them.
func seedKeys() (rsaKM, ecKM *keyMaterial, err error) {
	keysOnce.Do(func() {
		rsaKey, keysErr = newKeyMaterial(SelfSignedName, "rsa")
		if keysErr == nil {
			ecKey, keysErr = newKeyMaterial(ECKeypairName, "ec")
		}
	})
	return rsaKey, ecKey, keysErr
}

func newKeyMaterial(cn, keyType string) (*keyMaterial, error) {
	var key crypto.Signer
	var err error
	usage := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if keyType == "ec" {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		usage = x509.KeyUsageDigitalSignature
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", keyType, err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"authentik"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(key)}))
	sum := md5.Sum([]byte(keyPEM)) //nolint:gosec // authentik derives its kid from an md5 of the key data
	return &keyMaterial{
		key: key, cert: cert, keyPEM: keyPEM, kid: hex.EncodeToString(sum[:]), keyType: keyType,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}, nil
}

func mustPKCS8(key crypto.Signer) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // cannot fail for an RSA or P-256 key
	}
	return b
}

// fingerprint renders a digest as authentik does: lowercase hex, colon separated.
func fingerprint(sum []byte) string {
	h := hex.EncodeToString(sum)
	parts := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// seed fills a fresh store as a new authentik install.
func (s *Server) seed() error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	admins := st.newGroup(map[string]any{"name": AdminsGroup, "is_superuser": true})
	st.newUser(map[string]any{"username": "akadmin", "name": "authentik Default Admin",
		"email": "root@localhost", "groups": []any{admins.id}})
	for _, m := range builtinMappings {
		st.add(st.mappings, uuid.NewString(), 0, map[string]any{"managed": m.managed, "name": m.name,
			"scope_name": m.scope, "description": m.description, "expression": m.expression})
	}
	for _, fl := range builtinFlows {
		st.add(st.flows, uuid.NewString(), 0, map[string]any{"slug": fl.slug, "name": fl.name, "title": fl.title,
			"designation": fl.designation, "authentication": fl.authentication, "background": "",
			"policy_engine_mode": "any", "compatibility_mode": false, "layout": "stacked", "denied_action": "message_continue"})
	}
	rsaKM, ecKM, err := seedKeys()
	if err != nil {
		return err
	}
	kp := st.add(st.keypairs, uuid.NewString(), 0, map[string]any{"name": SelfSignedName})
	st.keys[kp.id] = rsaKM
	kp = st.add(st.keypairs, uuid.NewString(), 0, map[string]any{"name": ECKeypairName})
	st.keys[kp.id] = ecKM
	return nil
}

// renderKeypair is the CertificateKeyPair schema.
func (st *store) renderKeypair(kp *record) map[string]any {
	km := st.keys[kp.id]
	s256 := sha256.Sum256(km.cert.Raw)
	s1 := sha1.Sum(km.cert.Raw) //nolint:gosec // a fingerprint, as authentik shows it
	base := apiPrefix + "/crypto/certificatekeypairs/" + kp.id
	return map[string]any{
		"pk": kp.id, "name": kp.f["name"], "fingerprint_sha256": fingerprint(s256[:]), "fingerprint_sha1": fingerprint(s1[:]),
		"cert_expiry": ts(km.cert.NotAfter), "cert_subject": km.cert.Subject.String(), "private_key_available": true,
		"key_type": km.keyType, "certificate_download_url": base + "/view_certificate/?download",
		"private_key_download_url": base + "/view_private_key/?download", "managed": nil,
	}
}

// renderFlow is the Flow schema.
func renderFlow(fl *record) map[string]any {
	out := copyMap(fl.f)
	out["pk"] = fl.id
	out["policybindingmodel_ptr_id"] = fl.id
	out["background_url"] = "/static/dist/assets/images/flow_background.jpg"
	out["background_themed_urls"] = nil
	out["stages"] = []any{}
	out["policies"] = []any{}
	out["cache_count"] = 0
	out["export_url"] = apiPrefix + "/flows/instances/" + str(fl.f["slug"]) + "/export/"
	return out
}
