package reconcile

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/akminio/akminio/config"
)

// The event feeds (config events.install): objects akminio declares in authentik and MinIO so
// that both call the daemon's hooks when something akminio manages changes.

// Kinds of the feed objects.
const (
	KindWebhookMapping Kind = "webhook_mapping"        // authentik notification webhook mapping (the bearer header), by name
	KindTransport      Kind = "notification_transport" // authentik webhook notification transport, by name
	KindEventMatcher   Kind = "event_matcher"          // authentik event matcher policy, by name
	KindRule           Kind = "notification_rule"      // authentik notification rule (with its policy bindings), by name
	KindAuditWebhook   Kind = "audit_webhook"          // MinIO audit_webhook target, by target name
)

// FeedKinds are the feed kinds of each system.
var FeedKinds = map[System][]Kind{
	SystemAuthentik: {KindWebhookMapping, KindTransport, KindEventMatcher, KindRule},
	SystemMinIO:     {KindAuditWebhook},
}

// Names of the feed objects. akminio recognises its own by these names (and by the ownership
// registry in state.json: only what akminio created is ever deleted).
const (
	FeedName        = "akminio"            // transport, rule and MinIO audit_webhook target
	FeedMappingName = "akminio hook token" // the header mapping
	FeedMatcherName = "akminio: "          // + the watched model, e.g. "akminio: authentik_core.group"
	AuthentikHook   = "/hooks/authentik"   // below events.public_url
	MinIOHook       = "/hooks/minio"       // below events.public_url
)

// WatchedModels are the authentik models whose changes matter to akminio ("<app>.<model>"
// as authentik's event context and EventMatcherPolicy.model name them): what it manages.
// Changes to the feed itself are found by the scheduled runs.
var WatchedModels = []string{
	"authentik_providers_oauth2.oauth2provider",
	"authentik_providers_oauth2.scopemapping",
	"authentik_core.application",
	"authentik_core.group",
	"authentik_policies.policybinding",
}

// DesiredFeeds is what the events section declares.
type DesiredFeeds struct {
	Install      bool
	AuthentikURL string        // events.public_url + AuthentikHook
	MinIOURL     string        // events.public_url + MinIOHook
	Token        config.Secret // http.hook_token, which both feeds send
}

// NewDesiredFeeds builds the feeds' desired state from a validated config.
func NewDesiredFeeds(cfg *config.Config) DesiredFeeds {
	base := strings.TrimRight(cfg.Events.PublicURL, "/")
	return DesiredFeeds{
		Install: cfg.Events.Install, AuthentikURL: base + AuthentikHook, MinIOURL: base + MinIOHook,
		Token: cfg.HTTP.HookToken,
	}
}

// MappingExpression is the header mapping's expression: a dict with the bearer token, which
// authentik's webhook transport sends as headers. The token is written as a JSON string,
// which is a valid Python string literal.
func (f DesiredFeeds) MappingExpression() config.Secret {
	lit, _ := json.Marshal("Bearer " + f.Token.Reveal())
	return config.Secret(`return {"Authorization": ` + string(lit) + `}`)
}

// MatcherName is the name of the event matcher policy for a watched model.
func MatcherName(model string) string { return FeedMatcherName + model }

// FeedKey is an entry of State.CreatedFeeds: "<kind>/<name>".
func FeedKey(kind Kind, name string) string { return string(kind) + "/" + name }

// Fixed values of the feed objects.
const (
	TransportMode = "webhook"
	RuleSeverity  = "notice"
	AuditEnableOn = "on"
)

// ObservedFeeds is authentik's side of the feeds (nil members: missing).
type ObservedFeeds struct {
	Mapping   *ObservedWebhookMapping
	Transport *ObservedTransport
	Matchers  map[string]*ObservedMatcher // by name
	Rule      *ObservedRule
}

// ObservedWebhookMapping is a notification webhook mapping. Its expression holds the hook
// token, so it is kept as a Secret.
type ObservedWebhookMapping struct {
	PK         string
	Name       string
	Expression config.Secret
}

// ObservedTransport is a notification transport.
type ObservedTransport struct {
	PK            string
	Name          string
	Mode          string
	URL           string
	HeaderMapping string // pk, "" for none
	BodyMapping   string // pk, "" for none
	SendOnce      bool
}

// ObservedMatcher is an event matcher policy ("" for criteria that are not set).
type ObservedMatcher struct {
	PK, Name, Action, App, Model, ClientIP, Query string
}

// ObservedRule is a notification rule and the policy bindings whose target it is.
type ObservedRule struct {
	PK                   string
	Name                 string
	Transports           []string // pks
	Severity             string
	DestinationEventUser bool
	DestinationGroup     string // pk, "" for none
	Bindings             []ObservedRuleBinding
}

// ObservedRuleBinding is a policy binding of a rule.
type ObservedRuleBinding struct {
	PK      string
	Policy  string // pk, "" for a group or user binding
	Enabled bool
	Negate  bool
}

// ObservedAuditWebhook is MinIO's audit_webhook:akminio target (nil: not configured).
type ObservedAuditWebhook struct {
	Enable    string // "on" | "off"
	Endpoint  string
	AuthToken config.Secret
}

