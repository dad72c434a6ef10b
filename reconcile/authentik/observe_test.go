package authentik

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/reconcile"
)

func groupName(i int) string { return fmt.Sprintf("team-%04d", i) }

func TestObservePaginatesGroupsConcurrently(t *testing.T) {
	f := newFixture(t)
	pks := f.seedGroups(t, 250, groupName)
	d := desired()
	d.Groups = []string{groupName(7), groupName(150), groupName(249), "not there"}

	// Count the group list requests in flight at once; pages after the first are held
	// until another is in flight too (or 5 s passed), so that concurrent pages overlap
	// however slowly the machine schedules them.
	var inFlight, peak atomic.Int32
	f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v3/core/groups/" {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			if r.URL.Query().Get("include_users") != "false" {
				t.Errorf("groups listed with members: %s", r.URL.RawQuery)
			}
			for deadline := time.Now().Add(5 * time.Second); r.URL.Query().Get("page") != "1" &&
				inFlight.Load() < 2 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		next.ServeHTTP(w, r)
	})
	st, err := f.ad.Observe(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{groupName(7): pks[groupName(7)], groupName(150): pks[groupName(150)], groupName(249): pks[groupName(249)]}
	if !reflect.DeepEqual(st.Groups, want) {
		t.Errorf("groups = %v, want %v", st.Groups, want)
	}
	if n := f.sim.Count(http.MethodGet, "/api/v3/core/groups/"); n != 3 {
		t.Errorf("group list requests = %d, want 3 pages", n)
	}
	if peak.Load() < 2 {
		t.Errorf("pages 2 and 3 were not fetched concurrently (peak in flight %d)", peak.Load())
	}
}

// TestObserveInSyncRequestBudget measures an in-sync Observe of an estate of 1,000 groups.
func TestObserveInSyncRequestBudget(t *testing.T) {
	f := newFixture(t)
	f.seedGroups(t, 1000-3, groupName) // with "authentik Admins" and the two bound groups: 1,000
	d := desired()
	f.applyFromNothing(t, d)
	f.sim.ResetCounts()
	if _, err := f.ad.Observe(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	total := f.sim.Count("", "/api/v3/")
	counts := f.sim.Counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%3d  %s", counts[k], k)
	}
	t.Logf("total %d requests", total)
	if g := f.sim.Count(http.MethodGet, "/api/v3/core/groups/"); g != 10 {
		t.Errorf("group pages = %d, want 10", g)
	}
	if total > 18 {
		t.Errorf("in-sync Observe made %d requests, budget 18", total)
	}
	if f.writes() != 0 {
		t.Errorf("Observe wrote")
	}
}

func TestObserveFaultsGiveNoPartialState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{"groups page 2 fails", func(f *fixture) {
			f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path == "/api/v3/core/groups/" && r.URL.Query().Get("page") == "2" {
					http.Error(w, `{"detail":"boom"}`, http.StatusInternalServerError)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, "list groups (page 2): HTTP 500"},
		{"groups list ends early", func(f *fixture) {
			f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path != "/api/v3/core/groups/" || r.URL.Query().Get("page") != "2" {
					next.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				var body map[string]any
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				body["results"] = body["results"].([]any)[:10] // a short page
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(body)
			})
		}, "incomplete list"},
		{"bindings list 500", func(f *fixture) {
			f.sim.Fault("/api/v3/policies/bindings/", aksim.Fault{Method: http.MethodGet, Status: 500})
		}, "policy bindings"},
		{"keypair list 503", func(f *fixture) {
			f.sim.Fault("/api/v3/crypto/certificatekeypairs/", aksim.Fault{Status: 503})
		}, "HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seedGroups(t, 150, groupName)
			d := desired()
			f.applyFromNothing(t, d)
			f.sim.ResetCounts()
			tc.setup(f)
			st, err := f.ad.Observe(context.Background(), d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Observe error = %v, want one containing %q", err, tc.want)
			}
			if !reflect.DeepEqual(st, reconcile.AuthentikState{}) {
				t.Errorf("a failed Observe returned partial state: %+v", st)
			}
			if f.writes() != 0 {
				t.Errorf("a failed Observe wrote")
			}
		})
	}
}

