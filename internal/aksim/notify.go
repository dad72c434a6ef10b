package aksim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/akminio/akminio/internal/pyexpr"
)

// Model events and their notifications, as authentik makes them:
//
//   - authentik/events/middleware.py (AuditMiddleware): every save of a model through a
//     request emits model_created or model_updated, every delete model_deleted, and a
//     many-to-many change of a user's or group's members model_updated; the event records
//     the request's user (get_user: username, pk, email) and the context
//     {"model": model_to_dict(instance), "http_request": {...}}.
//   - authentik/events/tasks.py: every NotificationRule is checked against the event with a
//     PolicyEngine in MODE_ANY whose empty result is False (a rule without bindings never
//     matches); a matching rule sends, for each of its transports, one notification to each
//     of destination_users() (the event's user when destination_event_user, the members of
//     destination_group), only the first when the transport has send_once. The
//     notification's body is the event's summary, "<action>: <context>" (Python's repr of
//     the context dict), and its severity the rule's.
//   - NotificationTransport.send_webhook POSTs {body, severity, user_email, user_username,
//     event_user_email, event_user_username} (user_* are the recipient's), or what
//     webhook_mapping_body returns, with the headers webhook_mapping_headers returns.
//
// Delivery is asynchronous (authentik queues it as a task): the API call that caused the
// event has answered before the webhook is sent.

// Delivery is one notification the simulator sent (or tried to) through a webhook transport.
type Delivery struct {
	Rule      string
	Transport string
	URL       string
	Action    string // the event's action
	Model     string // "<app>.<model_name>" of the event's object
	Body      any
	Headers   map[string]string
	Status    int    // the webhook's answer; 0 when it could not be sent
	Err       string // why it was not sent or not accepted
	At        time.Time
}

// Deliveries returns the notifications sent so far, in the order they were sent.
func (s *Server) Deliveries() []Delivery {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return append([]Delivery(nil), s.st.ev.delivered...)
}

