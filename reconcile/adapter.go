package reconcile

import "context"

// Done is called by an applier after each change it has applied, in order; the engine logs
// and counts through it.
type Done func(Change)

// Written is what one applier call wrote that the engine records. Created and Deleted name
// the objects of the ownership registry (State) that it created and deleted: MinIO policies
// by name, authentik policy bindings by pk. The engine alone updates the registry, which
// decides what akminio may later delete.
type Written struct {
	Created []string
	Deleted []string
	// Restart says a write needs a MinIO restart to take effect (identity_openid).
	Restart bool
}

// AuthentikAdapter is what the engine needs from authentik; reconcile/authentik implements it
// over goauthentik.io/api/v3 and is the only code that writes there.
type AuthentikAdapter interface {
	// Observe reads everything the plan needs about d, completely (every page, every lookup:
	// keypair by name, flows by slug, built-in mappings by scope), or returns an error.
	Observe(ctx context.Context, d *Desired) (AuthentikState, error)
	// Apply makes the authentik changes (those with System == SystemAuthentik and no Blocked)
	// in the order given, writing every managed field of each object from d. It updates
	// obs.Authentik to what it wrote, so later steps see it: a created scope mapping's pk, a
	// created provider's pk, client_id and client_secret, an application's pk, group pks,
	// bindings. It returns the pks of the bindings it created and deleted, also when it stops
	// at an error (it stops at the first); it never touches obs.State.
	Apply(ctx context.Context, d *Desired, obs *Observed, changes []Change, done Done) (Written, error)
	// PreviewUser returns a user's (by username) groups, direct and ancestor, and the claims
	// the provider's mappings give it, through providers/oauth2/{id}/preview_user/.
	PreviewUser(ctx context.Context, providerPK int32, username string) (UserPreview, error)
}

// MinIOAdapter is what the engine needs from MinIO; reconcile/minio implements it over
// madmin-go/v3 and is the only code that writes there.
type MinIOAdapter interface {
	// Observe reads every canned policy and the identity_openid target of d (from the full
	// config export, which includes client_secret), or returns an error.
	Observe(ctx context.Context, d *Desired) (MinIOState, error)
	// Apply makes the MinIO changes (System == SystemMinIO, not Blocked, not Pending) in the
	// order given: policies (create/update writes the desired document; delete only policies
	// the plan chose to prune) and identity_openid (writes every managed key of
	// WantedOpenIDKeys(d, obs.Authentik.Provider)). It updates obs.MinIO.Policies and returns
	// the policies it created and deleted and whether a write needs a restart, also when it
	// stops at an error (it stops at the first); it never touches obs.State.
	Apply(ctx context.Context, d *Desired, obs *Observed, changes []Change, done Done) (Written, error)
	// Restart restarts MinIO (ServiceRestartV2) and waits until it answers again with its IAM
	// subsystem ready.
	Restart(ctx context.Context) error
}