func TestRetries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()

	// 429 twice, then success: Observe succeeds after retrying.
	f.sim.Fault("/api/v3/crypto/certificatekeypairs/", aksim.Fault{Status: http.StatusTooManyRequests, Times: 2})
	if _, err := f.ad.Observe(ctx, d); err != nil {
		t.Fatalf("Observe with two 429s: %v", err)
	}
	if n := f.sim.Count(http.MethodGet, "/api/v3/crypto/certificatekeypairs/"); n != 3 {
		t.Errorf("keypair requests = %d, want 3 (two 429s, one success)", n)
	}

	// A 5xx on a read is retried up to the policy's maximum, then reported.
	f.sim.ResetCounts()
	f.sim.Fault("/api/v3/crypto/certificatekeypairs/", aksim.Fault{Status: http.StatusBadGateway})
	if _, err := f.ad.Observe(ctx, d); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("Observe with the keypair list failing: %v", err)
	}
	if n := f.sim.Count(http.MethodGet, "/api/v3/crypto/certificatekeypairs/"); n != 1+fastRetry.Max {
		t.Errorf("keypair requests = %d, want 1 + %d retries", n, fastRetry.Max)
	}
	f.sim.ClearFaults()

	// A POST answered 500 is not retried (it may have created the object); a 400 never is.
	f.sim.ResetCounts()
	st, err := f.ad.Observe(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	obs := &reconcile.Observed{Authentik: st}
	f.sim.Fault("/api/v3/core/groups/", aksim.Fault{Method: http.MethodPost, Status: 500})
	grp := reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionCreate, Kind: reconcile.KindGroup, Name: "Minio admins"}
	if _, err := f.ad.Apply(ctx, d, obs, []reconcile.Change{grp}, nil); err == nil || !strings.Contains(err.Error(), `create group "Minio admins": HTTP 500`) {
		t.Errorf("group create with 500: %v", err)
	}
	if n := f.sim.Count(http.MethodPost, "/api/v3/core/groups/"); n != 1 {
		t.Errorf("POSTs after a 500 = %d, want 1", n)
	}
	d.ScopeMapping.Expression = "return {"
	sm := reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionCreate, Kind: reconcile.KindScopeMapping, Name: d.ScopeMapping.Name}
	_, err = f.ad.Apply(ctx, d, obs, []reconcile.Change{sm}, nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "expression") {
		t.Errorf("bad expression: err = %v, want a 400 naming the expression field", err)
	}
	if n := f.sim.Count(http.MethodPost, "/api/v3/propertymappings/"); n != 1 {
		t.Errorf("POSTs after a 400 = %d, want 1", n)
	}
}

func TestErrorsNeverCarryTheClientSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	obs := f.applyFromNothing(t, d)
	secret := obs.Authentik.Provider.ClientSecret.Reveal()

	var mu sync.Mutex
	mode := ""
	f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		m := mode
		mu.Unlock()
		if !strings.HasPrefix(r.URL.Path, "/api/v3/providers/oauth2/") {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case m == "reject" && r.Method == http.MethodPatch:
			// A validation error that quotes the secret.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"client_secret":["%s is not allowed"],"redirect_uris":["bad"]}`, secret)
		case m == "garble" && r.Method == http.MethodGet:
			// A 200 whose provider lacks a required key, secret included.
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := bytes.Replace(rec.Body.Bytes(), []byte(`"pk":`), []byte(`"xx":`), -1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		default:
			next.ServeHTTP(w, r)
		}
	})
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }

	set("reject")
	upd := reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionUpdate, Kind: reconcile.KindProvider, Name: "MinIO"}
	_, err := f.ad.Apply(ctx, d, obs, []reconcile.Change{upd}, nil)
	if err == nil || !strings.Contains(err.Error(), "client_secret, redirect_uris") {
		t.Errorf("provider 400: err = %v, want the rejected field names", err)
	}
	checkNoSecret(t, err, secret)
	checkNoSecret(t, f.ad.SetClientSecret(ctx, obs.Authentik.Provider.PK, "x"), secret)

	set("garble")
	_, err = f.ad.Observe(ctx, d)
	if err == nil {
		t.Fatal("Observe of a provider list missing pk: no error")
	}
	checkNoSecret(t, err, secret)
	_, err = f.ad.ClientSecret(ctx, obs.Authentik.Provider.PK)
	checkNoSecret(t, err, secret)
}

func checkNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil {
		t.Error("want an error")
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, secret) || strings.Contains(s, secret[:16]) {
			t.Errorf("error carries the client secret: %s", s)
		}
	}
}
