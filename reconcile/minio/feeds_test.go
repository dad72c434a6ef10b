package minio

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/miniotest"
	"github.com/akminio/akminio/reconcile"
)

// TestAuditFeedOnRealServer: the audit_webhook:akminio target is created without a restart,
// reads back as written (auth_token included), makes the real server POST audit entries of
// admin calls with the token, is repaired after a hand edit, and is removed.
func TestAuditFeedOnRealServer(t *testing.T) {
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	ctx := testCtx(t)
	type entry struct {
		auth string
		api  string
	}
	got := make(chan entry, 1000)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var e struct {
			API struct {
				Name string `json:"name"`
			} `json:"api"`
		}
		_ = json.Unmarshal(raw, &e)
		got <- entry{r.Header.Get("Authorization"), e.API.Name}
	}))
	t.Cleanup(hook.Close)
	d := reconcile.DesiredFeeds{Install: true, MinIOURL: hook.URL + reconcile.MinIOHook, Token: config.Secret("a-hook-token-of-32-characters-long")}

	obs, err := a.ObserveAudit(ctx)
	if err != nil || obs != nil {
		t.Fatalf("fresh server: %+v, %v", obs, err)
	}
	var st reconcile.State
	changes := reconcile.PlanFeeds(d, reconcile.ObservedFeeds{}, obs, st)
	changes = changes[len(changes)-1:] // the MinIO one
	created, _, err := a.ApplyAudit(ctx, d, &obs, changes, nil)
	if err != nil || len(created) != 1 {
		t.Fatalf("create: %v %v", created, err)
	}
	st.CreatedFeeds = created
	if obs, err = a.ObserveAudit(ctx); err != nil || obs == nil || obs.Endpoint != d.MinIOURL || obs.AuthToken.Reveal() != d.Token.Reveal() || obs.Enable != "on" {
		t.Fatalf("read back: %+v, %v", obs, err)
	}

	if err := a.adm.AddCannedPolicy(ctx, "feed-test", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::x/*"]}]}`)); err != nil {
		t.Fatal(err)
	}
	for e := range got {
		if e.api != "AddCannedPolicy" {
			continue
		}
		if e.auth != d.Token.Reveal() && e.auth != "Bearer "+d.Token.Reveal() {
			t.Fatalf("audit entry sent with Authorization %q", e.auth)
		}
		break
	}

	// A hand edit of the endpoint is drift; apply repairs it.
	if _, err := a.adm.SetConfigKV(ctx, reconcile.AuditTarget+` endpoint="http://127.0.0.1:1/elsewhere"`); err != nil {
		t.Fatal(err)
	}
	obs, err = a.ObserveAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes = reconcile.PlanFeeds(d, reconcile.ObservedFeeds{}, obs, st)
	c := changes[len(changes)-1]
	if c.Kind != reconcile.KindAuditWebhook || c.Action != reconcile.ActionUpdate || len(c.Fields) != 1 || c.Fields[0] != "endpoint" {
		t.Fatalf("plan after hand edit: %+v", c)
	}
	if _, _, err := a.ApplyAudit(ctx, d, &obs, []reconcile.Change{c}, nil); err != nil {
		t.Fatal(err)
	}
	if obs, err = a.ObserveAudit(ctx); err != nil || obs.Endpoint != d.MinIOURL {
		t.Fatalf("after repair: %+v, %v", obs, err)
	}

	d.Install = false
	changes = reconcile.PlanFeeds(d, reconcile.ObservedFeeds{}, obs, st)
	if len(changes) != 1 || changes[0].Action != reconcile.ActionDelete {
		t.Fatalf("removal plan: %+v", changes)
	}
	if _, deleted, err := a.ApplyAudit(ctx, d, &obs, changes, nil); err != nil || len(deleted) != 1 {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if obs, err = a.ObserveAudit(ctx); err != nil || obs != nil {
		t.Fatalf("after delete: %+v, %v", obs, err)
	}
}
