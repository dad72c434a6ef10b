package minio

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/miniotest"
	"github.com/akminio/akminio/reconcile"
)

// builtinPolicies are the canned policies every MinIO lists.
var builtinPolicies = []string{"consoleAdmin", "diagnostics", "readonly", "readwrite", "writeonly"}

// discovery serves a minimal OpenID discovery document and its JWKS, as MinIO fetches them
// when identity_openid is written and when it starts. It returns the config_url.
func discovery(t *testing.T) (configURL string, srv *httptest.Server) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL + "/", "jwks_uri": srv.URL + "/jwks",
			"authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"userinfo_endpoint": srv.URL + "/userinfo", "scopes_supported": []string{"openid", "profile"},
			"response_types_supported": []string{"code"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "test", Algorithm: "RS256", Use: "sig"}}})
	})
	return srv.URL + "/.well-known/openid-configuration", srv
}

// counter counts the admin requests an Adapter sends.
type counter struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func newAdapter(t *testing.T, s *miniotest.Server) (*Adapter, *counter) {
	t.Helper()
	c := &counter{}
	a, err := New(config.MinIO{
		Endpoint:  s.Endpoint,
		AccessKey: config.Secret(s.AccessKey),
		SecretKey: config.Secret(s.SecretKey),
		Timeout:   10 * time.Second,
	}, WithRoundTripper(func(rt http.RoundTripper) http.RoundTripper { c.next = rt; return c }))
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// desired is a Desired with the identity_openid settings used by these tests.
func desired(target, configURL string) *reconcile.Desired {
	return &reconcile.Desired{
		Policies: map[string][]byte{},
		OpenID: reconcile.OpenIDSettings{Target: target, ConfigURL: configURL, ClaimName: "policy",
			Scopes: []string{"openid", "profile"}, DisplayName: "Log in with authentik"},
	}
}

func TestObserveEmptyServer(t *testing.T) {
	s := miniotest.Start(t)
	a, n := newAdapter(t, s)
	st, err := a.Observe(testCtx(t), desired("identity_openid", "http://unused"))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(st.Policies)); !slices.Equal(got, builtinPolicies) {
		t.Errorf("policies = %v, want the built-ins %v", got, builtinPolicies)
	}
	if st.OpenID != nil {
		t.Errorf("OpenID = %+v, want nil on a fresh server", st.OpenID)
	}
	if got := n.n.Load(); got != 2 {
		t.Errorf("Observe sent %d requests, want 2", got)
	}
}

// statements reads a policy document into comparable statements.
func statements(t *testing.T, doc []byte) []string {
	t.Helper()
	var p struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	var out []string
	for _, s := range p.Statement {
		slices.Sort(s.Action)
		slices.Sort(s.Resource)
		out = append(out, s.Effect+" "+strings.Join(s.Action, ",")+" on "+strings.Join(s.Resource, ","))
	}
	return out
}

