package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// Load reads the config at path and returns it validated, with warnings worth showing the
// operator. environ is the process environment (os.Environ()), passed in so that tests
// and reloads see exactly what they mean to.
//
// The steps, in order: defaults; the YAML file; AKMINIO_* overrides from environ; strict
// decoding (unknown keys and wrong types are problems); relative paths made absolute
// against the file's folder; secrets resolved (<key>_file, environment,
// $CREDENTIALS_DIRECTORY, inline); policy documents loaded; then every rule checked; a
// valid config's SecurityWarnings are added to the warnings.
// Every problem found is returned at once in an *Error. A secret that has no value is not
// a problem here: commands that need the secrets call RequireSecrets.
func Load(path string, environ []string) (*Config, []Warning, error) {
	return load(path, environ, func(c *Config, p *problems) {
		loadPolicies(c, p)
		validate(c, p)
	})
}

// LoadConnection loads a config for `akminio import`, which needs only the connection keys:
// authentik.url and its credentials, authentik.application.slug, minio.endpoint and its
// credentials (and optionally ca files, timeouts, minio.openid.config_name). Everything
// else may be missing; what is present is decoded as strictly as by Load (unknown keys are
// problems), but only the connection keys are validated.
func LoadConnection(path string, environ []string) (*Config, []Warning, error) {
	return load(path, environ, validateConnection)
}

func load(path string, environ []string, check func(*Config, *problems)) (*Config, []Warning, error) {
	var warnings []Warning
	warn := func(w Warning) { warnings = append(warnings, w) }
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, &Error{Problems: []string{path + ": " + err.Error()}}
	}
	data, err := os.ReadFile(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, &Error{Problems: []string{path + ": config file does not exist"}}
	case err != nil:
		return nil, nil, &Error{Problems: []string{path + ": cannot read config file: " + unwrapPath(err).Error()}}
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults(), ""), nil); err != nil {
		return nil, nil, &Error{Problems: []string{"defaults: " + err.Error()}}
	}
	fileMap, err := yaml.Parser().Unmarshal(data)
	if err != nil {
		var doc any
		if yamlv3.Unmarshal(data, &doc) == nil {
			return nil, nil, &Error{Problems: []string{path + ": the top level must be a mapping (key: value), not " + describe(doc)}}
		}
		return nil, nil, &Error{Problems: []string{path + ": not valid YAML: " + oneLine(err.Error())}}
	}
	if v, ok := fileMap[UneditedKey]; ok {
		if v == true {
			return nil, nil, &Error{Problems: []string{FirstRunMessage(path)}}
		}
		delete(fileMap, UneditedKey) // "unedited: false" is an edited file
	}
	if err := k.Load(confmap.Provider(fileMap, ""), nil); err != nil {
		return nil, nil, &Error{Problems: []string{path + ": " + err.Error()}}
	}
	var p problems
	if err := k.Load(envProvider(environ, warn, &p), nil); err != nil {
		return nil, warnings, &Error{Problems: []string{"environment: " + err.Error()}}
	}

	cfg := decode(k, &p)
	cfg.Path = abs
	resolvePaths(cfg, filepath.Dir(abs))
	resolveSecrets(cfg, environ, &p, warn)
	check(cfg, &p)
	if err := p.err(); err != nil {
		return nil, warnings, err
	}
	return cfg, append(warnings, cfg.SecurityWarnings()...), nil
}

// UneditedKey is the top-level key the Debian package's /etc/akminio/config.yaml carries
// ("unedited: true") so that the example it installs stays inert until an operator edits it.
const UneditedKey = "unedited"

// FirstRunMessage is the one problem Load reports for a file that still says
// "unedited: true": the package's example, not yet describing any host. README.md
// documents it word for word.
func FirstRunMessage(path string) string {
	return path + ": not configured yet: this is the example installed by the package. " +
		"Describe your authentik and MinIO in it, put the secrets in /etc/akminio/credentials " +
		"(see /usr/share/doc/akminio/README.md), then delete the line \"unedited: true\""
}

// decode unmarshals the merged koanf tree into a Config. Unknown keys and values of the
// wrong type become problems.
func decode(k *koanf.Koanf, p *problems) *Config {
	cfg := &Config{}
	md := &mapstructure.Metadata{}
	dc := &mapstructure.DecoderConfig{
		DecodeHook: strictHook,
		Metadata:   md,
		TagName:    "koanf",
	}
	err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{DecoderConfig: dc})
	addDecodeErrors(p, err)
	for _, key := range md.Unused {
		p.add(keyPath(key), "unknown key")
	}
	return cfg
}

// resolvePaths makes every relative file path absolute against dir (the config file's
// folder), remembering what was written for messages.
func resolvePaths(c *Config, dir string) {
	c.rawPaths = map[string]string{}
	abs := func(key string, p *string) {
		if *p == "" || filepath.IsAbs(*p) {
			return
		}
		c.rawPaths[key] = *p
		*p = filepath.Join(dir, *p)
	}
	abs("authentik.token_file", &c.Authentik.TokenFile)
	abs("authentik.ca_file", &c.Authentik.CAFile)
	abs("minio.access_key_file", &c.MinIO.AccessKeyFile)
	abs("minio.secret_key_file", &c.MinIO.SecretKeyFile)
	abs("minio.ca_file", &c.MinIO.CAFile)
	abs("http.hook_token_file", &c.HTTP.HookTokenFile)
	abs("state_dir", &c.StateDir)
	for name, pol := range c.Policies {
		abs("policies."+name+".file", &pol.File)
		c.Policies[name] = pol
	}
}

// shownPath is a path as the config file wrote it, for messages.
func (c *Config) shownPath(key, resolved string) string {
	if v, ok := c.rawPaths[key]; ok {
		return v
	}
	return resolved
}

// oneLine folds a multi-line message (yaml.v3 lists its errors on separate lines) into one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, ":\n", ":")), " ")
}
