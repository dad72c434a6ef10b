package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/akminio/akminio/config"
)

// healthcheckTimeout bounds the whole check; a container HEALTHCHECK has its own timeout too.
const healthcheckTimeout = 5 * time.Second

// healthcheckCommand is the `healthcheck` command.
func healthcheckCommand() command {
	return command{
		name:    "healthcheck",
		usage:   "[--url URL]",
		summary: "GET the daemon's /healthz; for a container HEALTHCHECK (0 healthy, 1 not)",
		setup: func(fs *flag.FlagSet) runFunc {
			url := fs.String("url", "", "the /healthz URL (default: from http.listen in the config, else http://"+defaultListen+"/healthz)")
			return func(ctx context.Context, s *session) int {
				target := *url
				if target == "" {
					target = s.healthzURL()
				}
				if err := checkHealth(ctx, target); err != nil {
					s.errorf("unhealthy: %v\n", err)
					return exitFailure
				}
				s.printf("healthy: %s\n", target)
				return exitOK
			}
		},
	}
}

// defaultListen is http.listen's default.
const defaultListen = "127.0.0.1:9470"

// healthzURL derives the /healthz URL from http.listen; a wildcard host means loopback. A
// config that cannot be loaded falls back to the default address: the check must work on a
// host whose config is being fixed.
func (s *session) healthzURL() string {
	listen := defaultListen
	if cfg, _, err := config.Load(s.configPath, s.environ); err == nil && cfg.HTTP.Listen != "" {
		listen = cfg.HTTP.Listen
	} else if err != nil {
		s.errorf("note: config not loaded (%s); checking %s\n", oneLineErr(err), defaultListen)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + defaultListen + "/healthz"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

// checkHealth GETs url and wants a 200.
func checkHealth(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// oneLineErr keeps the first line of an error (config errors list one problem per line).
func oneLineErr(err error) string {
	msg := err.Error()
	for i, r := range msg {
		if r == '\n' {
			return msg[:i] + " ..."
		}
	}
	return msg
}
