package aksim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

// receiver records webhook POSTs.
type receiver struct {
	mu   sync.Mutex
	got  []received
	srv  *httptest.Server
	seen chan struct{}
}

type received struct {
	header http.Header
	body   map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{seen: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		var b map[string]any
		_ = json.Unmarshal(raw, &b)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), b})
		r.mu.Unlock()
		r.seen <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// clientAs is a Go client using another token.
func clientAs(s *aksim.Server, token string) *api.APIClient {
	cfg := api.NewConfiguration()
	cfg.Servers = api.ServerConfigurations{{URL: s.URL() + "/api/v3"}}
	cfg.AddDefaultHeader("Authorization", "Bearer "+token)
	return api.NewAPIClient(cfg)
}

// wireRule creates what akminio's feed is: a header mapping, a webhook transport, a rule
// sending to the event's user, and an event matcher on scope mappings bound to the rule.
func wireRule(t *testing.T, c *api.APIClient, url string) (transport string) {
	ctx := context.Background()
	hm, _, err := c.PropertymappingsAPI.PropertymappingsNotificationCreate(ctx).NotificationWebhookMappingRequest(
		*api.NewNotificationWebhookMappingRequest("hdr", `return {"Authorization": "Bearer hook-secret"}`)).Execute()
	must(t, err)
	treq := api.NewNotificationTransportRequest("akminio")
	treq.SetMode(api.TRANSPORTMODEENUM_WEBHOOK)
	treq.SetWebhookUrl(url)
	treq.SetWebhookMappingHeaders(hm.Pk)
	treq.SetSendOnce(true)
	tr, _, err := c.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(*treq).Execute()
	must(t, err)
	rreq := api.NewNotificationRuleRequest("akminio")
	rreq.SetTransports([]string{tr.Pk})
	rreq.SetDestinationEventUser(true)
	rreq.SetSeverity(api.SEVERITYENUM_NOTICE)
	rule, _, err := c.EventsAPI.EventsRulesCreate(ctx).NotificationRuleRequest(*rreq).Execute()
	must(t, err)
	mreq := api.NewEventMatcherPolicyRequest("akminio scope mappings")
	mreq.SetModel(api.MODELENUM_AUTHENTIK_PROVIDERS_OAUTH2_SCOPEMAPPING)
	pol, _, err := c.PoliciesAPI.PoliciesEventMatcherCreate(ctx).EventMatcherPolicyRequest(*mreq).Execute()
	must(t, err)
	breq := api.NewPolicyBindingRequest(rule.Pk, 0)
	breq.SetPolicy(pol.Pk)
	_, _, err = c.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(*breq).Execute()
	must(t, err)
	return tr.Pk
}

func TestNotificationsFollowAuthentik(t *testing.T) {
	s := aksimtest.Start(t)
	admin := aksimtest.Client(s)
	rcv := newReceiver(t)
	wireRule(t, admin, rcv.srv.URL+"/hooks/authentik")
	ctx := context.Background()

	_, err := s.AddUser("alice", "alice@example.com")
	must(t, err)
	alice, err := s.AddAPIToken("alice")
	must(t, err)
	me, _, err := clientAs(s, alice).CoreAPI.CoreUsersMeRetrieve(ctx).Execute()
	must(t, err)
	if me.User.Username != "alice" {
		t.Fatalf("users/me with alice's token = %q", me.User.Username)
	}

	// A scope mapping created and edited by alice: two notifications, to alice.
	m, _, err := clientAs(s, alice).PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).ScopeMappingRequest(
		*api.NewScopeMappingRequest("m", "return None", "minio")).Execute()
	must(t, err)
	patch := api.NewPatchedScopeMappingRequest()
	patch.SetExpression("return {}")
	_, _, err = clientAs(s, alice).PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(ctx, m.Pk).PatchedScopeMappingRequest(*patch).Execute()
	must(t, err)
	// An unrelated object: no notification.
	_, _, err = admin.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(*api.NewGroupRequest("unrelated")).Execute()
	must(t, err)
	must(t, s.WaitDeliveries(ctx))

	got := rcv.all()
	if len(got) != 2 {
		t.Fatalf("got %d webhook posts, want 2 (created, updated): %+v", len(got), got)
	}
	for i, action := range []string{"model_created", "model_updated"} {
		g := got[i]
		if h := g.header.Get("Authorization"); h != "Bearer hook-secret" {
			t.Errorf("post %d: Authorization %q, want the header mapping's", i, h)
		}
		body, _ := g.body["body"].(string)
		want := action + ": {'model': {'app': 'authentik_providers_oauth2', 'model_name': 'scopemapping', 'pk': '"
		if !strings.HasPrefix(body, want) || !strings.Contains(body, "'name': 'm'}") {
			t.Errorf("post %d: body %q, want the event summary starting %q", i, body, want)
		}
		if g.body["event_user_username"] != "alice" || g.body["user_username"] != "alice" || g.body["severity"] != "notice" {
			t.Errorf("post %d: %v", i, g.body)
		}
	}

	// Deleting it notifies too; a rule whose bindings are all gone matches nothing.
	_, err = admin.PropertymappingsAPI.PropertymappingsProviderScopeDestroy(ctx, m.Pk).Execute()
	must(t, err)
	must(t, s.WaitDeliveries(ctx))
	if got := rcv.all(); len(got) != 3 || !strings.HasPrefix(got[2].body["body"].(string), "model_deleted: ") ||
		got[2].body["event_user_username"] != "akadmin" {
		t.Fatalf("after delete: %+v", got)
	}
	if d := s.Deliveries(); len(d) != 3 || d[2].Status != http.StatusOK || d[2].Model != "authentik_providers_oauth2.scopemapping" {
		t.Fatalf("deliveries: %+v", d)
	}
}

