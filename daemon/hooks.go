package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/akminio/akminio/reconcile"
)

// minioAdminCalls are the MinIO admin API calls (audit entries' api.name) that touch what
// akminio manages: canned policies and identity settings. Others (bucket and object calls,
// user and service-account admin, metrics) trigger nothing.
var minioAdminCalls = []string{
	"AddCannedPolicy", "RemoveCannedPolicy",
	"SetConfigKV", "DelConfigKV", "SetConfig", "RestoreConfigHistoryKV", "ClearConfigHistoryKV",
	"AddIdentityProviderCfg", "UpdateIdentityProviderCfg", "DeleteIdentityProviderCfg",
	"SetPolicyForUserOrGroup", "AttachDetachPolicyBuiltin", "AttachDetachPolicyLDAP",
	"SRPeerReplicateIAMItem", "ImportIAM", "ImportIAMV2",
	// A restart loads identity settings written before it (identity_openid is not dynamic).
	"Service", "ServiceV2",
}

// OwnUserAgent marks requests akminio itself made: its authentik client's User-Agent is
// OwnUserAgent + version, and its MinIO admin client puts OwnUserAgent + version in front
// of madmin's (cmd/akminio's engine). authentik records it in each event and MinIO in each
// audit entry; an entry whose user agent starts with it (exactly: "xakminio/1" is
// somebody else) is akminio's own write. See isOwnUserAgent.
const OwnUserAgent = reconcile.OwnUserAgent

// isOwnUserAgent reports a user agent akminio sent: one that starts with OwnUserAgent.
func isOwnUserAgent(ua string) bool { return strings.HasPrefix(ua, OwnUserAgent) }

// auditEntry is the part of a MinIO audit log entry akminio reads.
type auditEntry struct {
	API struct {
		Name string `json:"name"`
	} `json:"api"`
	UserAgent string `json:"userAgent"`
}

// handleMinIOHook takes MinIO audit_webhook deliveries: one JSON entry per request, several
// (a batch, one per line), or a JSON array. A debounced run follows when an entry is an
// admin call in minioAdminCalls made by someone other than akminio.
//
// Feedback loops: akminio's own writes are audited too. They are recognised by their user
// agent and ignored; were one to slip through (a proxy rewriting the user agent), the
// debounced run it causes finds no drift and writes nothing, so the loop ends there.
func (d *Daemon) handleMinIOHook(w http.ResponseWriter, r *http.Request) {
	body, err := drain(r)
	if err != nil {
		bodyError(w, err)
		return
	}
	entries, err := decodeAudit(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "not a MinIO audit entry: " + err.Error()})
		return
	}
	d.eventReceived(SourceMinIO)
	var relevant []string
	for _, e := range entries {
		if slices.Contains(minioAdminCalls, e.API.Name) && !isOwnUserAgent(e.UserAgent) {
			relevant = append(relevant, e.API.Name)
		}
	}
	if len(relevant) > 0 {
		// Debug: a busy MinIO audits many calls; /status counts them and names the run's reason.
		d.log.Debug("MinIO admin call seen; run scheduled after the debounce", zap.Strings("calls", relevant))
		d.hookEvent(SourceMinIO)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": len(entries), "triggered": len(relevant) > 0})
}

// decodeAudit reads a stream of audit entries: objects one after another, or arrays of them.
func decodeAudit(body []byte) ([]auditEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out []auditEntry
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var batch []auditEntry
			if err := json.Unmarshal(raw, &batch); err != nil {
				return nil, err
			}
			out = append(out, batch...)
			continue
		}
		var e auditEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("empty body")
	}
	return out, nil
}

// handleAuthentikHook takes authentik notification webhooks (the default body of a webhook
// transport, see authentikBody in feeds.go). A model event on an object akminio manages,
// caused by someone other than akminio, schedules a debounced run; other events are answered
// 200 and ignored. A body that is not authentik's is refused with 400.
func (d *Daemon) handleAuthentikHook(w http.ResponseWriter, r *http.Request) {
	body, err := drain(r)
	if err != nil {
		bodyError(w, err)
		return
	}
	n, err := decodeNotification(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	d.eventReceived(SourceAuthentik)
	if why := n.ignored(); why != "" {
		d.log.Debug("authentik notification ignored", zap.String("event", n.Action), zap.String("model", n.Model), zap.String("why", why))
		writeJSON(w, http.StatusOK, map[string]any{"triggered": false, "ignored": why})
		return
	}
	d.log.Debug("authentik notification received; run scheduled after the debounce",
		zap.String("event", n.Action), zap.String("model", n.Model))
	d.hookEvent(SourceAuthentik)
	writeJSON(w, http.StatusAccepted, map[string]any{"triggered": true})
}
