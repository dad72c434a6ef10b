package adopt

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// configWriter writes the imported config as YAML text, with comments: every string is a
// double-quoted YAML scalar (yaml.v3 escapes it), so no value can change the structure.
type configWriter struct {
	conn     *config.Config
	ak       AuthentikEstate
	oid      *reconcile.ObservedOpenIDTarget
	target   string
	claim    string
	mapping  Mapping
	builtin  []string
	policies []declaredPolicy
	bindings []config.Binding
	match    string
	reading  Reading
	review   bool // problems found: written in report mode
	problems []string

	b     strings.Builder
	files []File
}

// q is s as a double-quoted YAML scalar.
func q(s string) string {
	n := &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Tag: "!!str", Value: s}
	out, err := yaml.Marshal(n)
	if err != nil {
		return `""` // yaml.v3 cannot fail on a plain string node
	}
	return strings.TrimSuffix(string(out), "\n")
}

func ql(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = q(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (w *configWriter) line(indent int, format string, args ...any) {
	w.b.WriteString(strings.Repeat("  ", indent))
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

// comment writes text as comment lines; characters YAML could take as a line break or
// that would not show are escaped.
func (w *configWriter) comment(indent int, text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		w.line(indent, "#%s", strings.TrimRight(" "+visible(l), " "))
	}
}

func visible(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029 || !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// secret writes the way a secret is found: its file (moved out of the config when it was
// inline), or a comment for the environment and systemd credentials.
func (w *configWriter) secret(indent int, key, credName, file string, value config.Secret) {
	name := key[strings.LastIndex(key, ".")+1:]
	env := config.EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
	switch w.conn.SecretSource(key) {
	case "file":
		w.line(indent, "%s_file: %s", name, q(file))
	case "environment":
		w.line(indent, "# %s comes from %s, as it did for import", name, env)
	case "credentials":
		w.line(indent, "# %s comes from $%s/%s, as it did for import", name, config.EnvCredentialsDirectory, credName)
	case "inline":
		rel := "secrets/" + credName
		w.files = append(w.files, File{Path: rel, Content: []byte(value.Reveal() + "\n"), Mode: 0o600})
		w.line(indent, "%s_file: %s   # moved out of the config by import (it was inline)", name, q(rel))
	}
}

func (w *configWriter) write() ([]byte, error) {
	c, ak, p := w.conn, w.ak, w.ak.Provider
	w.comment(0, fmt.Sprintf("akminio config written by `akminio import` on %s\nfrom authentik at %s (application %q) and MinIO at %s (%s).\nCheck it with `akminio plan --access`; see the README, \"Adopting an existing setup\".",
		time.Now().UTC().Format(time.RFC3339), c.Authentik.URL, ak.Application.Slug, c.MinIO.Endpoint, w.target))
	if w.review {
		w.comment(0, "REVIEW NEEDED: import could not reproduce today's access exactly. mode is report, so\nakminio changes nothing until you set repair. What import found:")
		for _, p := range w.problems {
			w.comment(0, "  - "+strings.ReplaceAll(p, "\n", "\n    "))
		}
	}
	w.line(0, "authentik:")
	w.line(1, "url: %s", q(c.Authentik.URL))
	w.secret(1, "authentik.token", "authentik-token", c.Authentik.TokenFile, c.Authentik.Token)
	if c.Authentik.CAFile != "" {
		w.line(1, "ca_file: %s", q(c.Authentik.CAFile))
	}
	if c.Authentik.InsecureSkipVerify {
		w.line(1, "insecure_skip_verify: true")
	}
	w.line(1, "timeout: %s", c.Authentik.Timeout)
	w.line(1, "create_groups: false")
	w.line(1, "restrict_access: false")
	w.line(1, "application:")
	w.line(2, "slug: %s", q(ak.Application.Slug))
	w.line(2, "name: %s", q(ak.Application.Name))
	w.line(2, "launch_url: %s", q(ak.Application.LaunchURL))
	w.line(1, "provider:")
	w.line(2, "name: %s", q(p.Name))
	w.line(2, "client_id: \"\"   # keep the id authentik generated")
	var uris []string
	for _, u := range p.RedirectURIs {
		uris = append(uris, u.URL)
	}
	w.line(2, "redirect_uris: %s", ql(uris))
	w.line(2, "signing_key: %s", q(p.SigningKey))
	w.line(2, "authorization_flow: %s", q(p.AuthorizationFlow))
	w.line(2, "invalidation_flow: %s", q(p.InvalidationFlow))
	w.line(2, "scopes: %s", ql(w.builtin))
	w.line(1, "scope_mapping:")
	w.line(2, "name: %s", q(w.mapping.Name))
	w.line(2, "scope: %s", q(w.mapping.ScopeName))
	w.line(2, "claim: %s", q(w.claim))

	m := c.MinIO
	w.line(0, "minio:")
	w.line(1, "endpoint: %s", q(m.Endpoint))
	w.secret(1, "minio.access_key", "minio-access-key", m.AccessKeyFile, m.AccessKey)
	w.secret(1, "minio.secret_key", "minio-secret-key", m.SecretKeyFile, m.SecretKey)
	if m.CAFile != "" {
		w.line(1, "ca_file: %s", q(m.CAFile))
	}
	if m.InsecureSkipVerify {
		w.line(1, "insecure_skip_verify: true")
	}
	w.line(1, "timeout: %s", m.Timeout)
	w.line(1, "openid:")
	_, name, _ := strings.Cut(w.target, ":")
	w.line(2, "config_name: %s", q(name))
	w.line(2, "display_name: %s", q(w.oid.DisplayName))
	w.line(2, "claim_name: %s", q(w.claim))
	w.line(2, "scopes: %s", ql(splitScopes(w.oid.Scopes)))
	w.line(2, "redirect_uri: %s", q(w.oid.RedirectURI))
	w.line(1, "restart: %s", q(string(m.Restart)))

	if len(w.policies) == 0 {
		w.line(0, "policies: {}")
	} else {
		w.line(0, "policies:")
		for _, d := range w.policies {
			if d.comment != "" {
				w.comment(1, d.comment)
			}
			w.line(1, "%s:", q(d.name))
			if d.external {
				w.line(2, "external: true")
			} else {
				w.line(2, "file: %s", q(d.file))
			}
		}
	}

	w.writeBindings()
	w.line(0, "prune: false")
	w.line(0, "verify:")
	w.line(1, "users: %s", ql(c.Verify.Users))
	w.line(0, "schedule:")
	w.line(1, "reconcile: %s", q(c.Schedule.Reconcile))
	rotate := c.Schedule.RotateSecret
	if p.SigningKey == "" || c.MinIO.Restart != config.RestartAuto {
		rotate = ""
	}
	w.line(1, "rotate_secret: %s", q(rotate))
	w.line(1, "jitter: %s", c.Schedule.Jitter)
	mode := c.Mode
	if w.review {
		mode = config.ModeReport
	}
	w.line(0, "mode: %s", q(string(mode)))
	w.line(0, "state_dir: %s", q(c.StateDir))
	w.line(0, "http:")
	w.line(1, "listen: %s", q(c.HTTP.Listen))
	w.secret(1, "http.hook_token", "hook-token", c.HTTP.HookTokenFile, c.HTTP.HookToken)
	w.line(1, "debounce: %s", c.HTTP.Debounce)
	w.line(0, "alerts:")
	w.line(1, "webhook_url: %s", q(c.Alerts.WebhookURL))
	w.line(1, "alertmanager_url: %s", q(c.Alerts.AlertmanagerURL))
	w.line(0, "log:")
	w.line(1, "level: %s", q(c.Log.Level))
	w.line(1, "format: %s", q(c.Log.Format))
	return []byte(w.b.String()), nil
}

func (w *configWriter) writeBindings() {
	w.comment(0, fmt.Sprintf("The expression of scope mapping %q as import found it, verbatim:", w.mapping.Name))
	for i, l := range strings.Split(strings.TrimRight(w.mapping.Expression, "\n"), "\n") {
		w.line(0, "#   %3d | %s", i+1, visible(l))
	}
	if len(w.reading.Problems) > 0 {
		w.comment(0, "import could not read these lines, so it wrote no bindings:")
		for _, p := range w.reading.Problems {
			w.comment(0, "  "+p.String())
		}
	} else {
		w.comment(0, fmt.Sprintf("The bindings below give every combination of these groups the same policies: %s.", orNone(w.reading.Groups)))
	}
	if len(w.bindings) == 0 {
		w.line(0, "bindings: []")
	} else {
		w.line(0, "bindings:")
		for _, b := range w.bindings {
			if b.Everyone {
				w.line(1, "- everyone: true")
			} else {
				w.line(1, "- group: %s", q(b.Group))
			}
			w.line(2, "policies: %s", ql(b.Policies))
		}
	}
	w.line(0, "match: %s", q(w.match))
}

func orNone(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%q", g)
	}
	return strings.Join(parts, ", ")
}
