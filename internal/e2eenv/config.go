package e2eenv

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Secret file names under Dir/secrets.
const (
	TokenFile     = "authentik-token"
	AccessKeyFile = "minio-access-key"
	SecretKeyFile = "minio-secret-key"
	HookTokenFile = "hook-token"
)

// SecretPath is the path of a secret file under Dir/secrets.
func (e *Env) SecretPath(name string) string { return filepath.Join(e.Dir, "secrets", name) }

// DefaultConfig is the akminio config for this environment as a YAML-able map: change it
// and pass it to WriteConfig. Each call returns a fresh map.
func (e *Env) DefaultConfig() map[string]any {
	return map[string]any{
		"authentik": map[string]any{
			"url":        e.AK.URL(),
			"token_file": e.SecretPath(TokenFile),
			"timeout":    "10s",
			"application": map[string]any{
				"slug": AppSlug, "name": "MinIO", "launch_url": e.MinIO.Endpoint,
			},
			"provider": map[string]any{
				"name":               ProviderName,
				"redirect_uris":      []any{RedirectURI},
				"signing_key":        SigningKeyName,
				"authorization_flow": "default-provider-authorization-implicit-consent",
				"invalidation_flow":  "default-provider-invalidation-flow",
				"scopes":             []any{"openid", "email", "profile"},
			},
			"scope_mapping": map[string]any{"name": MappingName, "scope": MappingScope, "claim": Claim},
		},
		"minio": map[string]any{
			"endpoint":        e.MinIO.Endpoint,
			"access_key_file": e.SecretPath(AccessKeyFile),
			"secret_key_file": e.SecretPath(SecretKeyFile),
			"timeout":         "10s",
			"openid": map[string]any{
				"display_name": "authentik",
				"claim_name":   Claim,
				"scopes":       []any{"openid", "profile", "email", MappingScope},
			},
			"restart": "auto",
		},
		"policies": map[string]any{
			CustomPolicy: map[string]any{"document": map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect":   "Allow",
					"Action":   []any{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"},
					"Resource": []any{"arn:aws:s3:::" + CustomBucket, "arn:aws:s3:::" + CustomBucket + "/*"},
				}},
			}},
		},
		"bindings": []any{
			map[string]any{"group": GroupAdmins, "policies": []any{"consoleAdmin"}},
			map[string]any{"group": GroupUsers, "policies": []any{"readonly"}},
		},
		"match":     "first",
		"verify":    map[string]any{"users": []any{"alice", "bob"}},
		"schedule":  map[string]any{"reconcile": "@every 1h", "rotate_secret": ""},
		"state_dir": e.StateDir,
		"http":      map[string]any{"listen": e.listen},
		"log":       map[string]any{"level": "info"},
	}
}

// inlineSecrets are the config's inline secret keys that WriteConfig moves to files:
// section, key, and the file it goes to.
var inlineSecrets = []struct{ section, key, file string }{
	{"authentik", "token", TokenFile},
	{"minio", "access_key", AccessKeyFile},
	{"minio", "secret_key", SecretKeyFile},
	{"http", "hook_token", HookTokenFile},
}

// WriteConfig writes cfg as YAML to ConfigPath (mode 0600), and makes sure the secret
// files exist: the simulator's API token and MinIO's root credentials go to Dir/secrets
// (mode 0600); an inline secret in cfg (authentik.token, minio.access_key,
// minio.secret_key, http.hook_token) is moved to its file there and replaced by the
// matching *_file key, so the config file itself never holds a secret. cfg is not
// modified.
func (e *Env) WriteConfig(cfg map[string]any) error {
	files := map[string]string{
		TokenFile:     e.AK.Token(),
		AccessKeyFile: e.MinIO.AccessKey,
		SecretKeyFile: e.MinIO.SecretKey,
	}
	out := copyTop(cfg)
	for _, s := range inlineSecrets {
		sec, ok := out[s.section].(map[string]any)
		if !ok {
			continue
		}
		v, ok := sec[s.key]
		if !ok {
			continue
		}
		sec = copyTop(sec)
		delete(sec, s.key)
		sec[s.key+"_file"] = e.SecretPath(s.file)
		out[s.section] = sec
		files[s.file] = fmt.Sprint(v)
	}
	for name, val := range files {
		if err := os.WriteFile(e.SecretPath(name), []byte(val+"\n"), 0o600); err != nil {
			return fmt.Errorf("e2eenv: write secret file %s: %w", name, err)
		}
	}
	raw, err := yaml.Marshal(out)
	if err != nil {
		return fmt.Errorf("e2eenv: encode config: %w", err)
	}
	if err := os.WriteFile(e.ConfigPath, raw, 0o600); err != nil {
		return fmt.Errorf("e2eenv: write config: %w", err)
	}
	return nil
}

// copyTop copies the top level of a map.
func copyTop(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
