// Package render writes plans as akminio prints them: aligned text lines and the JSON
// document of `plan --output json` (spec section 3). It is presentation only; the plan
// itself is reconcile's.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/akminio/akminio/reconcile"
)

// Text output, one line per change, grouped by system (authentik, then MinIO, then any
// other), in plan order within a system; columns are aligned:
//
//	authentik  update  scope mapping "OIDC-Scope-minio": expression differs
//	minio      create  policy "my-custom-policy"
//	minio      update  identity_openid: client_secret differs, scopes differ   (restart required)
//	minio      create  policy "legacy-auditors"   (blocked: external policy "legacy-auditors" is missing: ...)
//	minio      update  identity_openid: scopes differ   (written, restart pending)
//	minio      info    policy "x" is not managed by akminio
//
// A plan without changes prints "no drift" before any information lines. Values are never
// printed, only the names of the fields that differ, so no secret can appear.

// kindLabels are the words a kind is printed as.
var kindLabels = map[reconcile.Kind]string{
	reconcile.KindScopeMapping: "scope mapping",
	reconcile.KindProvider:     "provider",
	reconcile.KindApplication:  "application",
	reconcile.KindGroup:        "group",
	reconcile.KindBinding:      "binding of group",
	reconcile.KindPolicy:       "policy",
	reconcile.KindVerification: "verification",

	reconcile.KindWebhookMapping: "notification webhook mapping",
	reconcile.KindTransport:      "notification transport",
	reconcile.KindEventMatcher:   "event matcher policy",
	reconcile.KindRule:           "notification rule",
}

// NoDrift is the text output's line for a plan without changes.
const NoDrift = "no drift"

// Text writes the plan as aligned text lines (see above).
func Text(w io.Writer, p reconcile.Plan) error {
	var b strings.Builder
	for _, c := range groupBySystem(p.Changes) {
		fmt.Fprintf(&b, "%-9s  %-6s  %s\n", c.System, c.Action, describe(c))
	}
	if len(p.Changes) == 0 {
		b.WriteString(NoDrift + "\n")
	}
	for _, name := range p.Unmanaged {
		fmt.Fprintf(&b, "%-9s  %-6s  policy %q is not managed by akminio\n", reconcile.SystemMinIO, "info", name)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// groupBySystem orders changes authentik first, then MinIO, then other systems in order of
// appearance, keeping plan order within each system.
func groupBySystem(changes []reconcile.Change) []reconcile.Change {
	order := []reconcile.System{reconcile.SystemAuthentik, reconcile.SystemMinIO}
	for _, c := range changes {
		if !slices.Contains(order, c.System) {
			order = append(order, c.System)
		}
	}
	out := make([]reconcile.Change, 0, len(changes))
	for _, s := range order {
		out = append(out, reconcile.FilterSystem(changes, s)...)
	}
	return out
}

// describe is a change's text after the action column.
func describe(c reconcile.Change) string {
	var b strings.Builder
	b.WriteString(subject(c))
	if len(c.Fields) > 0 {
		b.WriteString(": ")
		if c.Kind == reconcile.KindVerification {
			b.WriteString(strings.Join(c.Fields, "; ")) // problems, not field names
		} else {
			b.WriteString(fieldsDiffer(c.Fields))
		}
	}
	switch {
	case c.Blocked != "":
		b.WriteString("   (blocked: " + c.Blocked + ")")
	case c.Pending:
		b.WriteString("   (written, restart pending)")
	case c.RestartRequired:
		b.WriteString("   (restart required)")
	}
	return b.String()
}

// subject names the object: `policy "x"`, or the identity_openid target as it is.
func subject(c reconcile.Change) string {
	if c.Kind == reconcile.KindOpenID || c.Kind == reconcile.KindAuditWebhook {
		return c.Name
	}
	label, ok := kindLabels[c.Kind]
	if !ok {
		label = string(c.Kind)
	}
	return fmt.Sprintf("%s %q", label, c.Name)
}

// fieldsDiffer is "expression differs" or "client_secret differs, scopes differ".
func fieldsDiffer(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		verb := "differs"
		if strings.HasSuffix(f, "s") {
			verb = "differ" // plural names: scopes, redirect_uris, grant_types, property_mappings
		}
		parts[i] = f + " " + verb
	}
	return strings.Join(parts, ", ")
}

// jsonPlan is the JSON output: the spec's keys plus blocked/pending per change and the
// unmanaged policies.
type jsonPlan struct {
	Changes        []reconcile.Change `json:"changes"`
	Drift          int                `json:"drift"`
	RestartPending bool               `json:"restart_pending"`
	Unmanaged      []string           `json:"unmanaged"`
}

// JSON writes the plan as one JSON document:
// {"changes":[{"system","action","kind","name","fields","restart_required",...}],"drift":N,...}.
// Lists are never null.
func JSON(w io.Writer, p reconcile.Plan) error {
	out := jsonPlan{
		Changes:        make([]reconcile.Change, len(p.Changes)),
		Drift:          p.Drift(),
		RestartPending: p.RestartPending(),
		Unmanaged:      append([]string{}, p.Unmanaged...),
	}
	for i, c := range p.Changes {
		if c.Fields == nil {
			c.Fields = []string{}
		}
		out.Changes[i] = c
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write plan as JSON: %w", err)
	}
	return nil
}
