package aksim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/google/uuid"

	"github.com/akminio/akminio/internal/pyexpr"
)

// Notification transports, rules, event matcher policies and webhook mappings, as
// authentik/events (NotificationTransport, NotificationRule, NotificationWebhookMapping) and
// authentik/policies/event_matcher define them. Delivery is in notify.go.

func init() {
	for id, h := range map[string]handler{
		"events_transports_list":                       (*Server).transportsList,
		"events_transports_retrieve":                   (*Server).transportsRetrieve,
		"events_transports_create":                     (*Server).transportsCreate,
		"events_transports_update":                     (*Server).transportsUpdate,
		"events_transports_partial_update":             (*Server).transportsUpdate,
		"events_transports_destroy":                    (*Server).transportsDestroy,
		"events_rules_list":                            (*Server).rulesList,
		"events_rules_retrieve":                        (*Server).rulesRetrieve,
		"events_rules_create":                          (*Server).rulesCreate,
		"events_rules_update":                          (*Server).rulesUpdate,
		"events_rules_partial_update":                  (*Server).rulesUpdate,
		"events_rules_destroy":                         (*Server).rulesDestroy,
		"policies_event_matcher_list":                  (*Server).matchersList,
		"policies_event_matcher_retrieve":              (*Server).matchersRetrieve,
		"policies_event_matcher_create":                (*Server).matchersCreate,
		"policies_event_matcher_update":                (*Server).matchersUpdate,
		"policies_event_matcher_partial_update":        (*Server).matchersUpdate,
		"policies_event_matcher_destroy":               (*Server).matchersDestroy,
		"propertymappings_notification_list":           (*Server).notifMappingsList,
		"propertymappings_notification_retrieve":       (*Server).notifMappingsRetrieve,
		"propertymappings_notification_create":         (*Server).notifMappingsCreate,
		"propertymappings_notification_update":         (*Server).notifMappingsUpdate,
		"propertymappings_notification_partial_update": (*Server).notifMappingsUpdate,
		"propertymappings_notification_destroy":        (*Server).notifMappingsDestroy,
	} {
		apiHandlers[id] = h
	}
}

// eventTables are the event-related tables of the store (guarded by store.mu) and the
// notification deliveries in flight.
type eventTables struct {
	transports map[string]*record
	rules      map[string]*record
	matchers   map[string]*record
	mappings   map[string]*record // NotificationWebhookMapping
	tokens     map[string]int     // extra API tokens -> user pk (AddAPIToken)
	delivered  []Delivery
	// mapped caches webhook mapping results by expression and recipient: authentik
	// evaluates a mapping in-process in well under a millisecond, python3 here takes tens
	// of milliseconds (seconds on a loaded machine), which would be charged to every
	// delivery. Mappings are evaluated without the notification, so the result depends on
	// nothing else.
	mapped map[string]any

	inflight sync.WaitGroup
}

func newEventTables() *eventTables {
	return &eventTables{
		transports: map[string]*record{}, rules: map[string]*record{},
		matchers: map[string]*record{}, mappings: map[string]*record{}, tokens: map[string]int{},
		mapped: map[string]any{},
	}
}

// transport modes with their UI labels (TransportMode).
var transportModes = map[string]string{
	"local": "authentik inbuilt notifications", "webhook": "Generic Webhook",
	"webhook_slack": "Slack Webhook (Slack/Discord)", "email": "Email",
}

// ---- transports ----

func (st *store) renderTransport(t *record) map[string]any {
	out := copyMap(t.f)
	out["pk"] = t.id
	out["mode_verbose"] = transportModes[str(t.f["mode"])]
	return out
}

// checkTransport is NotificationTransportSerializer.validate plus the foreign keys.
func (st *store) checkTransport(f map[string]any) (int, any) {
	if m := str(f["mode"]); (m == "webhook" || m == "webhook_slack") && str(f["webhook_url"]) == "" {
		return errField("webhook_url", "Webhook URL cannot be empty.")
	}
	for _, k := range []string{"webhook_mapping_body", "webhook_mapping_headers"} {
		if v := f[k]; v != nil && st.ev.mappings[str(v)] == nil {
			return errField(k, `Invalid pk "`+str(v)+`" - object does not exist.`)
		}
	}
	if v := f["webhook_ca"]; v != nil && st.keypairs[str(v)] == nil {
		return errField("webhook_ca", `Invalid pk "`+str(v)+`" - object does not exist.`)
	}
	return 0, nil
}

