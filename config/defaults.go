package config

// defaults returns the default value of every key that has one, as a koanf map loaded
// before the file, so that a key the file sets (even to "" or []) wins. The values are the
// ones example-config.yaml documents; its site-specific values (authentik.url,
// application.launch_url, provider.redirect_uris, minio.endpoint, the secret files) are
// not defaults. Keys with no default (authentik.url, provider.redirect_uris,
// minio.endpoint) are required.
func defaults() map[string]any {
	return map[string]any{
		"authentik": map[string]any{
			"ca_file":              "",
			"insecure_skip_verify": false,
			"timeout":              "10s",
			"create_groups":        false,
			"restrict_access":      false,
			"application": map[string]any{
				"slug":       "minio",
				"name":       "MinIO",
				"launch_url": "",
			},
			"provider": map[string]any{
				"name":               "MinIO",
				"client_id":          "",
				"signing_key":        "authentik Self-signed Certificate",
				"authorization_flow": "default-provider-authorization-implicit-consent",
				"invalidation_flow":  "default-provider-invalidation-flow",
				"scopes":             []any{"openid", "email", "profile"},
			},
			"scope_mapping": map[string]any{
				"name":  "OIDC-Scope-minio",
				"scope": "minio",
				"claim": "policy",
			},
		},
		"minio": map[string]any{
			"ca_file":              "",
			"insecure_skip_verify": false,
			"timeout":              "10s",
			"openid": map[string]any{
				"config_name":  "",
				"display_name": "authentik",
				"claim_name":   "policy",
				"scopes":       []any{"openid", "profile", "email", "minio"},
				"redirect_uri": "",
			},
			"restart": RestartAuto,
		},
		"match": MatchFirst,
		"prune": false,
		"verify": map[string]any{
			"users": []any{},
		},
		"schedule": map[string]any{
			"reconcile":     "@every 5m",
			"rotate_secret": "0 3 1 * *",
			"jitter":        "30s",
		},
		"mode":      ModeRepair,
		"state_dir": "/var/lib/akminio",
		"http": map[string]any{
			"listen":   "127.0.0.1:9470",
			"debounce": "2s",
		},
		"alerts": map[string]any{
			"webhook_url":      "",
			"alertmanager_url": "",
		},
		"events": map[string]any{
			"public_url": "",
			"install":    false,
		},
		"log": map[string]any{
			"level":  "info",
			"format": "json",
		},
		"ha": map[string]any{
			"enabled":        false,
			"bucket":         "akminio",
			"key":            "leader.json",
			"identity":       "",
			"lease_duration": "30s",
			"renew_interval": "10s",
		},
	}
}