func policyDoc(actions ...string) []byte {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Action": actions, "Resource": []string{"arn:aws:s3:::data/*"}}}})
	return b
}

func TestPolicyLifecycle(t *testing.T) {
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	ctx := testCtx(t)
	d := desired("identity_openid", "http://unused")
	obs := &reconcile.Observed{}
	var applied []string
	done := func(c reconcile.Change) { applied = append(applied, string(c.Action)+" "+c.Name) }
	change := func(action reconcile.Action) []reconcile.Change {
		return []reconcile.Change{
			{System: reconcile.SystemMinIO, Action: action, Kind: reconcile.KindPolicy, Name: "akm-data"},
			{System: reconcile.SystemMinIO, Action: action, Kind: reconcile.KindPolicy, Name: "blocked", Blocked: "external"},
			{System: reconcile.SystemAuthentik, Action: action, Kind: reconcile.KindGroup, Name: "not-minio"},
		}
	}
	readBack := func() []string {
		st, err := a.Observe(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if doc, ok := st.Policies["akm-data"]; ok {
			return statements(t, doc)
		}
		return nil
	}

	d.Policies["akm-data"] = policyDoc("s3:GetObject")
	w, err := a.Apply(ctx, d, obs, change(reconcile.ActionCreate), done)
	if err != nil || w.Restart {
		t.Fatalf("create: restart=%v err=%v", w.Restart, err)
	}
	if got, want := readBack(), []string{"Allow s3:GetObject on arn:aws:s3:::data/*"}; !slices.Equal(got, want) {
		t.Errorf("after create: %v, want %v", got, want)
	}
	if !slices.Equal(w.Created, []string{"akm-data"}) || obs.MinIO.Policies["akm-data"] == nil || len(obs.State.CreatedPolicies) != 0 {
		t.Errorf("after create: reported created=%v, registry=%v (the engine's alone), policies=%v",
			w.Created, obs.State.CreatedPolicies, slices.Collect(maps.Keys(obs.MinIO.Policies)))
	}

	d.Policies["akm-data"] = policyDoc("s3:GetObject", "s3:PutObject")
	if w, err := a.Apply(ctx, d, obs, change(reconcile.ActionUpdate), done); err != nil || len(w.Created)+len(w.Deleted) != 0 {
		t.Fatalf("update: created %v, deleted %v, err %v; want an update to own nothing new", w.Created, w.Deleted, err)
	}
	if got, want := readBack(), []string{"Allow s3:GetObject,s3:PutObject on arn:aws:s3:::data/*"}; !slices.Equal(got, want) {
		t.Errorf("after update: %v, want %v", got, want)
	}

	for range 2 { // removing a policy that is gone already succeeds
		w, err := a.Apply(ctx, d, obs, change(reconcile.ActionDelete), done)
		if err != nil || !slices.Equal(w.Deleted, []string{"akm-data"}) {
			t.Fatalf("delete: deleted %v, err %v", w.Deleted, err)
		}
	}
	if got := readBack(); got != nil {
		t.Errorf("after delete: still there: %v", got)
	}
	if obs.MinIO.Policies["akm-data"] != nil {
		t.Errorf("obs after delete still holds the policy")
	}
	want := []string{"create akm-data", "update akm-data", "delete akm-data", "delete akm-data"}
	if !slices.Equal(applied, want) {
		t.Errorf("done called for %v, want %v (blocked and authentik changes skipped)", applied, want)
	}
}

func TestApplyStopsAtFirstError(t *testing.T) {
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	d := desired("identity_openid", "http://unused")
	d.Policies["bad"] = []byte(`{"Version":"2012-10-17","Statement":"not a statement"}`)
	d.Policies["good"] = policyDoc("s3:GetObject")
	var applied []string
	_, err := a.Apply(testCtx(t), d, &reconcile.Observed{}, []reconcile.Change{
		{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate, Kind: reconcile.KindPolicy, Name: "bad"},
		{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate, Kind: reconcile.KindPolicy, Name: "good"},
	}, func(c reconcile.Change) { applied = append(applied, c.Name) })
	if err == nil || !strings.Contains(err.Error(), `minio: add policy "bad"`) {
		t.Fatalf("err = %v, want it to name the policy", err)
	}
	if len(applied) != 0 {
		t.Errorf("done called for %v after a failure", applied)
	}
	st, err := a.Observe(testCtx(t), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Policies["good"]; ok {
		t.Error(`"good" was written after "bad" failed`)
	}
}

// TestRequestsCarryTheUserAgentMark: the adapter marks every request itself, with the
// version it is given; a hand-built adapter gets the mark too, so MinIO's audit log shows
// every akminio write as akminio's.
func TestRequestsCarryTheUserAgentMark(t *testing.T) {
	s := miniotest.Start(t)
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithVersion("v9.9.9")}, "akminio/v9.9.9 "},
		{nil, reconcile.OwnUserAgent},
	} {
		var seen, marked atomic.Int32
		wrap := WithRoundTripper(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				seen.Add(1)
				if strings.HasPrefix(r.Header.Get("User-Agent"), tc.want) {
					marked.Add(1)
				}
				return rt.RoundTrip(r)
			})
		})
		a, err := New(config.MinIO{Endpoint: s.Endpoint, AccessKey: config.Secret(s.AccessKey),
			SecretKey: config.Secret(s.SecretKey), Timeout: 10 * time.Second}, append(tc.opts, wrap)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Observe(testCtx(t), desired("identity_openid", "http://unused")); err != nil {
			t.Fatal(err)
		}
		if seen.Load() == 0 || marked.Load() != seen.Load() {
			t.Errorf("%d of %d requests start their User-Agent with %q", marked.Load(), seen.Load(), tc.want)
		}
	}
}