func (s *Server) transportsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, t := range sorted(st.ev.transports, byField("name")) {
		if !fieldFilters(c, t, "name", "mode") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(t.f["name"]), q) && !containsFold(str(t.f["mode"]), q) {
			continue
		}
		out = append(out, t)
	}
	return paginate(c, out, st.renderTransport)
}

func (s *Server) transportsRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	t := s.st.ev.transports[c.params["uuid"]]
	if t == nil {
		return errNotFound("Notification Transport")
	}
	return http.StatusOK, s.st.renderTransport(t)
}

func (s *Server) transportsCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if find(st.ev.transports, "name", str(c.body["name"])) != nil {
		return errField("name", "notification transport with this name already exists.")
	}
	f := map[string]any{"mode": "local", "webhook_url": "", "webhook_ca": nil, "webhook_mapping_body": nil,
		"webhook_mapping_headers": nil, "email_subject_prefix": "authentik Notification: ",
		"email_template": "email/event_notification.html", "send_once": false}
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkTransport(f); code != 0 {
		return code, body
	}
	return http.StatusCreated, st.renderTransport(st.add(st.ev.transports, uuid.NewString(), 0, f))
}

func (s *Server) transportsUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.ev.transports[c.params["uuid"]]
	if t == nil {
		return errNotFound("Notification Transport")
	}
	if n, ok := c.body["name"]; ok {
		if o := find(st.ev.transports, "name", str(n)); o != nil && o != t {
			return errField("name", "notification transport with this name already exists.")
		}
	}
	f := copyMap(t.f)
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkTransport(f); code != 0 {
		return code, body
	}
	t.f = f
	return http.StatusOK, st.renderTransport(t)
}

func (s *Server) transportsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["uuid"]
	if st.ev.transports[id] == nil {
		return errNotFound("Notification Transport")
	}
	delete(st.ev.transports, id)
	for _, r := range st.ev.rules { // the many-to-many rows go with it
		r.f["transports"] = anyList(slices.DeleteFunc(strList(r.f["transports"]), func(t string) bool { return t == id }))
	}
	return http.StatusNoContent, nil
}

// ---- rules ----

func (st *store) renderRule(r *record, c *call) map[string]any {
	out := copyMap(r.f)
	out["pk"] = r.id
	out["destination_group_obj"] = nil
	if g := st.groups[str(r.f["destination_group"])]; g != nil {
		out["destination_group_obj"] = st.renderGroup(g, c)
	}
	return out
}

func (st *store) checkRule(f map[string]any) (int, any) {
	for _, t := range strList(f["transports"]) {
		if st.ev.transports[t] == nil {
			return errField("transports", `Invalid pk "`+t+`" - object does not exist.`)
		}
	}
	if g := f["destination_group"]; g != nil && st.groups[str(g)] == nil {
		return errField("destination_group", `Invalid pk "`+str(g)+`" - object does not exist.`)
	}
	return 0, nil
}

func (s *Server) rulesList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, r := range sorted(st.ev.rules, byField("name")) {
		if !fieldFilters(c, r, "name", "severity") {
			continue
		}
		if has(c, "destination_group__name") {
			g := st.groups[str(r.f["destination_group"])]
			if g == nil || str(g.f["name"]) != qget(c, "destination_group__name") {
				continue
			}
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(r.f["name"]), q) {
			continue
		}
		out = append(out, r)
	}
	return paginate(c, out, func(r *record) map[string]any { return st.renderRule(r, c) })
}

func (s *Server) rulesRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	r := s.st.ev.rules[c.params["pbm_uuid"]]
	if r == nil {
		return errNotFound("Notification Rule")
	}
	return http.StatusOK, s.st.renderRule(r, c)
}

func (s *Server) rulesCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if find(st.ev.rules, "name", str(c.body["name"])) != nil {
		return errField("name", "notification rule with this name already exists.")
	}
	f := map[string]any{"transports": []any{}, "severity": "notice", "destination_group": nil, "destination_event_user": false}
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkRule(f); code != 0 {
		return code, body
	}
	return http.StatusCreated, st.renderRule(st.add(st.ev.rules, uuid.NewString(), 0, f), c)
}

func (s *Server) rulesUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	r := st.ev.rules[c.params["pbm_uuid"]]
	if r == nil {
		return errNotFound("Notification Rule")
	}
	if n, ok := c.body["name"]; ok {
		if o := find(st.ev.rules, "name", str(n)); o != nil && o != r {
			return errField("name", "notification rule with this name already exists.")
		}
	}
	f := copyMap(r.f)
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkRule(f); code != 0 {
		return code, body
	}
	r.f = f
	return http.StatusOK, st.renderRule(r, c)
}

