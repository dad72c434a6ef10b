package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// APIURL is authentik's API base: the configured URL (without a trailing slash) + "/api/v3".
func (a Authentik) APIURL() string { return strings.TrimRight(a.URL, "/") + "/api/v3" }

// OpenIDConfigURL is the application's discovery document, which MinIO's config_url points at.
func (a Authentik) OpenIDConfigURL() string {
	return strings.TrimRight(a.URL, "/") + "/application/o/" + a.Application.Slug + "/.well-known/openid-configuration"
}

// RedactURL is what logs and errors show of a URL that may carry credentials (an alert
// receiver's): its scheme and host only, never userinfo, path or query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// TLSConfig is the client TLS configuration for authentik: system roots plus ca_file.
func (a Authentik) TLSConfig() (*tls.Config, error) { return tlsConfig(a.CAFile, a.InsecureSkipVerify) }

// HostPort is the endpoint's host:port, as madmin-go and minio-go want it.
func (m MinIO) HostPort() string {
	u, err := url.Parse(m.Endpoint)
	if err != nil {
		return m.Endpoint
	}
	return u.Host
}

// Secure reports whether the endpoint is https.
func (m MinIO) Secure() bool { return strings.HasPrefix(strings.ToLower(m.Endpoint), "https://") }

// TLSConfig is the client TLS configuration for MinIO: system roots plus ca_file.
func (m MinIO) TLSConfig() (*tls.Config, error) { return tlsConfig(m.CAFile, m.InsecureSkipVerify) }

// ConfigTarget is the MinIO config sub-system target: "identity_openid" or
// "identity_openid:NAME".
func (o OpenID) ConfigTarget() string {
	if o.ConfigName == "" {
		return "identity_openid"
	}
	return "identity_openid:" + o.ConfigName
}

func tlsConfig(caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // operator's explicit choice
	if caFile == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
