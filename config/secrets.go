package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxSecretFile bounds how much of a secret file is read; a credential is never this long.
const maxSecretFile = 64 << 10

// secretSpec describes one secret key and where its value may come from.
type secretSpec struct {
	key      string // key path of the inline value, e.g. "authentik.token"
	credName string // file name under $CREDENTIALS_DIRECTORY
	required bool   // needed by every command that talks to the backends
	value    func(*Config) *Secret
	file     func(*Config) string
}

// secretSpecs lists the secrets in the spec's order of keys.
var secretSpecs = []secretSpec{
	{"authentik.token", "authentik-token", true,
		func(c *Config) *Secret { return &c.Authentik.Token }, func(c *Config) string { return c.Authentik.TokenFile }},
	{"minio.access_key", "minio-access-key", true,
		func(c *Config) *Secret { return &c.MinIO.AccessKey }, func(c *Config) string { return c.MinIO.AccessKeyFile }},
	{"minio.secret_key", "minio-secret-key", true,
		func(c *Config) *Secret { return &c.MinIO.SecretKey }, func(c *Config) string { return c.MinIO.SecretKeyFile }},
	{"http.hook_token", "hook-token", false,
		func(c *Config) *Secret { return &c.HTTP.HookToken }, func(c *Config) string { return c.HTTP.HookTokenFile }},
}

// isSecretKey reports whether key is one of the secret keys (whose environment variable is a
// secret source rather than a plain override).
func isSecretKey(key string) bool {
	for _, s := range secretSpecs {
		if s.key == key {
			return true
		}
	}
	return false
}

// envName is the environment variable of a key: authentik.token -> AKMINIO_AUTHENTIK__TOKEN.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// secretState records, per secret key, where its value came from and what was tried, so
// that RequireSecrets can fail with a precise message.
type secretState struct {
	source      string // "file", "environment", "credentials", "inline" or "" (none)
	missingFile string // a configured <key>_file that does not exist
}

// resolveSecrets fills every secret from the first source that has it: <key>_file, then
// the environment, then $CREDENTIALS_DIRECTORY, then the inline value. A configured file
// that does not exist is a warning here (it may exist only under systemd); a file that
// exists but cannot be read, or is empty, is a problem.
func resolveSecrets(c *Config, environ []string, p *problems, warn func(Warning)) {
	c.secrets = map[string]secretState{}
	credDir, _ := lookupEnv(environ, EnvCredentialsDirectory)
	for _, s := range secretSpecs {
		st := secretState{}
		val, src := "", ""
		fileKey := s.key + "_file"
		if f := s.file(c); f != "" {
			shown := c.shownPath(fileKey, f)
			switch v, res := readSecretFile(f, shown, fileKey, p, warn); res {
			case fileRead:
				val, src = v, "file"
			case fileMissing:
				st.missingFile = shown
			}
		}
		if src == "" {
			if v, ok := lookupEnv(environ, envName(s.key)); ok && v != "" {
				val, src = v, "environment"
			}
		}
		if src == "" && credDir != "" {
			f := filepath.Join(credDir, s.credName)
			if _, err := os.Stat(f); err == nil {
				if v, res := readSecretFile(f, f, "$"+EnvCredentialsDirectory+"/"+s.credName, p, warn); res == fileRead {
					val, src = v, "credentials"
				}
			}
		}
		if src == "" && s.value(c).IsSet() {
			val, src = s.value(c).Reveal(), "inline"
		}
		if !utf8.ValidString(val) {
			// The scrubber finds a secret by its text in every encoding of a log line; bytes
			// that are not text have no such encoding (zap writes U+FFFD for them).
			p.add(s.key, "is not valid UTF-8 text (read from %s)", src)
			val = ""
		}
		*s.value(c) = Secret(val)
		st.source = src
		c.secrets[s.key] = st
	}
}

// fileResult is the outcome of reading a secret file.
type fileResult int

const (
	fileRead    fileResult = iota // the value was read
	fileMissing                   // the file does not exist (a warning was given)
	fileFailed                    // the file exists but is unusable (a problem was recorded)
)