func (s *Server) rulesDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["pbm_uuid"]
	if st.ev.rules[id] == nil {
		return errNotFound("Notification Rule")
	}
	delete(st.ev.rules, id)
	for bid, b := range st.bindings { // bindings cascade with their target
		if str(b.f["target"]) == id {
			delete(st.bindings, bid)
		}
	}
	return http.StatusNoContent, nil
}

// ---- event matcher policies ----

const matcherModel = "authentik_policies_event_matcher.eventmatcherpolicy"

// boundTo counts the bindings that use policy id (Policy.bound_to).
func (st *store) boundTo(id string) int {
	n := 0
	for _, b := range st.bindings {
		if str(b.f["policy"]) == id {
			n++
		}
	}
	return n
}

// renderPolicyBase is the generic Policy schema (PolicyBinding.policy_obj).
func (st *store) renderPolicyBase(p *record) map[string]any {
	return map[string]any{
		"pk": p.id, "name": p.f["name"], "execution_logging": p.f["execution_logging"],
		"component": "ak-policy-event-matcher-form", "verbose_name": "Event Matcher Policy",
		"verbose_name_plural": "Event Matcher Policies", "meta_model_name": matcherModel,
		"bound_to": st.boundTo(p.id),
	}
}

func (st *store) renderMatcher(p *record) map[string]any {
	out := st.renderPolicyBase(p)
	for _, k := range []string{"action", "client_ip", "app", "model", "query"} {
		out[k] = p.f[k]
	}
	return out
}

// policyNameTaken: policy names are unique across all kinds of policies.
func (st *store) policyNameTaken(name string, self *record) bool {
	o := find(st.ev.matchers, "name", name)
	return o != nil && o != self
}

// blankToNil stores the blank choices of EventMatcherPolicy ("" in the database) as null,
// the only blank value the document's enums allow.
func blankToNil(f map[string]any) {
	for _, k := range []string{"action", "client_ip", "app", "model", "query"} {
		if v, ok := f[k].(string); ok && v == "" {
			f[k] = nil
		}
	}
}

func (s *Server) matchersList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, p := range sorted(st.ev.matchers, byField("name")) {
		if !fieldFilters(c, p, "name", "action", "app", "model", "client_ip") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(p.f["name"]), q) {
			continue
		}
		out = append(out, p)
	}
	return paginate(c, out, st.renderMatcher)
}

func (s *Server) matchersRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	p := s.st.ev.matchers[c.params["policy_uuid"]]
	if p == nil {
		return errNotFound("Event Matcher Policy")
	}
	return http.StatusOK, s.st.renderMatcher(p)
}

func (s *Server) matchersCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.policyNameTaken(str(c.body["name"]), nil) {
		return errField("name", "policy with this name already exists.")
	}
	f := map[string]any{"execution_logging": false, "action": nil, "client_ip": nil, "app": nil, "model": nil, "query": nil}
	for k, v := range c.body {
		f[k] = v
	}
	blankToNil(f)
	return http.StatusCreated, st.renderMatcher(st.add(st.ev.matchers, uuid.NewString(), 0, f))
}

func (s *Server) matchersUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.ev.matchers[c.params["policy_uuid"]]
	if p == nil {
		return errNotFound("Event Matcher Policy")
	}
	if n, ok := c.body["name"]; ok && st.policyNameTaken(str(n), p) {
		return errField("name", "policy with this name already exists.")
	}
	for k, v := range c.body {
		p.f[k] = v
	}
	blankToNil(p.f)
	return http.StatusOK, st.renderMatcher(p)
}

func (s *Server) matchersDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["policy_uuid"]
	if st.ev.matchers[id] == nil {
		return errNotFound("Event Matcher Policy")
	}
	delete(st.ev.matchers, id)
	for bid, b := range st.bindings {
		if str(b.f["policy"]) == id {
			delete(st.bindings, bid)
		}
	}
	return http.StatusNoContent, nil
}

// ---- notification webhook mappings ----

func renderNotifMapping(m *record) map[string]any {
	return map[string]any{"pk": m.id, "name": m.f["name"], "expression": m.f["expression"]}
}

// mappingNameTaken: property mapping names are unique across all kinds of mappings.
func (st *store) mappingNameTaken(name string, self *record) bool {
	if o := find(st.ev.mappings, "name", name); o != nil && o != self {
		return true
	}
	return find(st.mappings, "name", name) != nil
}

// compileMapping checks the expression's syntax on save, as authentik does (without the
// store lock: python3 runs outside it).
func compileMapping(ctx context.Context, c *call) (int, any) {
	expr, ok := c.body["expression"]
	if !ok {
		return 0, nil
	}
	if err := pyexpr.Compile(ctx, str(expr)); err != nil {
		return errField("expression", err.Error())
	}
	return 0, nil
}