func TestNotificationRuleNeedsBindingAndRecipient(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	rcv := newReceiver(t)
	ctx := context.Background()
	treq := api.NewNotificationTransportRequest("t")
	treq.SetMode(api.TRANSPORTMODEENUM_WEBHOOK)
	treq.SetWebhookUrl(rcv.srv.URL)
	tr, _, err := c.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(*treq).Execute()
	must(t, err)
	// No bindings: never matches. Bound but no destination: nobody to send to.
	rreq := api.NewNotificationRuleRequest("no-bindings")
	rreq.SetTransports([]string{tr.Pk})
	rreq.SetDestinationEventUser(true)
	_, _, err = c.EventsAPI.EventsRulesCreate(ctx).NotificationRuleRequest(*rreq).Execute()
	must(t, err)
	rreq = api.NewNotificationRuleRequest("no-destination")
	rreq.SetTransports([]string{tr.Pk})
	rule, _, err := c.EventsAPI.EventsRulesCreate(ctx).NotificationRuleRequest(*rreq).Execute()
	must(t, err)
	pol, _, err := c.PoliciesAPI.PoliciesEventMatcherCreate(ctx).EventMatcherPolicyRequest(*api.NewEventMatcherPolicyRequest("all")).Execute()
	must(t, err)
	breq := api.NewPolicyBindingRequest(rule.Pk, 0)
	breq.SetPolicy(pol.Pk)
	_, _, err = c.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(*breq).Execute()
	must(t, err)
	_, _, err = c.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(*api.NewGroupRequest("g")).Execute()
	must(t, err)
	must(t, s.WaitDeliveries(ctx))
	if got := rcv.all(); len(got) != 0 {
		t.Fatalf("got %d posts, want none", len(got))
	}

	// A webhook transport needs a URL; an unknown mapping is refused.
	code, body := rawCall(t, s, "POST", "/api/v3/events/transports/", map[string]any{"name": "x", "mode": "webhook"})
	if code != 400 || body["webhook_url"] == nil {
		t.Fatalf("webhook without url: %d %v", code, body)
	}
	code, body = rawCall(t, s, "POST", "/api/v3/events/transports/", map[string]any{"name": "x", "mode": "webhook",
		"webhook_url": "http://example.invalid/", "webhook_mapping_headers": "00000000-0000-0000-0000-000000000000"})
	if code != 400 || body["webhook_mapping_headers"] == nil {
		t.Fatalf("unknown mapping: %d %v", code, body)
	}
	// A header mapping's expression is compiled on save.
	code, body = rawCall(t, s, "POST", "/api/v3/propertymappings/notification/", map[string]any{"name": "bad", "expression": "return {"})
	if code != 400 || body["expression"] == nil {
		t.Fatalf("syntax error: %d %v", code, body)
	}
}
