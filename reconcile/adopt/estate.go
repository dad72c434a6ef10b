package adopt

import (
	"context"

	"github.com/akminio/akminio/reconcile"
)

// AuthentikEstate is what import reads from authentik about one application: everything a
// config names, resolved to names and slugs (never primary keys).
type AuthentikEstate struct {
	Application Application
	Provider    *Provider // nil: the application has no OAuth2 provider
	// Mappings are the provider's scope mappings, built-in ones included, in its order.
	Mappings []Mapping
	// Groups are every group, with their parents, to tell which have child groups.
	Groups []Group
	// Bindings counts the application's policy bindings (made by hand: akminio leaves them).
	Bindings int
}

// Application is the authentik application.
type Application struct {
	Slug, Name, LaunchURL string
}

// Provider is the application's OAuth2 provider.
type Provider struct {
	PK                int32
	Name              string
	ClientType        string
	GrantTypes        []string
	RedirectURIs      []reconcile.RedirectURI
	SigningKey        string // keypair name, "" when none
	AuthorizationFlow string // flow slug
	InvalidationFlow  string // flow slug
}

// Mapping is a scope mapping attached to the provider.
type Mapping struct {
	Name, ScopeName, Expression string
	Managed                     string // authentik's managed identifier, "" for one made by hand
}

// Group is an authentik group.
type Group struct {
	PK, Name string
	Parents  []string // parent pks
}

// MinIOEstate is what import reads from MinIO.
type MinIOEstate struct {
	// Targets are the identity_openid targets that have a config_url, by target name
	// ("identity_openid", "identity_openid:NAME").
	Targets map[string]*reconcile.ObservedOpenIDTarget
	// Policies are every canned policy, name -> document as MinIO returns it.
	Policies map[string][]byte
}

// AuthentikReader reads an AuthentikEstate; reconcile/authentik implements it.
type AuthentikReader interface {
	ReadEstate(ctx context.Context, slug string) (AuthentikEstate, error)
}

// MinIOReader reads a MinIOEstate; reconcile/minio implements it.
type MinIOReader interface {
	ReadEstate(ctx context.Context) (MinIOEstate, error)
}
