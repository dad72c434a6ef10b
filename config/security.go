package config

import (
	"net"
	"net/url"
	"strings"
)

// SecurityWarnings are the settings that work but expose akminio's credentials or its
// view of the two systems to the network: plain http:// to a host that is not loopback,
// and certificate verification turned off. Load returns them with its other warnings
// (check-config prints them, run logs them) and the daemon shows them in /status, for the
// config in force.
func (c *Config) SecurityWarnings() []Warning {
	var out []Warning
	if host, ok := plainRemote(c.Authentik.URL); ok {
		out = append(out, Warning{Key: "authentik.url", Message: "plain http:// to " + host +
			", which is not loopback: the API token and the OAuth2 client secret cross the network unencrypted; use https://"})
	}
	if c.Authentik.InsecureSkipVerify {
		out = append(out, Warning{Key: "authentik.insecure_skip_verify", Message: "true: authentik's certificate is not checked, " +
			"so anyone on the network path can pose as authentik and receive the API token; give ca_file instead"})
	}
	if host, ok := plainRemote(c.MinIO.Endpoint); ok {
		out = append(out, Warning{Key: "minio.endpoint", Message: "plain http:// to " + host +
			", which is not loopback: policies and MinIO's answers cross the network unencrypted and unauthenticated; use https://"})
	}
	if c.MinIO.InsecureSkipVerify {
		out = append(out, Warning{Key: "minio.insecure_skip_verify", Message: "true: MinIO's certificate is not checked, " +
			"so anyone on the network path can pose as MinIO; give ca_file instead"})
	}
	return out
}

// plainRemote reports an http:// URL whose host is not loopback (localhost, 127.0.0.0/8,
// ::1), with that host.
func plainRemote(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		return "", false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return "", false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "", false
	}
	return host, true
}