func (s *Server) notifMappingsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, m := range sorted(st.ev.mappings, byField("name")) {
		if !fieldFilters(c, m, "name") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(m.f["name"]), q) {
			continue
		}
		out = append(out, m)
	}
	return paginate(c, out, renderNotifMapping)
}

func (s *Server) notifMappingsRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	m := s.st.ev.mappings[c.params["pm_uuid"]]
	if m == nil {
		return errNotFound("Webhook Mapping")
	}
	return http.StatusOK, renderNotifMapping(m)
}

func (s *Server) notifMappingsCreate(c *call) (int, any) {
	if code, body := compileMapping(c.r.Context(), c); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mappingNameTaken(str(c.body["name"]), nil) {
		return errField("name", "property mapping with this name already exists.")
	}
	f := map[string]any{"name": c.body["name"], "expression": c.body["expression"]}
	return http.StatusCreated, renderNotifMapping(st.add(st.ev.mappings, uuid.NewString(), 0, f))
}

func (s *Server) notifMappingsUpdate(c *call) (int, any) {
	if code, body := compileMapping(c.r.Context(), c); code != 0 {
		return code, body
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.ev.mappings[c.params["pm_uuid"]]
	if m == nil {
		return errNotFound("Webhook Mapping")
	}
	if n, ok := c.body["name"]; ok && st.mappingNameTaken(str(n), m) {
		return errField("name", "property mapping with this name already exists.")
	}
	for _, k := range []string{"name", "expression"} {
		if v, ok := c.body[k]; ok {
			m.f[k] = v
		}
	}
	return http.StatusOK, renderNotifMapping(m)
}

func (s *Server) notifMappingsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["pm_uuid"]
	if st.ev.mappings[id] == nil {
		return errNotFound("Webhook Mapping")
	}
	delete(st.ev.mappings, id)
	for _, t := range st.ev.transports { // on_delete=SET_DEFAULT (None)
		for _, k := range []string{"webhook_mapping_body", "webhook_mapping_headers"} {
			if str(t.f[k]) == id {
				t.f[k] = nil
			}
		}
	}
	return http.StatusNoContent, nil
}

// ---- policy bindings to rules ----

// isBindingTarget reports whether id is a PolicyBindingModel other than applications and
// flows: a notification rule.
func (st *store) isBindingTarget(id string) bool { return st.ev.rules[id] != nil }

// bindingPolicy returns the policy_obj of a binding's policy, or nil.
func (st *store) bindingPolicy(id string) map[string]any {
	if p := st.ev.matchers[id]; p != nil {
		return st.renderPolicyBase(p)
	}
	return nil
}

// ---- API tokens of other users ----

// AddAPIToken creates an API token (an authentik Token with intent "api") for an existing
// user and returns its key: requests with it act as that user, and the events they cause
// record that user, as a person editing through the API would.
func (s *Server) AddAPIToken(username string) (string, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	u := find(st.users, "username", username)
	if u == nil {
		return "", fmt.Errorf("aksim: add API token for %q: %w: user", username, ErrNotFound)
	}
	key := randomString(60)
	st.ev.tokens[key] = u.num
	return key, nil
}

// tokenUser is the pk of the user whose token authenticates r (0: none); callers hold st.mu.
func (s *Server) tokenUser(r *http.Request) int {
	_, cred, _ := cutBearer(r.Header.Get("Authorization"))
	if cred == s.opts.Token {
		return adminPK
	}
	return s.st.ev.tokens[cred]
}

// cutBearer splits "Bearer <credential>" as checkBearer reads it.
func cutBearer(h string) (typ, cred string, ok bool) {
	return strings.Cut(strings.TrimSpace(h), " ")
}

// authOptions are the request validation options: the bearer token must be the main token
// or one made by AddAPIToken.
func (s *Server) authOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			return s.checkToken(in.RequestValidationInput.Request.Header.Get("Authorization"))
		},
	}
}

// checkToken accepts the main token or one made by AddAPIToken, with authentik's messages.
func (s *Server) checkToken(header string) error {
	err := checkBearer(header, s.opts.Token)
	if ae, ok := err.(*authError); ok && ae.detail == "Token invalid/expired" {
		_, cred, _ := cutBearer(header)
		s.st.mu.Lock()
		_, known := s.st.ev.tokens[cred]
		s.st.mu.Unlock()
		if known {
			return nil
		}
	}
	return err
}
