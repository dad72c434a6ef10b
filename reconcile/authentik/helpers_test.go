package authentik

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	api "goauthentik.io/api/v3"
	"golang.org/x/sync/errgroup"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/reconcile"
)

// fastRetry keeps retry tests quick; the policy's shape is the default's.
var fastRetry = RetryPolicy{Max: 3, WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond}

// fixture is a simulator, the Adapter under test, and a plain client for seeding and
// reading back behind the Adapter's back.
type fixture struct {
	sim *aksim.Server
	ad  *Adapter
	raw *api.APIClient
	url string

	mu   sync.Mutex
	wrap func(w http.ResponseWriter, r *http.Request, next http.Handler) // optional interposer
}

// newFixture starts a simulator behind an httptest server whose handler lets a test
// interpose (setWrap) for faults the simulator has no knob for (a given page, a body).
func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	var (
		vmu        sync.Mutex
		violations []error
	)
	sim := aksim.New(aksim.Options{
		OnViolation: func(err error) { vmu.Lock(); violations = append(violations, err); vmu.Unlock() },
		Logf:        func(string, ...any) {},
	})
	f := &fixture{sim: sim}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		wrap := f.wrap
		f.mu.Unlock()
		if wrap != nil {
			wrap(w, r, sim)
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		_ = sim.Close()
		vmu.Lock()
		defer vmu.Unlock()
		for _, v := range violations {
			t.Errorf("simulator contract violation: %v", v)
		}
	})
	f.url = srv.URL
	ad, err := New(config.Authentik{URL: srv.URL + "/", Token: config.Secret(sim.Token()), Timeout: 5 * time.Second},
		append([]Option{WithRetry(fastRetry)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.ad = ad
	c := api.NewConfiguration()
	c.Servers = api.ServerConfigurations{{URL: srv.URL + "/api/v3"}}
	c.AddDefaultHeader("Authorization", "Bearer "+sim.Token())
	f.raw = api.NewAPIClient(c)
	return f
}

// setWrap interposes fn before the simulator (nil removes it).
func (f *fixture) setWrap(fn func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	f.mu.Lock()
	f.wrap = fn
	f.mu.Unlock()
}

// writes counts the requests that could change something.
func (f *fixture) writes() int {
	return f.sim.Count(http.MethodPost, "/api/v3/") + f.sim.Count(http.MethodPatch, "/api/v3/") +
		f.sim.Count(http.MethodPut, "/api/v3/") + f.sim.Count(http.MethodDelete, "/api/v3/")
}

// seedGroups creates groups named by name(i) for i in [0, n), four at a time.
func (f *fixture) seedGroups(t testing.TB, n int, name func(int) string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	pks := map[string]string{}
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(4)
	for i := range n {
		g.Go(func() error {
			grp, _, err := f.raw.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(api.GroupRequest{Name: name(i)}).Execute()
			if err != nil {
				return fmt.Errorf("seed group %q: %w", name(i), err)
			}
			mu.Lock()
			pks[grp.Name] = grp.Pk
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return pks
}

// seedUser creates a user in the given groups (pks) and returns its pk.
func (f *fixture) seedUser(t *testing.T, username string, groups ...string) int32 {
	t.Helper()
	u, _, err := f.raw.CoreAPI.CoreUsersCreate(context.Background()).UserRequest(api.UserRequest{
		Username: username, Name: username, Groups: groups,
	}).Execute()
	if err != nil {
		t.Fatalf("seed user %q: %v", username, err)
	}
	return u.Pk
}

var testBindings = []config.Binding{
	{Group: "Minio admins", Policies: []string{"consoleAdmin"}},
	{Group: "Minio users", Policies: []string{"readonly"}},
}

// desired is the example config's authentik side, against a fresh simulator.
func desired() *reconcile.Desired {
	return &reconcile.Desired{
		ScopeMapping: reconcile.ScopeMapping{
			Name: "OIDC-Scope-minio", ScopeName: "minio",
			Expression:  reconcile.RenderExpression(testBindings, config.MatchFirst, "policy"),
			Description: "MinIO policies from group membership (managed by akminio)",
		},
		Provider: reconcile.Provider{
			Name: "MinIO", RedirectURIs: []string{"https://minio.test/oauth_callback"},
			SigningKey:        aksim.SelfSignedName,
			AuthorizationFlow: "default-provider-authorization-implicit-consent",
			InvalidationFlow:  "default-provider-invalidation-flow",
			Scopes:            []string{"openid", "email", "profile"},
		},
		Application:    reconcile.Application{Slug: "minio", Name: "MinIO", LaunchURL: "https://minio.test"},
		Groups:         []string{"Minio admins", "Minio users"},
		CreateGroups:   true,
		RestrictAccess: true,
		Bindings:       testBindings,
		Match:          config.MatchFirst,
	}
}

// fromNothing is the authentik part of the plan for a fresh install, in the engine's order.
func fromNothing() []reconcile.Change {
	ch := func(kind reconcile.Kind, name string) reconcile.Change {
		return reconcile.Change{System: reconcile.SystemAuthentik, Action: reconcile.ActionCreate, Kind: kind, Name: name}
	}
	return []reconcile.Change{
		ch(reconcile.KindScopeMapping, "OIDC-Scope-minio"),
		ch(reconcile.KindProvider, "MinIO"),
		ch(reconcile.KindApplication, "minio"),
		ch(reconcile.KindGroup, "Minio admins"),
		ch(reconcile.KindGroup, "Minio users"),
		ch(reconcile.KindBinding, "Minio admins"),
		ch(reconcile.KindBinding, "Minio users"),
	}
}

// applyFromNothing observes a fresh simulator, applies fromNothing and returns the
// observation as Apply left it.
func (f *fixture) applyFromNothing(t testing.TB, d *reconcile.Desired) *reconcile.Observed {
	t.Helper()
	ctx := context.Background()
	st, err := f.ad.Observe(ctx, d)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	obs := &reconcile.Observed{Authentik: st}
	w, err := f.ad.Apply(ctx, d, obs, fromNothing(), nil)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	obs.State.CreatedBindings = w.Created // as the engine records them
	return obs
}
