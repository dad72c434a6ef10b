// Package config loads, validates and exposes akminio's configuration.
//
// A Config is built once by Load (YAML file through koanf, then AKMINIO_* environment
// overrides, then secrets resolved in the spec's order, then defaults) and is read-only
// afterwards: a reload builds a new value and swaps it whole.
package config

import "time"

// DefaultPath is where the config is read from when neither --config nor AKMINIO_CONFIG is set.
const DefaultPath = "/etc/akminio/config.yaml"

// Built-in MinIO policies: they exist on every server and need no declaration.
var BuiltinPolicies = []string{"consoleAdmin", "readonly", "readwrite", "writeonly", "diagnostics"}

// Match modes for bindings.
const (
	MatchFirst = "first" // the guide's if/elif: the first matching binding wins
	MatchAll   = "all"   // union of every matching binding, order kept, no duplicates
)

// Mode is the mode of operation (key mode).
type Mode string

// Modes of operation.
const (
	ModeRepair Mode = "repair" // compute, apply, verify
	ModeReport Mode = "report" // compute, report, apply nothing
)

// Restart is the MinIO restart policy (key minio.restart).
type Restart string

// MinIO restart policies.
const (
	RestartAuto  Restart = "auto"  // restart MinIO after an identity_openid write
	RestartNever Restart = "never" // report "restart pending"; an operator restarts MinIO
)

// Config is the whole, validated configuration. Treat it as read-only.
type Config struct {
	// Path is the file the config was loaded from (absolute); relative paths in it were
	// resolved against its folder.
	Path string `koanf:"-"`

	Authentik Authentik         `koanf:"authentik"`
	MinIO     MinIO             `koanf:"minio"`
	Policies  map[string]Policy `koanf:"policies"`
	Bindings  []Binding         `koanf:"bindings"`
	Match     string            `koanf:"match"`
	Prune     bool              `koanf:"prune"`
	Verify    Verify            `koanf:"verify"`
	Schedule  Schedule          `koanf:"schedule"`
	Mode      Mode              `koanf:"mode"`
	StateDir  string            `koanf:"state_dir"`
	HTTP      HTTP              `koanf:"http"`
	Alerts    Alerts            `koanf:"alerts"`
	Events    Events            `koanf:"events"`
	Log       Log               `koanf:"log"`
	HA        HA                `koanf:"ha"`

	// secrets records where each secret came from (see RequireSecrets); set by Load.
	secrets map[string]secretState
	// rawPaths keeps relative file paths as written, for messages; set by Load.
	rawPaths map[string]string
}

// Authentik is the authentik side: where it is, how to reach it, and what akminio manages there.
type Authentik struct {
	URL                string        `koanf:"url"`
	Token              Secret        `koanf:"token"`
	TokenFile          string        `koanf:"token_file"`
	CAFile             string        `koanf:"ca_file"`
	InsecureSkipVerify bool          `koanf:"insecure_skip_verify"`
	Timeout            time.Duration `koanf:"timeout"`
	CreateGroups       bool          `koanf:"create_groups"`
	RestrictAccess     bool          `koanf:"restrict_access"`
	Application        Application   `koanf:"application"`
	Provider           Provider      `koanf:"provider"`
	ScopeMapping       ScopeMapping  `koanf:"scope_mapping"`
}

// Application is the authentik application (found by slug).
type Application struct {
	Slug      string `koanf:"slug"`
	Name      string `koanf:"name"`
	LaunchURL string `koanf:"launch_url"`
}

// Provider is the authentik OAuth2/OpenID provider (found by name).
type Provider struct {
	Name              string   `koanf:"name"`
	ClientID          string   `koanf:"client_id"` // empty: keep the id authentik generated
	RedirectURIs      []string `koanf:"redirect_uris"`
	SigningKey        string   `koanf:"signing_key"` // certificate keypair name
	AuthorizationFlow string   `koanf:"authorization_flow"`
	InvalidationFlow  string   `koanf:"invalidation_flow"`
	Scopes            []string `koanf:"scopes"` // built-in scope mappings to attach
}

// ScopeMapping is the authentik scope mapping whose expression akminio renders from bindings.
type ScopeMapping struct {
	Name  string `koanf:"name"`
	Scope string `koanf:"scope"`
	Claim string `koanf:"claim"`
}

