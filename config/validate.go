package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// KnownProviderScopes are authentik's built-in OAuth2 scope mappings akminio can attach.
var KnownProviderScopes = []string{"openid", "email", "profile", "offline_access"}

// LogLevels and LogFormats are the accepted values of log.level and log.format.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"json", "console"}
)

// cronParser is the parser the scheduler must use too (through ParseSchedule): standard
// 5-field specs plus descriptors such as "@every 5m" and "@daily".
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule.* spec exactly as validation does.
func ParseSchedule(spec string) (cron.Schedule, error) { return cronParser.Parse(spec) }

var (
	slugRE       = regexp.MustCompile(`^[-a-zA-Z0-9_]+$`)
	configNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]*$`)
)

// validate checks every rule that decoding alone does not, recording all problems.
func validate(c *Config, p *problems) {
	validateAuthentik(c, p)
	validateMinIO(c, p)
	validateBindings(c, p)
	checkEnum(p, "match", c.Match, MatchFirst, MatchAll)
	checkEnum(p, "mode", c.Mode, ModeRepair, ModeReport)
	validateVerify(c, p)
	validateSchedule(c, p)
	required(p, "state_dir", c.StateDir)
	validateListen(p, "http.listen", c.HTTP.Listen)
	nonNegative(p, "http.debounce", c.HTTP.Debounce)
	validateHookToken(c, p)
	checkURL(p, "alerts.webhook_url", c.Alerts.WebhookURL, false)
	checkURL(p, "alerts.alertmanager_url", c.Alerts.AlertmanagerURL, false)
	validateEvents(c, p)
	checkEnum(p, "log.level", c.Log.Level, LogLevels...)
	checkEnum(p, "log.format", c.Log.Format, LogFormats...)
	validateHA(c, p)
}

// bucketRE is S3's rule for bucket names, as MinIO applies it.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// MinHookTokenLength is the shortest http.hook_token accepted: the token guards POST
// /reconcile and the hooks from anyone who can reach the listener.
const MinHookTokenLength = 32

// validateHookToken refuses a short hook token, whatever its source (the value is never
// shown). An unset one is fine: the POST endpoints are then refused.
func validateHookToken(c *Config, p *problems) {
	if n := utf8.RuneCountInString(c.HTTP.HookToken.Reveal()); c.HTTP.HookToken.IsSet() && n < MinHookTokenLength {
		p.add("http.hook_token", "is %d characters long, want at least %d; generate one with: openssl rand -hex 32", n, MinHookTokenLength)
	}
}

func validateHA(c *Config, p *problems) {
	h := c.HA
	if !h.Enabled {
		return
	}
	if required(p, "ha.bucket", h.Bucket) && (!bucketRE.MatchString(h.Bucket) || strings.Contains(h.Bucket, "..")) {
		p.add("ha.bucket", "%q is not a bucket name (3 to 63 lowercase letters, digits, . and -)", h.Bucket)
	}
	if required(p, "ha.key", h.Key) && (strings.HasPrefix(h.Key, "/") || strings.HasSuffix(h.Key, "/")) {
		p.add("ha.key", "%q must not start or end with /", h.Key)
	}
	positive(p, "ha.lease_duration", h.LeaseDuration)
	positive(p, "ha.renew_interval", h.RenewInterval)
	if h.LeaseDuration <= 0 || h.RenewInterval <= 0 {
		return
	}
	// Renewed every renew_interval, a leader has at least lease_duration - renew_interval
	// left; a write step starts only with the longest write step left.
	if step := c.WriteStep(); h.LeaseDuration <= h.RenewInterval+step {
		p.add("ha.lease_duration", "%s must exceed ha.renew_interval (%s) plus the longest write step (%s, the larger of authentik.timeout and minio.timeout), or the leader could not finish a write within its lease",
			h.LeaseDuration, h.RenewInterval, step)
	}
}

// validateConnection checks what reaching both systems needs (see LoadConnection).
func validateConnection(c *Config, p *problems) {
	a := c.Authentik
	checkURL(p, "authentik.url", a.URL, true)
	checkCAFile(c, p, "authentik.ca_file", a.CAFile)
	positive(p, "authentik.timeout", a.Timeout)
	if required(p, "authentik.application.slug", a.Application.Slug) && !slugRE.MatchString(a.Application.Slug) {
		p.add("authentik.application.slug", "%q is not a slug (letters, digits, - and _ only)", a.Application.Slug)
	}
	m := c.MinIO
	checkURL(p, "minio.endpoint", m.Endpoint, true)
	checkCAFile(c, p, "minio.ca_file", m.CAFile)
	positive(p, "minio.timeout", m.Timeout)
	if !configNameRE.MatchString(m.OpenID.ConfigName) {
		p.add("minio.openid.config_name", "%q may contain only letters, digits, - and _", m.OpenID.ConfigName)
	}
}

func validateAuthentik(c *Config, p *problems) {
	a := c.Authentik
	checkURL(p, "authentik.url", a.URL, true)
	checkCAFile(c, p, "authentik.ca_file", a.CAFile)
	positive(p, "authentik.timeout", a.Timeout)
	if required(p, "authentik.application.slug", a.Application.Slug) && !slugRE.MatchString(a.Application.Slug) {
		p.add("authentik.application.slug", "%q is not a slug (letters, digits, - and _ only)", a.Application.Slug)
	}
	required(p, "authentik.application.name", a.Application.Name)
	checkURL(p, "authentik.application.launch_url", a.Application.LaunchURL, false)

	pr := a.Provider
	required(p, "authentik.provider.name", pr.Name)
	if len(pr.RedirectURIs) == 0 {
		p.add("authentik.provider.redirect_uris", "needs at least one redirect URI (MinIO's /oauth_callback)")
	}
	for i, u := range pr.RedirectURIs {
		checkURL(p, fmt.Sprintf("authentik.provider.redirect_uris[%d]", i), u, true)
	}
	required(p, "authentik.provider.authorization_flow", pr.AuthorizationFlow)
	required(p, "authentik.provider.invalidation_flow", pr.InvalidationFlow)
	for i, s := range pr.Scopes {
		if !slices.Contains(KnownProviderScopes, s) {
			p.add(fmt.Sprintf("authentik.provider.scopes[%d]", i),
				"%q is not a built-in scope (one of %s); the minio scope comes from scope_mapping",
				s, strings.Join(KnownProviderScopes, ", "))
		}
	}

	sm := a.ScopeMapping
	required(p, "authentik.scope_mapping.name", sm.Name)
	if required(p, "authentik.scope_mapping.scope", sm.Scope) && strings.ContainsFunc(sm.Scope, isSpace) {
		p.add("authentik.scope_mapping.scope", "%q must not contain spaces", sm.Scope)
	}
	if required(p, "authentik.scope_mapping.claim", sm.Claim) && sm.Claim != c.MinIO.OpenID.ClaimName {
		p.add("authentik.scope_mapping.claim", "%q differs from minio.openid.claim_name %q: MinIO would not find the policies",
			sm.Claim, c.MinIO.OpenID.ClaimName)
	}
}

func validateMinIO(c *Config, p *problems) {
	m := c.MinIO
	if checkURL(p, "minio.endpoint", m.Endpoint, true) {
		if u, _ := url.Parse(m.Endpoint); strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			p.add("minio.endpoint", "must be scheme://host:port only, without a path")
		}
	}
	checkCAFile(c, p, "minio.ca_file", m.CAFile)
	positive(p, "minio.timeout", m.Timeout)
	o := m.OpenID
	if !configNameRE.MatchString(o.ConfigName) {
		p.add("minio.openid.config_name", "%q may contain only letters, digits, - and _", o.ConfigName)
	}
	required(p, "minio.openid.claim_name", o.ClaimName)
	if len(o.Scopes) == 0 {
		p.add("minio.openid.scopes", "needs at least one scope")
	} else if sc := c.Authentik.ScopeMapping.Scope; sc != "" && !slices.Contains(o.Scopes, sc) {
		p.add("minio.openid.scopes", "must include %q (authentik.scope_mapping.scope), or the policy claim never reaches MinIO", sc)
	}
	checkURL(p, "minio.openid.redirect_uri", o.RedirectURI, false)
	checkEnum(p, "minio.restart", m.Restart, RestartAuto, RestartNever)
}

func validateBindings(c *Config, p *problems) {
	seen := map[string]int{}
	everyone := -1
	for i, b := range c.Bindings {
		key := fmt.Sprintf("bindings[%d]", i)
		switch {
		case b.Everyone && b.Group != "":
			p.add(key, "set group or everyone: true, not both")
		case b.Everyone && everyone >= 0:
			p.add(key+".everyone", "bindings[%d] is already the everyone binding; list all its policies there", everyone)
		}
		if b.Everyone && c.Authentik.RestrictAccess {
			p.add(key+".everyone", "authentik.restrict_access lets only the bound groups use the application, so everyone: true would not reach everyone")
		}
		if b.Everyone && c.Match == MatchFirst && i != len(c.Bindings)-1 {
			p.add(key+".everyone", "with match: first the everyone binding must be the last one (no binding after it could ever match)")
		}
		if b.Everyone {
			if everyone < 0 {
				everyone = i
			}
		} else if strings.TrimSpace(b.Group) == "" {
			p.add(key+".group", "is required (the authentik group name)")
		} else if strings.ContainsRune(b.Group, 0) {
			p.add(key+".group", "contains a NUL character, which authentik cannot store in a group name")
		} else if j, dup := seen[b.Group]; dup {
			p.add(key+".group", "group %q is already bound in bindings[%d]; list all its policies there", b.Group, j)
		} else {
			seen[b.Group] = i
		}
		if len(b.Policies) == 0 {
			p.add(key+".policies", "needs at least one policy")
		}
		for j, name := range b.Policies {
			pk := fmt.Sprintf("%s.policies[%d]", key, j)
			if _, declared := c.Policies[name]; name == "" {
				p.add(pk, "a policy name cannot be empty")
			} else if !declared && !IsBuiltinPolicy(name) {
				p.add(pk, "policy %q is neither built in nor declared under policies", name)
			}
		}
	}
}

func validateVerify(c *Config, p *problems) {
	seen := map[string]bool{}
	for i, u := range c.Verify.Users {
		key := fmt.Sprintf("verify.users[%d]", i)
		switch {
		case strings.TrimSpace(u) == "":
			p.add(key, "a username cannot be empty")
		case seen[u]:
			p.add(key, "%q is listed twice", u)
		}
		seen[u] = true
	}
}

func validateSchedule(c *Config, p *problems) {
	s := c.Schedule
	if required(p, "schedule.reconcile", s.Reconcile) {
		checkCron(p, "schedule.reconcile", s.Reconcile)
	}
	if s.RotateSecret != "" && checkCron(p, "schedule.rotate_secret", s.RotateSecret) {
		const off = `; or set rotate_secret: "" to turn rotation off`
		if c.MinIO.Restart == RestartNever {
			p.add("schedule.rotate_secret", "rotation needs minio.restart: auto (MinIO reads a new secret only after a restart)"+off)
		}
		if c.Authentik.Provider.SigningKey == "" {
			p.add("schedule.rotate_secret", "rotation needs authentik.provider.signing_key (without it tokens are signed with the client secret)"+off)
		}
	}
	nonNegative(p, "schedule.jitter", s.Jitter)
}

func checkCron(p *problems, key, spec string) bool {
	if _, err := ParseSchedule(spec); err != nil {
		p.add(key, "%q is not a valid schedule (5-field cron or a descriptor such as @every 5m): %v", spec, err)
		return false
	}
	return true
}

func validateListen(p *problems, key, addr string) {
	if !required(p, key, addr) {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(key, "%q is not host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "%q has no valid port", addr)
	}
}

// required records a problem when v is empty and reports whether it is set.
func required(p *problems, key, v string) bool {
	if strings.TrimSpace(v) == "" {
		p.add(key, "is required")
		return false
	}
	return true
}

// checkURL validates an http(s) URL with a host. The value is not echoed: a webhook URL
// may carry a token. It reports whether the value is set and valid.
func checkURL(p *problems, key, v string, req bool) bool {
	if v == "" {
		if req {
			p.add(key, "is required")
		}
		return false
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(key, "must be an http:// or https:// URL with a host")
		return false
	}
	return true
}

func checkEnum[T ~string](p *problems, key string, v T, allowed ...T) {
	if !slices.Contains(allowed, v) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		p.add(key, "%q is not one of %s", v, strings.Join(names, ", "))
	}
}

func positive(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be a positive duration such as 10s")
	}
}

func nonNegative(p *problems, key string, d time.Duration) {
	if d < 0 {
		p.add(key, "must not be negative")
	}
}

// checkCAFile checks that a configured CA bundle exists and holds at least one certificate.
func checkCAFile(c *Config, p *problems, key, path string) {
	if path == "" {
		return
	}
	shown := c.shownPath(key, path)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add(key, "%s does not exist", shown)
	case err != nil:
		p.add(key, "cannot read %s: %v", shown, unwrapPath(err))
	case !x509.NewCertPool().AppendCertsFromPEM(b):
		p.add(key, "%s holds no PEM certificate", shown)
	}
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// validateEvents: the feeds need an address to send to. The hook token they authenticate
// with is a secret, checked by RequireSecrets.
func validateEvents(c *Config, p *problems) {
	e := c.Events
	if checkURL(p, "events.public_url", e.PublicURL, e.Install) {
		if u, _ := url.Parse(e.PublicURL); u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.add("events.public_url", "must be a plain base URL (no user, query or fragment)")
		}
	}
}
