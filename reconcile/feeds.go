package reconcile

// The event feeds (config events.install): objects akminio declares in authentik and MinIO so
// that both call the daemon's hooks when something akminio manages changes.

// Kinds of the feed objects.
const (
	KindWebhookMapping = "webhook_mapping"        // authentik notification webhook mapping (the bearer header), by name
	KindTransport      = "notification_transport" // authentik webhook notification transport, by name
	KindEventMatcher   = "event_matcher"          // authentik event matcher policy, by name
	KindRule           = "notification_rule"      // authentik notification rule (with its policy bindings), by name
	KindAuditWebhook   = "audit_webhook"          // MinIO audit_webhook target, by target name
)

// FeedKinds are the feed kinds of each system.
var FeedKinds = map[string][]string{
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
