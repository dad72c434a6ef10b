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
}

// OwnUserAgent marks requests akminio itself made: its MinIO admin client adds
// OwnUserAgent + version to the User-Agent (cmd/akminio's engine), which MinIO records in
// each audit entry's userAgent.
const OwnUserAgent = "akminio/"

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
	var relevant []string
	for _, e := range entries {
		if slices.Contains(minioAdminCalls, e.API.Name) && !strings.Contains(e.UserAgent, OwnUserAgent) {
			relevant = append(relevant, e.API.Name)
		}
	}
	if len(relevant) > 0 {
		d.log.Info("MinIO admin call seen; run scheduled after the debounce", zap.Strings("calls", relevant))
		d.hookEvent()
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

// authentikNotification is authentik's generic webhook body (a notification transport in
// "webhook" mode, NotificationTransport.send_webhook): {"body", "severity", "user_email",
// "user_username", "event_user_email", "event_user_username"}. The body is the event's
// summary, "<action>: <context>" (such as "model_updated: {...}") unless the event carries a
// message. A webhook body mapping replaces the whole document with whatever JSON it returns.
type authentikNotification struct {
	Body     string `json:"body"`
	Severity string `json:"severity"`
}

// handleAuthentikHook takes authentik notification webhooks. Which events arrive is decided
// in authentik by the notification rule (its event matcher policy should match
// model_created, model_updated and model_deleted), so every well-formed JSON document
// schedules a debounced run: the default body, or any shape a body mapping returns. akminio's own writes cause such events too: the run they
// trigger finds no drift and writes nothing, so there is no loop.
func (d *Daemon) handleAuthentikHook(w http.ResponseWriter, r *http.Request) {
	body, err := drain(r)
	if err != nil {
		bodyError(w, err)
		return
	}
	if !json.Valid(body) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "not an authentik notification: the body is not JSON"})
		return
	}
	var n authentikNotification
	_ = json.Unmarshal(body, &n) // a mapped body need not be an object: n stays empty
	d.log.Info("authentik notification received; run scheduled after the debounce",
		zap.String("severity", n.Severity), zap.String("event", firstWord(n.Body)))
	d.hookEvent()
	writeJSON(w, http.StatusAccepted, map[string]any{"triggered": true})
}

// firstWord is the event action at the start of a notification body ("model_updated: ...").
func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ": \n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