// readSecretFile reads one secret file, trimming surrounding whitespace; shown is the path
// as the config wrote it, for messages.
func readSecretFile(path, shown, key string, p *problems, warn func(Warning)) (string, fileResult) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		warn(Warning{Key: key, Message: fmt.Sprintf("%s does not exist", shown)})
		return "", fileMissing
	}
	if err != nil {
		p.add(key, "cannot read %s: %v", shown, unwrapPath(err))
		return "", fileFailed
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			p.add(key, "%s is a directory, not a file", shown)
			return "", fileFailed
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			warn(Warning{Key: key, Message: fmt.Sprintf(
				"%s is readable by group or others (mode %04o); restrict it with chmod 600", shown, mode)})
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile))
	if err != nil {
		p.add(key, "cannot read %s: %v", shown, unwrapPath(err))
		return "", fileFailed
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		p.add(key, "%s is empty", shown)
		return "", fileFailed
	}
	return v, fileRead
}

// unwrapPath drops the *fs.PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// RequireSecrets fails with an *Error when a secret that talking to the backends needs
// (authentik.token, minio.access_key, minio.secret_key) has no value, or when any
// configured secret file does not exist. Commands that reach authentik or MinIO call it
// right after Load; offline check-config does not.
func (c *Config) RequireSecrets() error {
	var p problems
	for _, s := range secretSpecs {
		st := c.secrets[s.key]
		if st.source != "" {
			continue
		}
		switch {
		case st.missingFile != "":
			p.add(s.key+"_file", "%s does not exist, and neither %s nor $%s/%s is set",
				st.missingFile, envName(s.key), EnvCredentialsDirectory, s.credName)
		case s.required:
			p.add(s.key, "not set: give %s_file, %s, $%s/%s or an inline %s",
				s.key, envName(s.key), EnvCredentialsDirectory, s.credName, s.key)
		case s.key == "http.hook_token" && c.Events.Install:
			p.add(s.key, "not set, and events.install needs it (the feeds authenticate with it): give %s_file, %s, $%s/%s or an inline %s",
				s.key, envName(s.key), EnvCredentialsDirectory, s.credName, s.key)
		}
	}
	return p.err()
}

// SecretSource says where a secret key's value came from: "file", "environment",
// "credentials", "inline", or "" when it has none.
func (c *Config) SecretSource(key string) string { return c.secrets[key].source }

// SecretValues returns every secret that has a value, for log scrubbing: the secret keys,
// and the credentials the alert URLs may carry (see urlSecrets).
func (c *Config) SecretValues() []Secret {
	var out []Secret
	for _, s := range secretSpecs {
		if v := *s.value(c); v.IsSet() {
			out = append(out, v)
		}
	}
	out = append(out, urlSecrets(c.Alerts.WebhookURL)...)
	out = append(out, urlSecrets(c.Alerts.AlertmanagerURL)...)
	return out
}

// minURLPart is the shortest part of an alert URL scrubbed on its own: shorter ones are
// not credentials, and scrubbing them would garble unrelated text.
const minURLPart = 6

// urlSecrets treats an alert URL as a secret: receivers put credentials in the userinfo
// (https://user:pass@host), the query (?token=...) or the path (Slack-style
// /services/T0/B0/XXXX). It returns the URL whole, as net/http prints it (password
// masked), and its password, query, query values and path, each when at least
// minURLPart long. Logs name an alert receiver by RedactURL alone.
func urlSecrets(raw string) []Secret {
	if raw == "" {
		return nil
	}
	out := []Secret{Secret(raw)}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	add := func(v string) {
		if len(v) >= minURLPart {
			out = append(out, Secret(v))
		}
	}
	add(u.Redacted())
	if pw, ok := u.User.Password(); ok {
		add(pw)
	}
	add(u.RawQuery)
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	if p := strings.Trim(u.EscapedPath(), "/"); p != "" {
		add("/" + p)
	}
	return out
}
