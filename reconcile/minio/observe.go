package minio

import (
	"context"
	"fmt"
	"strings"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Keys of identity_openid that akminio manages.
const (
	keyEnable       = madmin.EnableKey
	keyConfigURL    = "config_url"
	keyClientID     = "client_id"
	keyClientSecret = "client_secret"
	keyClaimName    = "claim_name"
	keyScopes       = "scopes"
	keyDisplayName  = "display_name"
	keyRedirectURI  = "redirect_uri"
)

// Observe reads every canned policy (one call) and the identity_openid target d.OpenID.Target
// from the full config export (one call). The policies are read first: that call succeeds
// only once MinIO's IAM is initialised, which MinIO does after loading its config, so the
// export read next is never the empty one a starting server shows. A MinIO still starting
// gives an error wrapping ErrNotReady; any failure gives an error, never a partial state.
func (a *Adapter) Observe(ctx context.Context, d *reconcile.Desired) (reconcile.MinIOState, error) {
	policies, err := a.listPolicies(ctx)
	if err != nil {
		return reconcile.MinIOState{}, err
	}
	if err := checkTarget(d.OpenID.Target); err != nil {
		return reconcile.MinIOState{}, err
	}
	export, err := a.readExport(ctx)
	if err != nil {
		return reconcile.MinIOState{}, err
	}
	oid, err := parseOpenID(string(export), d.OpenID.Target)
	if err != nil {
		return reconcile.MinIOState{}, fmt.Errorf("minio: config export: %w", err)
	}
	// The feed's target comes from the same export: each export costs MinIO (and akminio,
	// decrypting it) an argon2id key derivation.
	audit, err := parseAudit(string(export), reconcile.AuditTarget)
	if err != nil {
		return reconcile.MinIOState{}, fmt.Errorf("minio: config export: %w", err)
	}
	return reconcile.MinIOState{Policies: policies, OpenID: oid, Audit: audit}, nil
}

// listPolicies returns every canned policy, name -> document as MinIO returns it. MinIO
// always lists its built-in policies, so an empty answer means it is not ready.
func (a *Adapter) listPolicies(ctx context.Context) (map[string][]byte, error) {
	var raw map[string][]byte
	err := a.do(ctx, func(ctx context.Context) error {
		list, err := a.adm.ListCannedPolicies(ctx)
		if err != nil {
			return notReady(err)
		}
		if len(list) == 0 {
			return fmt.Errorf("%w: no policy listed, not even the built-in ones", ErrNotReady)
		}
		raw = make(map[string][]byte, len(list))
		for name, doc := range list {
			raw[name] = []byte(doc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("minio: list policies: %w", err)
	}
	return raw, nil
}

// ReadOpenID reads the identity_openid target ("identity_openid" or "identity_openid:NAME")
// from MinIO's full config export, which holds the values MinIO loaded at its last start
// (client_secret included). It returns nil when the target has no config_url.
func (a *Adapter) ReadOpenID(ctx context.Context, target string) (*reconcile.ObservedOpenIDTarget, error) {
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	export, err := a.readExport(ctx)
	if err != nil {
		return nil, err
	}
	oid, err := parseOpenID(string(export), target)
	if err != nil {
		return nil, fmt.Errorf("minio: config export: %w", err)
	}
	return oid, nil
}

// readExport reads MinIO's full config export (GetConfig).
func (a *Adapter) readExport(ctx context.Context) ([]byte, error) {
	var export []byte
	err := a.do(ctx, func(ctx context.Context) error {
		var err error
		export, err = a.adm.GetConfig(ctx)
		return notReady(err)
	})
	if err != nil {
		return nil, fmt.Errorf("minio: read config export: %w", err)
	}
	return export, nil
}

// checkTarget accepts "identity_openid" and "identity_openid:NAME" with a plain NAME.
func checkTarget(target string) error {
	name, named := strings.CutPrefix(target, madmin.IdentityOpenIDSubSys+":")
	if target == madmin.IdentityOpenIDSubSys {
		return nil
	}
	if named && name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == "" {
		return nil
	}
	return fmt.Errorf("minio: identity_openid target %q: want identity_openid or identity_openid:NAME (letters, digits, _ - .)", target)
}

// parseOpenID finds target's section in a full config export and returns its effective
// values (environment over stored), or nil when it has no config_url.
//
// The export is one line per subsystem target, each preceded by "# MINIO_...=value" lines
// for the keys its environment sets. A target without a stored config_url is written
// commented out ("# identity_openid ..."), which madmin's parser skips, so the target's
// lines are picked out here and the comment removed before madmin parses them.
func parseOpenID(export, target string) (*reconcile.ObservedOpenIDTarget, error) {
	var env []string
	for raw := range strings.SplitSeq(export, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, madmin.EnvLinePrefix) {
			env = append(env, line)
			continue
		}
		body := strings.TrimPrefix(line, madmin.KvComment+madmin.KvSpaceSeparator)
		if first, _, _ := strings.Cut(body, madmin.KvSpaceSeparator); first != target {
			env = env[:0] // those env lines belonged to another target
			continue
		}
		return openIDFrom(append(env, body), target)
	}
	return nil, nil
}

// openIDFrom parses one target's env lines and config line with madmin's parser.
func openIDFrom(lines []string, target string) (*reconcile.ObservedOpenIDTarget, error) {
	cfgs, err := madmin.ParseServerConfigOutput(strings.Join(lines, "\n"))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", target, err)
	}
	if len(cfgs) != 1 || cfgs[0].SubSystem != madmin.IdentityOpenIDSubSys {
		return nil, fmt.Errorf("parse %s: unexpected shape (%d sections)", target, len(cfgs))
	}
	sc := cfgs[0]
	get := func(key string) string { v, _ := sc.Lookup(key); return v }
	if get(keyConfigURL) == "" {
		return nil, nil
	}
	o := &reconcile.ObservedOpenIDTarget{OpenIDKeys: reconcile.OpenIDKeys{
		Enable:       normaliseEnable(get(keyEnable)),
		ConfigURL:    get(keyConfigURL),
		ClientID:     get(keyClientID),
		ClientSecret: config.Secret(get(keyClientSecret)),
		ClaimName:    get(keyClaimName),
		Scopes:       get(keyScopes),
		DisplayName:  get(keyDisplayName),
		RedirectURI:  get(keyRedirectURI),
	}}
	for _, kv := range sc.KV {
		if kv.EnvOverride != nil {
			if o.EnvKeys == nil {
				o.EnvKeys = make(map[string]bool)
			}
			o.EnvKeys[kv.Key] = true
		}
	}
	return o, nil
}

// normaliseEnable maps MinIO's enable values to "on" or "off". An empty value with a
// config_url set means on: MinIO then enables the target implicitly (and the export omits
// enable=on altogether). A value MinIO cannot parse makes it refuse the target: "off".
func normaliseEnable(v string) string {
	switch strings.ToLower(v) {
	case "", "on", "true", "t", "1", "enabled":
		return madmin.EnableOn
	default:
		return madmin.EnableOff
	}
}