// MinIO is the MinIO side.
type MinIO struct {
	Endpoint           string        `koanf:"endpoint"`
	AccessKey          Secret        `koanf:"access_key"`
	AccessKeyFile      string        `koanf:"access_key_file"`
	SecretKey          Secret        `koanf:"secret_key"`
	SecretKeyFile      string        `koanf:"secret_key_file"`
	CAFile             string        `koanf:"ca_file"`
	InsecureSkipVerify bool          `koanf:"insecure_skip_verify"`
	Timeout            time.Duration `koanf:"timeout"`
	OpenID             OpenID        `koanf:"openid"`
	Restart            Restart       `koanf:"restart"`
}

// OpenID is MinIO's identity_openid target.
type OpenID struct {
	ConfigName  string   `koanf:"config_name"` // "" = identity_openid; "x" = identity_openid:x
	DisplayName string   `koanf:"display_name"`
	ClaimName   string   `koanf:"claim_name"`
	Scopes      []string `koanf:"scopes"`
	RedirectURI string   `koanf:"redirect_uri"`
}

// Policy is a MinIO policy declared in the config: exactly one of File, Document, External.
type Policy struct {
	File     string         `koanf:"file"`
	Document map[string]any `koanf:"document"`
	External bool           `koanf:"external"`

	// JSON is the policy document as loaded (from File or Document), set by Load for
	// non-external policies: validated, compact, and with "Statement" always a list (see
	// ParsePolicy).
	JSON []byte `koanf:"-"`
}

// Binding maps an authentik group to MinIO policies. A binding with Everyone set instead
// of a group gives its policies to every user (the guide's plain `return {"policy": ...}`);
// with match first it applies where no binding above it matched, so it belongs last.
type Binding struct {
	Group    string   `koanf:"group"`
	Everyone bool     `koanf:"everyone"`
	Policies []string `koanf:"policies"`
}

// Verify lists canary users whose claims are checked on every run.
type Verify struct {
	Users []string `koanf:"users"`
}

// Schedule holds the cron specs (robfig/cron/v3, with descriptors such as "@every 5m").
type Schedule struct {
	Reconcile    string        `koanf:"reconcile"`
	RotateSecret string        `koanf:"rotate_secret"` // empty: never rotate automatically
	Jitter       time.Duration `koanf:"jitter"`
}

// HTTP is the daemon's listener.
type HTTP struct {
	Listen        string        `koanf:"listen"`
	HookToken     Secret        `koanf:"hook_token"`
	HookTokenFile string        `koanf:"hook_token_file"`
	Debounce      time.Duration `koanf:"debounce"`
}

// Events are the event feeds that make authentik and MinIO call the daemon's hooks (off by
// default). With Install, akminio declares them and reconciles them like its other objects:
// an authentik webhook notification transport, rule, event matcher policies and header
// mapping, and a MinIO audit_webhook target, all pointing at PublicURL + /hooks/....
type Events struct {
	// PublicURL is how authentik and MinIO reach this daemon (scheme, host, port, optional
	// path prefix); required when Install is on.
	PublicURL string `koanf:"public_url"`
	// Install makes akminio create and repair the feeds; turned off, akminio removes the
	// feeds it created.
	Install bool `koanf:"install"`
}

// Alerts are the outgoing alert receivers.
type Alerts struct {
	WebhookURL      string `koanf:"webhook_url"`
	AlertmanagerURL string `koanf:"alertmanager_url"`
}

// Log configures zap.
type Log struct {
	Level  string `koanf:"level"`  // debug | info | warn | error
	Format string `koanf:"format"` // json | console
}

// HA makes the akminio instances on the hosts of one distributed MinIO behave as one: only
// the holder of a lease stored in MinIO writes (package lease). Off by default.
type HA struct {
	Enabled bool   `koanf:"enabled"`
	Bucket  string `koanf:"bucket"` // created when missing
	Key     string `koanf:"key"`
	// Identity names this instance in the lease; "" means the host name (see HAIdentity).
	Identity      string        `koanf:"identity"`
	LeaseDuration time.Duration `koanf:"lease_duration"`
	RenewInterval time.Duration `koanf:"renew_interval"`
}

// WriteStep is the longest one write step may take: one request to authentik or MinIO,
// each bounded by its timeout. A leader starts a write step only with this much lease left.
func (c *Config) WriteStep() time.Duration {
	return max(c.Authentik.Timeout, c.MinIO.Timeout)
}
