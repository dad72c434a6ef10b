package config

import (
	"strings"

	"github.com/knadh/koanf/providers/env/v2"
)

// Environment variables read besides the key overrides.
const (
	// EnvConfig names the config file when --config is not given.
	EnvConfig = "AKMINIO_CONFIG"
	// EnvPrefix starts every override: AKMINIO_MINIO__ENDPOINT sets minio.endpoint.
	EnvPrefix = "AKMINIO_"
	// EnvCredentialsDirectory is where systemd puts the unit's credentials.
	EnvCredentialsDirectory = "CREDENTIALS_DIRECTORY"
)

// ResolvePath picks the config file: the --config flag if given, else $AKMINIO_CONFIG,
// else DefaultPath.
func ResolvePath(flagValue string, environ []string) string {
	if flagValue != "" {
		return flagValue
	}
	if v, ok := lookupEnv(environ, EnvConfig); ok && v != "" {
		return v
	}
	return DefaultPath
}

// lookupEnv finds name in an os.Environ-style list; the last occurrence wins, as in exec.
func lookupEnv(environ []string, name string) (string, bool) {
	val, found := "", false
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val, found = v, true
		}
	}
	return val, found
}

// envKey maps a variable name to a key path: AKMINIO_AUTHENTIK__PROVIDER__CLIENT_ID is
// authentik.provider.client_id. Levels are separated by "__" and names are lower-cased, so
// single underscores inside a key name (state_dir, client_id) survive.
func envKey(name string) string {
	rest := strings.TrimPrefix(name, EnvPrefix)
	return strings.ToLower(strings.ReplaceAll(rest, "__", "."))
}

// envProvider reads the AKMINIO_* overrides from environ. Secret keys are left to
// resolveSecrets (they have their own order of sources); AKMINIO_CONFIG is not a key.
// A variable inside a section of the config (AKMINIO_MINIO__ENDPONT) that names no key is
// an unknown key, reported on p like one in the file. Any other variable naming no key is
// ignored with a warning, because the prefix is shared with tooling (AKMINIO_MINIO_BIN in
// the test suite, for one).
func envProvider(environ []string, warn func(Warning), p *problems) *env.Env {
	return env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if name == EnvConfig {
				return "", nil
			}
			key := envKey(name)
			if isSecretKey(key) {
				return "", nil
			}
			path := strings.Split(key, ".")
			switch {
			case key != "" && isKnownKey(path):
				return key, value
			case len(path) > 1 && isKnownKey(path[:1]):
				p.add(key, "unknown key (set by %s)", name)
			default:
				warn(Warning{Key: name, Message: "names no config key (" + key + "); ignored"})
			}
			return "", nil
		},
	})
}