// WaitDeliveries waits until no notification is being sent (or ctx ends).
func (s *Server) WaitDeliveries(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.st.ev.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// modelOf maps an API's operationId prefix to the model its objects are (app label, model
// name) and the field model_to_dict takes the name from.
var modelOf = []struct {
	prefix, app, model, nameField string
}{
	{"core_users_", "authentik_core", "user", "username"},
	{"core_groups_", "authentik_core", "group", "name"},
	{"core_applications_", "authentik_core", "application", "name"},
	{"providers_oauth2_", "authentik_providers_oauth2", "oauth2provider", "name"},
	{"propertymappings_provider_scope_", "authentik_providers_oauth2", "scopemapping", "name"},
	{"policies_bindings_", "authentik_policies", "policybinding", ""},
	{"events_transports_", "authentik_events", "notificationtransport", "name"},
	{"events_rules_", "authentik_events", "notificationrule", "name"},
	{"policies_event_matcher_", "authentik_policies_event_matcher", "eventmatcherpolicy", "name"},
	{"propertymappings_notification_", "authentik_events", "notificationwebhookmapping", "name"},
}

// writeEvent says which model event a successful operation emits ("" for none).
func writeEvent(opID string, status int) (action string, idx int) {
	idx = -1
	for i, m := range modelOf {
		if strings.HasPrefix(opID, m.prefix) {
			idx = i
			break
		}
	}
	if idx < 0 || status >= 300 {
		return "", -1
	}
	rest := strings.TrimPrefix(opID, modelOf[idx].prefix)
	switch rest {
	case "create":
		return "model_created", idx
	case "update", "partial_update", "add_user_create", "remove_user_create":
		return "model_updated", idx
	case "destroy":
		return "model_deleted", idx
	}
	return "", -1
}

// beforeWrite captures what a delete needs for its event (the object as retrieved) before
// the object goes; nil for other operations.
func (s *Server) beforeWrite(opID string, c *call) map[string]any {
	if !strings.HasSuffix(opID, "_destroy") {
		return nil
	}
	if a, _ := writeEvent(opID, 204); a == "" {
		return nil
	}
	get := apiHandlers[strings.TrimSuffix(opID, "_destroy")+"_retrieve"]
	if get == nil {
		return nil
	}
	if status, body := get(s, c); status == http.StatusOK {
		m, _ := body.(map[string]any)
		return m
	}
	return nil
}

// simEvent is an authentik Event, as much of it as rules and transports look at.
type simEvent struct {
	action   string
	app      string
	context  pyDict
	model    string // app.model_name
	clientIP string
	user     pyDict // get_user(): username, pk, email
	userPK   int
	userName string
	userMail string
}

// summary is Event.summary: "<action>: <repr(context)>".
func (e *simEvent) summary() string { return e.action + ": " + e.context.repr() }

// afterWrite emits the model event of a successful write and queues its notifications.
func (s *Server) afterWrite(opID string, c *call, status int, body any, pre map[string]any) {
	action, idx := writeEvent(opID, status)
	if action == "" {
		return
	}
	m := modelOf[idx]
	obj := pre
	if obj == nil {
		obj, _ = body.(map[string]any)
	}
	if obj == nil && strings.HasPrefix(opID, "core_groups_") { // add_user/remove_user answer 204
		s.st.mu.Lock()
		if g := s.st.groups[c.params["group_uuid"]]; g != nil {
			obj = map[string]any{"pk": g.id, "name": g.f["name"]}
		}
		s.st.mu.Unlock()
	}
	if obj == nil {
		return
	}
	pk := obj["pk"]
	if id, ok := pk.(string); ok { // sanitize_item renders a UUID as its hex form
		if u, err := uuid.Parse(id); err == nil {
			pk = strings.ReplaceAll(u.String(), "-", "")
		}
	}
	name := str(obj[m.nameField])
	if m.nameField == "" {
		name = fmt.Sprintf("Binding from %s #%v to %s", str(obj["target"]), obj["order"], bindingSubject(obj))
	}
	ev := &simEvent{
		action: action, app: "authentik.events.middleware", model: m.app + "." + m.model,
		clientIP: clientIP(c.r),
		context: pyDict{
			{"model", pyDict{{"app", m.app}, {"model_name", m.model}, {"pk", pk}, {"name", name}}},
			{"http_request", pyDict{{"path", c.r.URL.Path}, {"method", c.r.Method}, {"args", pyDict{}},
				{"user_agent", c.r.UserAgent()}, {"request_id", strings.ReplaceAll(uuid.NewString(), "-", "")}}},
		},
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if u := s.st.userByPK(s.tokenUser(c.r)); u != nil {
		ev.userPK, ev.userName, ev.userMail = u.num, str(u.f["username"]), str(u.f["email"])
		ev.user = pyDict{{"username", ev.userName}, {"pk", ev.userPK}, {"email", ev.userMail}}
	}
	jobs := s.st.notifications(ev)
	if len(jobs) == 0 {
		return
	}
	s.st.ev.inflight.Add(1)
	go func() {
		defer s.st.ev.inflight.Done()
		for _, j := range jobs {
			s.send(j)
		}
	}()
}

// bindingSubject names what a binding binds, as PolicyBinding.__str__ does.
func bindingSubject(b map[string]any) string {
	for _, k := range []string{"policy", "group", "user"} {
		if v := b[k]; v != nil {
			return fmt.Sprintf("%s %v", k, v)
		}
	}
	return "nothing"
}

// clientIP is the request's remote address without the port.
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// notifyJob is one notification to send through one webhook transport.
type notifyJob struct {
	rule, transport, url string
	ev                   *simEvent
	severity             string
	recipient            *pyexpr.User
	recipientName        string
	recipientMail        string
	bodyExpr, headerExpr string // "" when the transport has no such mapping
}

// notifications checks every rule against ev (event_trigger_handler) and returns the
// notifications to send (notification_transport); callers hold st.mu.
func (st *store) notifications(ev *simEvent) []notifyJob {
	var jobs []notifyJob
	for _, rule := range sorted(st.ev.rules, byField("name")) {
		if !st.ruleMatches(rule, ev) {
			continue
		}
		var users []*record
		if rule.f["destination_event_user"] == true && ev.userPK != 0 {
			if u := st.userByPK(ev.userPK); u != nil {
				users = append(users, u)
			}
		}
		if g := st.groups[str(rule.f["destination_group"])]; g != nil {
			for _, pk := range st.groupUsers(g.id) {
				users = append(users, st.userByPK(pk))
			}
		}
		for _, tid := range strList(rule.f["transports"]) {
			t := st.ev.transports[tid]
			if t == nil || str(t.f["mode"]) != "webhook" {
				continue // local, email and Slack transports deliver nothing over HTTP here
			}
			for _, u := range users {
				j := notifyJob{rule: str(rule.f["name"]), transport: str(t.f["name"]), url: str(t.f["webhook_url"]),
					ev: ev, severity: str(rule.f["severity"]), recipient: st.pyUser(u),
					recipientName: str(u.f["username"]), recipientMail: str(u.f["email"])}
				if m := st.ev.mappings[str(t.f["webhook_mapping_body"])]; m != nil {
					j.bodyExpr = str(m.f["expression"])
				}
				if m := st.ev.mappings[str(t.f["webhook_mapping_headers"])]; m != nil {
					j.headerExpr = str(m.f["expression"])
				}
				jobs = append(jobs, j)
				if t.f["send_once"] == true {
					break
				}
			}
		}
	}
	return jobs
}

// ruleMatches runs the rule's bindings as a PolicyEngine in MODE_ANY with empty_result
// False: at least one enabled binding must pass.
func (st *store) ruleMatches(rule *record, ev *simEvent) bool {
	for _, b := range st.sortedBindings() {
		if str(b.f["target"]) != rule.id || b.f["enabled"] != true {
			continue
		}
		pass := false
		switch {
		case b.f["policy"] != nil:
			if p := st.ev.matchers[str(b.f["policy"])]; p != nil {
				pass = matcherPasses(p, ev)
			}
		case b.f["group"] != nil:
			for _, g := range st.allGroups(ev.userPK) {
				pass = pass || g.id == str(b.f["group"])
			}
		case b.f["user"] != nil:
			n, _ := intOf(b.f["user"])
			pass = n == ev.userPK && n != 0
		}
		if b.f["negate"] == true {
			pass = !pass
		}
		if pass {
			return true
		}
	}
	return false
}

// matcherPasses is EventMatcherPolicy.passes: every criterion that is set must match (none
// set: it passes). An AKQL query is not simulated: a policy with one never passes.
func matcherPasses(p *record, ev *simEvent) bool {
	if q := str(p.f["query"]); q != "" {
		return false
	}
	checks := []struct{ want, got string }{
		{str(p.f["action"]), ev.action},
		{str(p.f["client_ip"]), ev.clientIP},
		{str(p.f["app"]), ev.app},
		{str(p.f["model"]), ev.model},
	}
	for _, c := range checks {
		if c.want != "" && c.want != c.got {
			return false
		}
	}
	return true
}

// webhookUserAgent is what authentik's get_http_session sends.
const webhookUserAgent = "authentik@2026.5.0"

// send delivers one notification (NotificationTransport.send_webhook) and records it.
func (s *Server) send(j notifyJob) {
	select {
	case <-s.closed:
		return
	default:
	}
	d := Delivery{Rule: j.rule, Transport: j.transport, URL: j.url, Action: j.ev.action, Model: j.ev.model, At: time.Now().UTC()}
	defer func() {
		s.st.mu.Lock()
		s.st.ev.delivered = append(s.st.ev.delivered, d)
		s.st.mu.Unlock()
	}()
	var body any = map[string]any{
		"body": j.ev.summary(), "severity": j.severity,
		"user_email": j.recipientMail, "user_username": j.recipientName,
	}
	if j.ev.user != nil {
		m := body.(map[string]any)
		m["event_user_email"], m["event_user_username"] = j.ev.userMail, j.ev.userName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if j.bodyExpr != "" {
		v, err := s.evalMapping(ctx, j.bodyExpr, j)
		if err != nil {
			d.Err = "webhook_mapping_body: " + err.Error()
			s.logf("aksim: notification %q: %s", j.rule, d.Err)
			return
		}
		body = v
	}
	d.Body = body
	d.Headers = map[string]string{}
	if j.headerExpr != "" {
		v, err := s.evalMapping(ctx, j.headerExpr, j)
		if err == nil {
			err = headersOf(v, d.Headers)
		}
		if err != nil {
			d.Err = "webhook_mapping_headers: " + err.Error()
			s.logf("aksim: notification %q: %s", j.rule, d.Err)
			return
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		d.Err = err.Error()
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(raw))
	if err != nil {
		d.Err = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", webhookUserAgent)
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.Err = err.Error()
		s.logf("aksim: notification %q to %s: %v", j.rule, j.url, err)
		return
	}
	_ = resp.Body.Close()
	d.Status = resp.StatusCode
	if resp.StatusCode >= 400 {
		d.Err = "HTTP " + strconv.Itoa(resp.StatusCode)
		s.logf("aksim: notification %q to %s answered %d", j.rule, j.url, resp.StatusCode)
	}
}

// evalMapping evaluates a webhook mapping for the job's recipient, through the cache.
func (s *Server) evalMapping(ctx context.Context, expr string, j notifyJob) (any, error) {
	key := expr + "\x00" + j.recipientName
	s.st.mu.Lock()
	v, ok := s.st.ev.mapped[key]
	s.st.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := pyexpr.Evaluate(ctx, expr, pyexpr.Input{User: j.recipient})
	if err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	s.st.ev.mapped[key] = v
	s.st.mu.Unlock()
	return v, nil
}

// headersOf copies a header mapping's result: a dict of strings, as requests needs.
func headersOf(v any, out map[string]string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("the mapping returned %T, not a dict", v)
	}
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("header %q: value is %T, not a string", k, x)
		}
		out[k] = s
	}
	return nil
}

// pyDict is a Python dict with its insertion order, for Python's repr.
type pyDict []pyItem

type pyItem struct {
	k string
	v any
}

// repr renders the dict as Python's repr does (str(dict)).
func (d pyDict) repr() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, it := range d {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyStr(it.k))
		b.WriteString(": ")
		b.WriteString(pyRepr(it.v))
	}
	b.WriteByte('}')
	return b.String()
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return pyStr(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		if n, ok := intOf(x); ok {
			return strconv.Itoa(n)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case pyDict:
		return x.repr()
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := pyDict{}
		for _, k := range keys {
			d = append(d, pyItem{k, x[k]})
		}
		return d.repr()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return pyStr(fmt.Sprint(v))
}

// pyStr is Python's repr of a str: single quotes unless the text has a single quote and no
// double quote; backslash escapes for the quote, backslash and control characters.
func pyStr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
