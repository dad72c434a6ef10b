// Package reconcile holds akminio's core: the desired state built from the config, the
// observed state read from authentik and MinIO, the pure diff between them (Plan), and the
// engine that observes, plans, applies through the two adapters and verifies.
//
// The adapters live in reconcile/authentik and reconcile/minio; they are the only code that
// talks to the remote systems. Everything in this file is plain data.
package reconcile

import (
	"time"

	"github.com/akminio/akminio/config"
)

// System is a remote system a change belongs to.
type System string

// Systems a change belongs to.
const (
	SystemAuthentik System = "authentik"
	SystemMinIO     System = "minio"
)

// Action is what a change does to its object.
type Action string

// Actions of a change.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Kind is the kind of object a change is about.
type Kind string

// Kinds of object a change is about.
const (
	KindScopeMapping Kind = "scope_mapping"   // authentik scope mapping, by name
	KindProvider     Kind = "provider"        // authentik OAuth2 provider, by name
	KindApplication  Kind = "application"     // authentik application, by slug
	KindGroup        Kind = "group"           // authentik group, by name
	KindBinding      Kind = "policy_binding"  // authentik group -> application binding, by group name
	KindPolicy       Kind = "policy"          // MinIO canned policy, by name
	KindOpenID       Kind = "identity_openid" // MinIO identity_openid target, by target name
	KindVerification Kind = "verification"    // a failed verification (section 5 of the spec)
)

// Fixed values of the provider that the spec manages but the config does not set.
const (
	ClientTypeConfidential = "confidential"
	MatchingModeStrict     = "strict"
)

// ProviderGrantTypes are the provider's managed grant_types, in this order.
var ProviderGrantTypes = []string{"authorization_code", "refresh_token"}

// Change is one item of a plan: a difference in a managed field and what removes it.
//
// Fields lists the managed fields that differ (for create: nil). Field names are the API's
// (`expression`, `redirect_uris`, `client_secret`, ...). A secret field is named, never valued.
type Change struct {
	System          System   `json:"system"`
	Action          Action   `json:"action"`
	Kind            Kind     `json:"kind"`
	Name            string   `json:"name"`
	Fields          []string `json:"fields"`
	RestartRequired bool     `json:"restart_required"`

	// Blocked, when set, says why akminio cannot make this change itself (an external policy
	// that is missing, a group missing without create_groups, a key set by MinIO's
	// environment, ...). Blocked changes are drift that is reported and never applied.
	Blocked string `json:"blocked,omitempty"`
	// Pending marks an identity_openid change that was already written and waits for a MinIO
	// restart: it is never written again while pending; `restart: auto` restarts MinIO.
	Pending bool `json:"pending,omitempty"`
	// ID is the object's primary key where Name alone does not identify it: the pk of a
	// policy binding to delete (akminio created it; its group may no longer be desired).
	ID string `json:"id,omitempty"`
}

// Plan is the ordered list of changes that removes all drift, plus information that is not
// drift (unmanaged MinIO policies).
type Plan struct {
	Changes []Change `json:"changes"`
	// Unmanaged lists MinIO policies that akminio neither declares nor needs, sorted; they are
	// information, never deleted unless prune is on and akminio created them.
	Unmanaged []string `json:"unmanaged,omitempty"`
}

// Desired is what the config declares, in the terms of the two APIs. Build it with NewDesired.
type Desired struct {
	ScopeMapping   ScopeMapping
	Provider       Provider
	Application    Application
	Groups         []string // groups named in bindings, in order, no duplicates
	CreateGroups   bool
	RestrictAccess bool

	// Policies are the declared, akminio-owned MinIO policies: name -> normalised document.
	Policies map[string][]byte
	// ExternalPolicies must exist in MinIO; akminio never writes them.
	ExternalPolicies []string
	// BoundPolicies are the policies named in bindings, in order of first use, no duplicates.
	BoundPolicies []string
	OpenID        OpenIDSettings
	Prune         bool
	Restart       config.Restart

	// Bindings and Match are kept for verification: ExpectedPolicies computes, in Go, what
	// the rendered expression gives a user.
	Bindings []config.Binding
	Match    string

	// Feeds are the event feeds (events section).
	Feeds DesiredFeeds
}

// ScopeMapping is the desired scope mapping.
type ScopeMapping struct {
	Name        string
	ScopeName   string
	Expression  string // rendered by RenderExpression
	Description string
}

// Provider is the desired OAuth2 provider. Names and slugs are resolved to primary keys
// through AuthentikState's lookups; client_type and grant_types are fixed
// (ClientTypeConfidential, ProviderGrantTypes).
type Provider struct {
	Name              string
	ClientID          string   // "": not managed, keep what authentik generated
	RedirectURIs      []string // matching mode strict
	SigningKey        string   // certificate keypair name
	AuthorizationFlow string   // flow slug
	InvalidationFlow  string   // flow slug
	Scopes            []string // built-in scopes whose managed mappings are attached
}

// Application is the desired authentik application.
type Application struct {
	Slug      string
	Name      string
	LaunchURL string // meta_launch_url
}

