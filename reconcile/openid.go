package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// WantedOpenIDKeys returns the identity_openid values akminio wants, given the provider as
// observed in (or just written to) authentik; p may be nil when the provider does not exist
// yet, leaving client_secret (and client_id, unless configured) empty.
func WantedOpenIDKeys(d *Desired, p *ObservedProvider) OpenIDKeys {
	v := OpenIDKeys{
		Enable:      "on",
		ConfigURL:   d.OpenID.ConfigURL,
		ClaimName:   d.OpenID.ClaimName,
		Scopes:      strings.Join(d.OpenID.Scopes, ","),
		DisplayName: d.OpenID.DisplayName,
		RedirectURI: d.OpenID.RedirectURI,
	}
	if p != nil {
		v.ClientID = p.ClientID
		v.ClientSecret = p.ClientSecret
	}
	if d.Provider.ClientID != "" {
		// A configured client_id wins: the provider is updated to it first, in the same run.
		v.ClientID = d.Provider.ClientID
	}
	return v
}

// Fingerprint is a SHA-256 over the values' key=value pairs. It identifies a write (for the
// "written, restart pending" record) without storing any value, the secret included.
func (v OpenIDKeys) Fingerprint() string {
	h := sha256.New()
	for _, kv := range [][2]string{
		{"enable", v.Enable}, {"config_url", v.ConfigURL}, {"client_id", v.ClientID},
		{"client_secret", v.ClientSecret.Reveal()}, {"claim_name", v.ClaimName},
		{"scopes", v.Scopes}, {"display_name", v.DisplayName}, {"redirect_uri", v.RedirectURI},
	} {
		h.Write([]byte(kv[0]))
		h.Write([]byte{0})
		h.Write([]byte(kv[1]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NotConfigured stands for the fingerprint of an identity_openid target that MinIO does not
// have (no config_url).
const NotConfigured = "not configured"

// fingerprintOf is the fingerprint of what MinIO reads back, NotConfigured for nil.
func fingerprintOf(o *ObservedOpenIDTarget) string {
	if o == nil {
		return NotConfigured
	}
	return o.Fingerprint()
}
