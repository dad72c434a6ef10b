package minio

import (
	"context"
	"fmt"
	"strings"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// The MinIO side of the event feed: the audit_webhook:akminio target, which MinIO loads
// without a restart. It sends every admin call's audit entry to the daemon's /hooks/minio
// with "Authorization: <auth_token>".

// Keys of audit_webhook that akminio manages.
const (
	keyEndpoint  = "endpoint"
	keyAuthToken = "auth_token"
)

// ObserveAudit reads the audit_webhook:akminio target from the full config export (which
// holds auth_token); nil when it is not configured.
func (a *Adapter) ObserveAudit(ctx context.Context) (*reconcile.ObservedAuditWebhook, error) {
	export, err := a.readExport(ctx)
	if err != nil {
		return nil, err
	}
	o, err := parseAudit(string(export), reconcile.AuditTarget)
	if err != nil {
		return nil, fmt.Errorf("minio: config export: %w", err)
	}
	return o, nil
}

// parseAudit finds target's line (never commented out: a named target exists only once
// set) and returns its effective values, or nil when the export has none.
func parseAudit(export, target string) (*reconcile.ObservedAuditWebhook, error) {
	for raw := range strings.SplitSeq(export, "\n") {
		line := strings.TrimSpace(raw)
		if first, _, _ := strings.Cut(line, madmin.KvSpaceSeparator); first != target {
			continue
		}
		cfgs, err := madmin.ParseServerConfigOutput(line)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", target, err)
		}
		if len(cfgs) != 1 || cfgs[0].SubSystem != madmin.AuditWebhookSubSys {
			return nil, fmt.Errorf("parse %s: unexpected shape (%d sections)", target, len(cfgs))
		}
		get := func(key string) string { v, _ := cfgs[0].Lookup(key); return v }
		enable := madmin.EnableOff
		if v := strings.ToLower(get(madmin.EnableKey)); v == "on" || v == "true" || v == "" && get(keyEndpoint) != "" {
			enable = madmin.EnableOn
		}
		return &reconcile.ObservedAuditWebhook{Enable: enable, Endpoint: get(keyEndpoint), AuthToken: config.Secret(get(keyAuthToken))}, nil
	}
	return nil, nil
}

// ApplyAudit makes the MinIO feed change of changes (create and update write enable,
// endpoint and auth_token; delete removes the target) and updates *obs. It returns the
// FeedKeys it created and deleted.
func (a *Adapter) ApplyAudit(ctx context.Context, d reconcile.DesiredFeeds, obs **reconcile.ObservedAuditWebhook, changes []reconcile.Change, done reconcile.Done) (created, deleted []string, err error) {
	for _, c := range changes {
		if c.System != reconcile.SystemMinIO || c.Kind != reconcile.KindAuditWebhook || c.Blocked != "" {
			continue
		}
		key := reconcile.FeedKey(c.Kind, c.Name)
		switch c.Action {
		case reconcile.ActionDelete:
			if err := a.do(ctx, func(ctx context.Context) error {
				_, err := a.adm.DelConfigKV(ctx, reconcile.AuditTarget)
				return notReady(err)
			}); err != nil {
				return created, deleted, fmt.Errorf("minio: delete %s: %w", reconcile.AuditTarget, redact(err, d.Token))
			}
			*obs = nil
			deleted = append(deleted, key)
		default:
			line, err := configLine(reconcile.AuditTarget, []kv{
				{madmin.EnableKey, madmin.EnableOn}, {keyEndpoint, d.MinIOURL}, {keyAuthToken, d.Token.Reveal()},
			})
			if err != nil {
				return created, deleted, fmt.Errorf("minio: set %s: %w", reconcile.AuditTarget, err)
			}
			if err := a.do(ctx, func(ctx context.Context) error {
				_, err := a.adm.SetConfigKV(ctx, line) // audit_webhook is dynamic: no restart
				return notReady(err)
			}); err != nil {
				return created, deleted, fmt.Errorf("minio: set %s: %w", reconcile.AuditTarget, redact(err, d.Token))
			}
			*obs = &reconcile.ObservedAuditWebhook{Enable: madmin.EnableOn, Endpoint: d.MinIOURL, AuthToken: d.Token}
			if c.Action == reconcile.ActionCreate {
				created = append(created, key)
			}
		}
		if done != nil {
			done(c)
		}
	}
	return created, deleted, nil
}