// PlanFeeds is the pure diff of the feeds: with Install, what creates or repairs each feed
// object (in the order they depend on each other); without it, the deletion of each feed
// object akminio created (recorded in st.CreatedFeeds), in reverse order. mc is nil when
// MinIO's target is not configured.
func PlanFeeds(d DesiredFeeds, ak ObservedFeeds, mc *ObservedAuditWebhook, st State) []Change {
	if !d.Install {
		return planFeedRemoval(ak, mc, st)
	}
	var out []Change
	add := func(system System, kind Kind, name string, exists bool, fields []string) {
		switch {
		case !exists:
			out = append(out, Change{System: system, Action: ActionCreate, Kind: kind, Name: name})
		case len(fields) > 0:
			out = append(out, Change{System: system, Action: ActionUpdate, Kind: kind, Name: name, Fields: fields})
		}
	}
	m := ak.Mapping
	var f []string
	if m != nil && m.Expression.Reveal() != d.MappingExpression().Reveal() {
		f = append(f, "expression")
	}
	add(SystemAuthentik, KindWebhookMapping, FeedMappingName, m != nil, f)

	t := ak.Transport
	f = nil
	if t != nil {
		f = feedField(f, "mode", t.Mode != TransportMode)
		f = feedField(f, "webhook_url", t.URL != d.AuthentikURL)
		f = feedField(f, "webhook_mapping_headers", m == nil || t.HeaderMapping != m.PK)
		f = feedField(f, "webhook_mapping_body", t.BodyMapping != "")
		f = feedField(f, "send_once", !t.SendOnce)
	}
	add(SystemAuthentik, KindTransport, FeedName, t != nil, f)

	var matcherPKs []string
	allMatchers := true
	for _, model := range WatchedModels {
		name := MatcherName(model)
		p := ak.Matchers[name]
		f = nil
		if p != nil {
			f = feedField(f, "action", p.Action != "")
			f = feedField(f, "app", p.App != "")
			f = feedField(f, "model", p.Model != model)
			f = feedField(f, "client_ip", p.ClientIP != "")
			f = feedField(f, "query", p.Query != "")
			matcherPKs = append(matcherPKs, p.PK)
		} else {
			allMatchers = false
		}
		add(SystemAuthentik, KindEventMatcher, name, p != nil, f)
	}

	r := ak.Rule
	f = nil
	if r != nil {
		f = feedField(f, "transports", t == nil || !slices.Equal(r.Transports, []string{t.PK}))
		f = feedField(f, "severity", r.Severity != RuleSeverity)
		f = feedField(f, "destination_event_user", !r.DestinationEventUser)
		f = feedField(f, "destination_group", r.DestinationGroup != "")
		f = feedField(f, "policy_bindings", !allMatchers || !ruleBindingsMatch(r.Bindings, matcherPKs))
	}
	add(SystemAuthentik, KindRule, FeedName, r != nil, f)

	f = nil
	if mc != nil {
		f = feedField(f, "enable", mc.Enable != AuditEnableOn)
		f = feedField(f, "endpoint", mc.Endpoint != d.MinIOURL)
		f = feedField(f, "auth_token", mc.AuthToken.Reveal() != d.Token.Reveal())
	}
	add(SystemMinIO, KindAuditWebhook, AuditTarget, mc != nil, f)
	return out
}

// AuditTarget is MinIO's audit_webhook target of the feed.
const AuditTarget = "audit_webhook:" + FeedName

func feedField(fields []string, name string, differs bool) []string {
	if differs {
		return append(fields, name)
	}
	return fields
}

// ruleBindingsMatch: the rule has exactly one enabled, not negated binding to each matcher,
// and no other binding.
func ruleBindingsMatch(bs []ObservedRuleBinding, matcherPKs []string) bool {
	if len(bs) != len(matcherPKs) {
		return false
	}
	seen := map[string]bool{}
	for _, b := range bs {
		if !b.Enabled || b.Negate || !slices.Contains(matcherPKs, b.Policy) || seen[b.Policy] {
			return false
		}
		seen[b.Policy] = true
	}
	return true
}

// planFeedRemoval deletes the feed objects that exist and that akminio created.
func planFeedRemoval(ak ObservedFeeds, mc *ObservedAuditWebhook, st State) []Change {
	var out []Change
	del := func(system System, kind Kind, name string, exists bool) {
		if exists && slices.Contains(st.CreatedFeeds, FeedKey(kind, name)) {
			out = append(out, Change{System: system, Action: ActionDelete, Kind: kind, Name: name})
		}
	}
	del(SystemAuthentik, KindRule, FeedName, ak.Rule != nil)
	for _, model := range WatchedModels {
		del(SystemAuthentik, KindEventMatcher, MatcherName(model), ak.Matchers[MatcherName(model)] != nil)
	}
	del(SystemAuthentik, KindTransport, FeedName, ak.Transport != nil)
	del(SystemAuthentik, KindWebhookMapping, FeedMappingName, ak.Mapping != nil)
	del(SystemMinIO, KindAuditWebhook, AuditTarget, mc != nil)
	return out
}
