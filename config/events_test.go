package config

import (
	"errors"
	"strings"
	"testing"
)

func TestEventsOffByDefault(t *testing.T) {
	cfg, _ := mustLoad(t, writeConfig(t, minimal), nil)
	if cfg.Events.Install || cfg.Events.PublicURL != "" {
		t.Fatalf("events = %+v, want off", cfg.Events)
	}
}

func TestEventsInstallNeedsPublicURLAndHookToken(t *testing.T) {
	_, _, err := Load(writeConfig(t, minimal+"events: {install: true}\n"), nil)
	var cerr *Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "events.public_url: is required") {
		t.Fatalf("install without public_url: %v", err)
	}

	body := minimal + "events: {install: true, public_url: \"http://akminio.example:9470\"}\n"
	body = strings.Replace(body, "authentik:\n", "authentik:\n  token: t\n", 1)
	body = strings.Replace(body, "minio:\n  endpoint: http://127.0.0.1:9000\n", "minio: {endpoint: http://127.0.0.1:9000, access_key: a, secret_key: s}\n", 1)
	cfg, _ := mustLoad(t, writeConfig(t, body), nil)
	if err := cfg.RequireSecrets(); err == nil || !strings.Contains(err.Error(), "http.hook_token: not set, and events.install needs it") {
		t.Fatalf("RequireSecrets without a hook token: %v", err)
	}
	cfg, _ = mustLoad(t, writeConfig(t, body+"http: {hook_token: a-hook-token-of-at-least-32-characters}\n"), nil)
	if err := cfg.RequireSecrets(); err != nil {
		t.Fatalf("RequireSecrets with a hook token: %v", err)
	}
	if cfg.Events.PublicURL != "http://akminio.example:9470" {
		t.Fatalf("public_url = %q", cfg.Events.PublicURL)
	}
}
