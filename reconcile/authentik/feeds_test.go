package authentik

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// TestFeedsInstallRepairAndRemove: the plan of a fresh authentik creates the feed; after
// applying it the plan is clean and a model change by someone else reaches the hook with the
// bearer token; a hand edit of the transport URL and a deleted binding are drift that one
// apply repairs; with install off only the objects akminio created are deleted.
func TestFeedsInstallRepairAndRemove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	type post struct{ auth, body string }
	got := make(chan post, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- post{r.Header.Get("Authorization"), string(b)}
	}))
	t.Cleanup(hook.Close)
	d := reconcile.DesiredFeeds{Install: true, AuthentikURL: hook.URL + reconcile.AuthentikHook,
		MinIOURL: "http://unused" + reconcile.MinIOHook, Token: config.Secret("a-hook-token-of-32-characters-long")}

	var st reconcile.State
	apply := func(want int) {
		t.Helper()
		obs, err := f.ad.ObserveFeeds(ctx)
		must(t, err)
		changes := reconcile.PlanFeeds(d, obs, &reconcile.ObservedAuditWebhook{Enable: "on", Endpoint: d.MinIOURL, AuthToken: d.Token}, st)
		if len(changes) != want {
			t.Fatalf("plan has %d changes, want %d: %+v", len(changes), want, changes)
		}
		created, deleted, err := f.ad.ApplyFeeds(ctx, d, &obs, changes, nil)
		must(t, err)
		st.CreatedFeeds = append(st.CreatedFeeds, created...)
		for _, k := range deleted {
			st.CreatedFeeds = removeString(st.CreatedFeeds, k)
		}
		obs, err = f.ad.ObserveFeeds(ctx)
		must(t, err)
		if left := reconcile.PlanFeeds(d, obs, &reconcile.ObservedAuditWebhook{Enable: "on", Endpoint: d.MinIOURL, AuthToken: d.Token}, st); len(left) != 0 {
			t.Fatalf("drift left after apply: %+v", left)
		}
	}
	apply(3 + len(reconcile.WatchedModels)) // mapping, transport, matchers, rule
	if len(st.CreatedFeeds) != 3+len(reconcile.WatchedModels) {
		t.Fatalf("created feeds recorded: %v", st.CreatedFeeds)
	}

	// A person edits a group through the API: the hook gets authentik's body and the token.
	_, err := f.sim.AddUser("ops", "ops@example.com")
	must(t, err)
	opsToken, err := f.sim.AddAPIToken("ops")
	must(t, err)
	ops := api.NewConfiguration()
	ops.Servers = api.ServerConfigurations{{URL: f.url + "/api/v3"}}
	ops.AddDefaultHeader("Authorization", "Bearer "+opsToken)
	_, _, err = api.NewAPIClient(ops).CoreAPI.CoreGroupsCreate(ctx).GroupRequest(api.GroupRequest{Name: "Minio admins"}).Execute()
	must(t, err)
	var p post
	for p = range got { // the feed's own bindings were notified too, asynchronously
		if strings.Contains(p.body, "'model_name': 'group'") {
			break
		}
	}
	if p.auth != "Bearer "+d.Token.Reveal() || !strings.Contains(p.body, `model_created: {'model': {'app': 'authentik_core', 'model_name': 'group'`) ||
		!strings.Contains(p.body, `"event_user_username":"ops"`) {
		t.Fatalf("hook got %+v", p)
	}

	// Hand edits: the transport's URL, a binding of the rule removed.
	obs, err := f.ad.ObserveFeeds(ctx)
	must(t, err)
	_, _, err = f.raw.EventsAPI.EventsTransportsPartialUpdate(ctx, obs.Transport.PK).PatchedNotificationTransportRequest(
		api.PatchedNotificationTransportRequest{WebhookUrl: api.PtrString("http://elsewhere.example/")}).Execute()
	must(t, err)
	_, err = f.raw.PoliciesAPI.PoliciesBindingsDestroy(ctx, obs.Rule.Bindings[0].PK).Execute()
	must(t, err)
	obs, err = f.ad.ObserveFeeds(ctx)
	must(t, err)
	changes := reconcile.PlanFeeds(d, obs, nil, st)
	if len(changes) != 3 || changes[0].Kind != reconcile.KindTransport || strings.Join(changes[0].Fields, ",") != "webhook_url" ||
		changes[1].Kind != reconcile.KindRule || strings.Join(changes[1].Fields, ",") != "policy_bindings" ||
		changes[2].Kind != reconcile.KindAuditWebhook || changes[2].Action != reconcile.ActionCreate {
		t.Fatalf("plan after hand edits: %+v", changes)
	}
	apply(2)

	// An operator's own transport of another name is never touched; with install off,
	// akminio's objects go.
	tr := api.NotificationTransportRequest{Name: "ops-slack"}
	_, _, err = f.raw.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(tr).Execute()
	must(t, err)
	d.Install = false
	obs, err = f.ad.ObserveFeeds(ctx)
	must(t, err)
	changes = reconcile.PlanFeeds(d, obs, nil, st)
	if len(changes) != 3+len(reconcile.WatchedModels) || changes[0].Kind != reconcile.KindRule || changes[0].Action != reconcile.ActionDelete {
		t.Fatalf("removal plan: %+v", changes)
	}
	_, deleted, err := f.ad.ApplyFeeds(ctx, d, &obs, changes, nil)
	must(t, err)
	if len(deleted) != len(changes) {
		t.Fatalf("deleted %v", deleted)
	}
	l, _, err := f.raw.EventsAPI.EventsTransportsList(ctx).Execute()
	must(t, err)
	if len(l.Results) != 1 || l.Results[0].Name != "ops-slack" {
		t.Fatalf("transports left: %+v", l.Results)
	}
	// Objects named like akminio's but not created by it are not deleted.
	obs, err = f.ad.ObserveFeeds(ctx)
	must(t, err)
	_, _, err = f.raw.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(api.NotificationTransportRequest{Name: reconcile.FeedName}).Execute()
	must(t, err)
	obs, err = f.ad.ObserveFeeds(ctx)
	must(t, err)
	if changes := reconcile.PlanFeeds(d, obs, nil, reconcile.State{}); len(changes) != 0 {
		t.Fatalf("plan deletes what akminio did not create: %+v", changes)
	}
}

func removeString(l []string, s string) []string {
	out := l[:0]
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