// OpenIDSettings are the desired MinIO identity_openid target's settings from the config. client_id and client_secret are not
// here: they are the provider's, as observed in (or just written to) authentik.
type OpenIDSettings struct {
	Target      string // "identity_openid" or "identity_openid:NAME"
	ConfigURL   string // authentik's /application/o/<slug>/.well-known/openid-configuration
	ClaimName   string
	Scopes      []string // written comma-separated
	DisplayName string
	RedirectURI string // "" = not managed
}

// Observed is what both systems and akminio's own state say right now. It is only ever
// used complete: an adapter that cannot read everything returns an error instead.
type Observed struct {
	Authentik AuthentikState
	MinIO     MinIOState
	State     State
	Feeds     FeedsState // the event feeds (feeds_engine.go)
}

// AuthentikState is authentik's side of Observed.
type AuthentikState struct {
	ScopeMapping *ObservedScopeMapping // nil: missing
	Provider     *ObservedProvider     // nil: missing
	Application  *ObservedApplication  // nil: missing
	Groups       map[string]string     // name -> pk, for groups named in bindings that exist
	Bindings     []ObservedBinding     // policy bindings whose target is the application

	// Lookups that the plan and the applier resolve names through.
	BuiltinScopes map[string]string // scope name ("openid") -> pk of the managed mapping
	Keypairs      map[string]string // certificate keypair name -> pk
	Flows         map[string]string // flow slug -> pk
}

// ObservedScopeMapping is a scope mapping as authentik returns it.
type ObservedScopeMapping struct {
	PK          string
	Name        string
	ScopeName   string
	Expression  string
	Description string
}

// ObservedProvider is an OAuth2 provider as authentik returns it.
type ObservedProvider struct {
	PK                int32
	Name              string
	ClientType        string
	GrantTypes        []string
	ClientID          string
	ClientSecret      config.Secret
	RedirectURIs      []RedirectURI
	PropertyMappings  []string // mapping pks
	SigningKey        string   // keypair pk, "" when none
	AuthorizationFlow string   // flow pk
	InvalidationFlow  string   // flow pk
}

// RedirectURI is one of a provider's redirect URIs.
type RedirectURI struct {
	URL          string
	MatchingMode string // strict | regex
}

// ObservedApplication is an application as authentik returns it.
type ObservedApplication struct {
	PK        string
	Slug      string
	Name      string
	Provider  int32 // 0: none
	LaunchURL string
}

// ObservedBinding is a policy binding of a group to the application.
type ObservedBinding struct {
	PK    string
	Group string // group pk ("" for bindings of a policy or user)
	Order int32
}

// MinIOState is MinIO's side of Observed.
type MinIOState struct {
	Policies map[string][]byte     // every canned policy, name -> document as MinIO returns it
	OpenID   *ObservedOpenIDTarget // nil: the target is not configured
	// Audit is the event feed's audit_webhook target (nil: not configured), read from the
	// same config export as OpenID.
	Audit *ObservedAuditWebhook
}

// OpenIDKeys are the managed keys of an identity_openid target. Desired values come from
// WantedOpenIDKeys; observed ones from MinIO's full config export, normalised by the adapter
// (Enable is "on" or "off", never empty).
type OpenIDKeys struct {
	Enable       string
	ConfigURL    string
	ClientID     string
	ClientSecret config.Secret
	ClaimName    string
	Scopes       string // comma-separated, as stored
	DisplayName  string
	RedirectURI  string
}

// ObservedOpenIDTarget is an identity_openid target as MinIO's full config export shows it.
type ObservedOpenIDTarget struct {
	OpenIDKeys
	// EnvKeys are keys set through MINIO_IDENTITY_OPENID_* environment variables: MinIO
	// refuses to change them, so drift in them is reported as blocked.
	EnvKeys map[string]bool
}

// State is akminio's own record in state_dir/state.json. It holds no secret.
type State struct {
	RestartPending  *PendingRestart `json:"restart_pending,omitempty"`
	CreatedPolicies []string        `json:"created_policies,omitempty"` // MinIO policies akminio created
	CreatedBindings []string        `json:"created_bindings,omitempty"` // authentik binding pks akminio created
	CreatedFeeds    []string        `json:"created_feeds,omitempty"`    // feed objects akminio created, FeedKey(kind, name)
	SecretRotatedAt time.Time       `json:"secret_rotated_at,omitzero"`
}

// PendingRestart records an identity_openid write that waits for a MinIO restart.
type PendingRestart struct {
	Target    string    `json:"target"`
	WrittenAt time.Time `json:"written_at"`
	// Fingerprint is a SHA-256 over the written key=value pairs (never the values
	// themselves), so a later run can tell whether the pending write is still what it wants.
	Fingerprint string `json:"fingerprint"`
	// Before is the fingerprint of what MinIO read back when the write was made
	// (NotConfigured when the target was not set). MinIO reads that back until it restarts;
	// once it reads back anything else, the restart has happened. "" in records written
	// before this field existed: the record then settles only on the written values.
	Before string `json:"before,omitempty"`
}
