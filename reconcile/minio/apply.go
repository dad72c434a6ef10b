package minio

import (
	"context"
	"errors"
	"fmt"
	"strings"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Apply makes the MinIO changes among changes (System minio, not Blocked, not Pending) in
// order, calling done after each: policies are written with d's document or removed, the
// identity_openid target gets every managed key of reconcile.WantedOpenIDKeys in one write.
// It keeps obs.MinIO.Policies up to date and returns the policies it created and deleted
// (the engine records them in the ownership registry) and whether a write needs a MinIO
// restart. It stops at the first error.
func (a *Adapter) Apply(ctx context.Context, d *reconcile.Desired, obs *reconcile.Observed,
	changes []reconcile.Change, done reconcile.Done) (w reconcile.Written, err error) {
	for _, c := range changes {
		if c.System != reconcile.SystemMinIO || c.Blocked != "" || c.Pending {
			continue
		}
		switch c.Kind {
		case reconcile.KindPolicy:
			err = a.applyPolicy(ctx, d, obs, c)
			if err == nil && c.Action == reconcile.ActionCreate {
				w.Created = append(w.Created, c.Name)
			}
			if err == nil && c.Action == reconcile.ActionDelete {
				w.Deleted = append(w.Deleted, c.Name)
			}
		case reconcile.KindOpenID:
			var r bool
			r, err = a.applyOpenID(ctx, d, obs, c)
			w.Restart = w.Restart || r
		default:
			err = fmt.Errorf("minio: %s %s %q: not a MinIO change", c.Action, c.Kind, c.Name)
		}
		if err != nil {
			return w, err
		}
		if done != nil {
			done(c)
		}
	}
	return w, nil
}

// applyPolicy writes or removes one canned policy and records it in obs.MinIO.Policies.
func (a *Adapter) applyPolicy(ctx context.Context, d *reconcile.Desired, obs *reconcile.Observed, c reconcile.Change) error {
	switch c.Action {
	case reconcile.ActionCreate, reconcile.ActionUpdate:
		doc, ok := d.Policies[c.Name]
		if !ok {
			return fmt.Errorf("minio: %s policy %q: the config declares no document for it", c.Action, c.Name)
		}
		if err := a.do(ctx, func(ctx context.Context) error { return a.adm.AddCannedPolicy(ctx, c.Name, doc) }); err != nil {
			return fmt.Errorf("minio: add policy %q: %w", c.Name, err)
		}
		if obs.MinIO.Policies == nil {
			obs.MinIO.Policies = make(map[string][]byte)
		}
		obs.MinIO.Policies[c.Name] = doc
		return nil
	case reconcile.ActionDelete:
		if err := a.do(ctx, func(ctx context.Context) error { return a.adm.RemoveCannedPolicy(ctx, c.Name) }); err != nil {
			return fmt.Errorf("minio: remove policy %q: %w", c.Name, err)
		}
		delete(obs.MinIO.Policies, c.Name)
		return nil
	}
	return fmt.Errorf("minio: policy %q: unknown action %q", c.Name, c.Action)
}

// applyOpenID writes every managed key of the identity_openid target in one SetConfigKV.
// obs.MinIO.OpenID is left as read: MinIO reads back the old values until it restarts.
func (a *Adapter) applyOpenID(ctx context.Context, d *reconcile.Desired, obs *reconcile.Observed, c reconcile.Change) (bool, error) {
	target := c.Name
	if target == "" {
		target = d.OpenID.Target
	}
	if c.Action != reconcile.ActionCreate && c.Action != reconcile.ActionUpdate {
		return false, fmt.Errorf("minio: %s %s: akminio only sets this target, never deletes it", c.Action, target)
	}
	v := reconcile.WantedOpenIDKeys(d, obs.Authentik.Provider)
	if v.ClientID == "" || !v.ClientSecret.IsSet() {
		return false, fmt.Errorf("minio: set %s: the authentik provider's client_id and client_secret are not known yet", target)
	}
	restart, err := a.SetOpenID(ctx, target, v)
	if err != nil {
		return false, err
	}
	return restart, nil
}

// SetOpenID writes every managed key of an identity_openid target in one SetConfigKV
// (which merges into the stored target, so an empty value is written explicitly to clear a
// key; redirect_uri only when set). MinIO validates the write by fetching config_url and
// its JWKS. It returns whether MinIO must restart for the values to take effect (always,
// for identity_openid).
func (a *Adapter) SetOpenID(ctx context.Context, target string, v reconcile.OpenIDKeys) (restart bool, err error) {
	enable := v.Enable
	if enable == "" {
		enable = madmin.EnableOn
	}
	kvs := []kv{
		{keyEnable, enable}, {keyConfigURL, v.ConfigURL}, {keyClientID, v.ClientID},
		{keyClientSecret, v.ClientSecret.Reveal()}, {keyClaimName, v.ClaimName},
		{keyScopes, v.Scopes}, {keyDisplayName, v.DisplayName},
	}
	if v.RedirectURI != "" {
		kvs = append(kvs, kv{keyRedirectURI, v.RedirectURI})
	}
	return a.setConfig(ctx, target, kvs, v.ClientSecret)
}

// SetClientSecret sets only client_secret of an identity_openid target (for secret
// rotation). It returns whether MinIO must restart (always, for identity_openid).
func (a *Adapter) SetClientSecret(ctx context.Context, target string, secret config.Secret) (restart bool, err error) {
	if !secret.IsSet() {
		return false, fmt.Errorf("minio: set %s client_secret: the secret is empty", target)
	}
	return a.setConfig(ctx, target, []kv{{keyClientSecret, secret.Reveal()}}, secret)
}

// setConfig writes kvs to target in one SetConfigKV. Errors never carry secret's value.
func (a *Adapter) setConfig(ctx context.Context, target string, kvs []kv, secret config.Secret) (bool, error) {
	if err := checkTarget(target); err != nil {
		return false, err
	}
	line, err := configLine(target, kvs)
	if err != nil {
		return false, fmt.Errorf("minio: set %s: %w", target, err)
	}
	var restart bool
	err = a.do(ctx, func(ctx context.Context) error {
		var err error
		restart, err = a.adm.SetConfigKV(ctx, line)
		return notReady(err)
	})
	if err != nil {
		return false, fmt.Errorf("minio: set %s: %w", target, redact(err, secret))
	}
	return restart, nil
}

// kv is one key and value of a config line.
type kv struct{ key, value string }

// openIDKeys are every key MinIO knows for identity_openid. Its parser of a SetConfigKV line
// finds each value's end by looking for the first "<key>=" of any of them, wherever it is.
var openIDKeys = []string{
	"enable", "display_name", "config_url", "client_id", "client_secret", "claim_name",
	"claim_userinfo", "role_policy", "claim_prefix", "redirect_uri", "redirect_uri_dynamic",
	"scopes", "vendor", "keycloak_realm", "keycloak_admin_url", "user_readable_claim",
	"user_id_claim", "comment",
}

// configLine renders `target k1="v1" k2="v2"`, as MinIO's SetConfigKV parser reads it.
//
// That parser has no escapes: it splits the line where "<known key>=" occurs, trims
// whitespace, one pair of double quotes and then one pair of single quotes from each value,
// and reads the whole input line by line. The config export, read back by madmin's parser,
// ends a quoted value at the next double quote. So a value is refused (naming the key, never
// the value) if it holds a control character, a double quote, a key of the subsystem
// followed by "=", surrounding whitespace or a surrounding single quote: MinIO would store
// something else than what was asked.
func configLine(target string, kvs []kv) (string, error) {
	var b strings.Builder
	b.WriteString(target)
	for _, p := range kvs {
		if why := unsafeValue(p.value); why != "" {
			return "", fmt.Errorf("value of %s %s, which MinIO's config format cannot carry", p.key, why)
		}
		b.WriteString(madmin.KvSpaceSeparator + p.key + madmin.KvSeparator + madmin.KvDoubleQuote)
		b.WriteString(p.value)
		b.WriteString(madmin.KvDoubleQuote)
	}
	return b.String(), nil
}

// unsafeValue says why v cannot be written as a config value, or "" when it can.
func unsafeValue(v string) string {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character (newline, tab, ...)"
		}
	}
	if strings.Contains(v, madmin.KvDoubleQuote) {
		return "contains a double quote"
	}
	if strings.TrimSpace(v) != v {
		return "starts or ends with whitespace"
	}
	if strings.HasPrefix(v, madmin.KvSingleQuote) || strings.HasSuffix(v, madmin.KvSingleQuote) {
		return "starts or ends with a single quote"
	}
	for _, k := range openIDKeys {
		if strings.Contains(v, k+madmin.KvSeparator) {
			return fmt.Sprintf("contains %q", k+madmin.KvSeparator)
		}
	}
	return ""
}

// redact returns err with every occurrence of secret's value replaced, so that nothing
// MinIO or madmin echo back can leak it; err itself is kept in the chain only when its
// message did not contain the value.
func redact(err error, secret config.Secret) error {
	s := secret.Reveal()
	if s == "" || !strings.Contains(err.Error(), s) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), s, config.Redacted))
}
