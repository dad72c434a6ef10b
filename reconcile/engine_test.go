package reconcile

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
)

// world is both remote systems as the fake adapters serve them. MinIO's identity_openid
// behaves as the real one: a write goes to disk and reads back stale until Restart.
type world struct {
	t        *testing.T
	ak       AuthentikState
	policies map[string][]byte
	loaded   *ObservedOpenIDTarget // what MinIO reads back
	disk     *ObservedOpenIDTarget // what MinIO loads at its next restart
	log      []string              // every write and restart, in order

	akObserveErr error
	restart      func(ctx context.Context) error // nil: succeed
}

// newWorld serves o's state.
func newWorld(t *testing.T, o *Observed) *world {
	return &world{t: t, ak: o.Authentik, policies: o.MinIO.Policies, loaded: o.MinIO.OpenID, disk: o.MinIO.OpenID}
}

type fakeAK struct{ w *world }

func (f fakeAK) Observe(context.Context, *Desired) (AuthentikState, error) {
	return f.w.ak, f.w.akObserveErr
}

func (f fakeAK) Apply(_ context.Context, d *Desired, obs *Observed, changes []Change, done Done) (Written, error) {
	var w Written
	for _, c := range changes {
		if c.System != SystemAuthentik {
			f.w.t.Fatalf("authentik adapter got %+v", c)
		}
		w = w.add(ownedBy(&obs.State.CreatedBindings, func() { fxApply(f.w.t, d, obs, []Change{c}) }))
		f.w.log = append(f.w.log, fmt.Sprintf("authentik %s %s %s", c.Action, c.Kind, c.Name))
		done(c)
	}
	f.w.ak = obs.Authentik
	return w, nil
}

// ownedBy runs apply, which records in registry what it creates and deletes as the plan
// fixture does, and reports those instead, leaving registry as it was: as a real adapter
// does, for the engine alone to record.
func ownedBy(registry *[]string, apply func()) Written {
	before := slices.Clone(*registry)
	apply()
	var w Written
	for _, id := range *registry {
		if !slices.Contains(before, id) {
			w.Created = append(w.Created, id)
		}
	}
	for _, id := range before {
		if !slices.Contains(*registry, id) {
			w.Deleted = append(w.Deleted, id)
		}
	}
	*registry = before
	return w
}

func (w Written) add(o Written) Written {
	return Written{Created: append(w.Created, o.Created...), Deleted: append(w.Deleted, o.Deleted...), Restart: w.Restart || o.Restart}
}

func (f fakeAK) PreviewUser(context.Context, int32, string) (UserPreview, error) {
	return UserPreview{}, errors.New("no canary users in these tests")
}

type fakeMinIO struct{ w *world }

func (f fakeMinIO) Observe(context.Context, *Desired) (MinIOState, error) {
	return MinIOState{Policies: f.w.policies, OpenID: f.w.loaded}, nil
}

func (f fakeMinIO) Apply(_ context.Context, d *Desired, obs *Observed, changes []Change, done Done) (Written, error) {
	var w Written
	for _, c := range changes {
		switch {
		case c.System != SystemMinIO || c.Blocked != "" || c.Pending:
			f.w.t.Fatalf("MinIO adapter got %+v", c)
		case c.Kind == KindOpenID:
			f.w.disk = &ObservedOpenIDTarget{OpenIDKeys: WantedOpenIDKeys(d, obs.Authentik.Provider)}
			w.Restart = true
		default:
			w = w.add(ownedBy(&obs.State.CreatedPolicies, func() { fxApplyPolicy(f.w.t, d, obs, c) }))
		}
		f.w.log = append(f.w.log, fmt.Sprintf("minio %s %s %s", c.Action, c.Kind, c.Name))
		done(c)
	}
	f.w.policies = obs.MinIO.Policies
	return w, nil
}

func (f fakeMinIO) Restart(ctx context.Context) error {
	f.w.log = append(f.w.log, "minio restart")
	if f.w.restart != nil {
		if err := f.w.restart(ctx); err != nil {
			return err
		}
	}
	f.w.loaded = f.w.disk
	return nil
}

// discovery serves an OpenID discovery document, for the verification every in-sync run does.
func discovery(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"issuer":"https://authentik.company/application/o/minio/","jwks_uri":"https://authentik.company/jwks/"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testEngine is an engine over w for fxConfig after edit, with its own state_dir.
func testEngine(t *testing.T, w *world, edit func(*config.Config)) *Engine {
	t.Helper()
	cfg := fxConfig()
	cfg.StateDir = t.TempDir()
	cfg.Authentik.URL = discovery(t).URL
	if edit != nil {
		edit(cfg)
	}
	e, err := NewEngine(cfg, fakeAK{w}, fakeMinIO{w}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fromNothing is an empty estate, plus a policy that akminio created and no longer declares.
func fromNothing(t *testing.T) (*world, func(*config.Config)) {
	o := fxEmpty()
	o.MinIO.Policies["old-owned"] = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::old/*"]}]}`)
	edit := func(c *config.Config) {
		c.Authentik.CreateGroups = true
		c.Prune = true
	}
	return newWorld(t, o), edit
}

func saveOwned(t *testing.T, e *Engine) {
	t.Helper()
	if err := SaveState(e.StateDir, State{CreatedPolicies: []string{"old-owned"}}); err != nil {
		t.Fatal(err)
	}
}

func TestApplyOrderFromNothing(t *testing.T) {
	w, edit := fromNothing(t)
	e := testEngine(t, w, edit)
	saveOwned(t, e)

	res, err := e.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"minio create policy bucket-reports-reader",
		"minio create policy my-custom-policy",
		"authentik create scope_mapping OIDC-Scope-minio",
		"authentik create provider MinIO",
		"authentik create application minio",
		"authentik create group Minio admins",
		"authentik create group Minio users",
		"authentik create group Reporting",
		"minio create identity_openid identity_openid",
		"minio restart",
		"minio delete policy old-owned",
	}
	if !slices.Equal(w.log, want) {
		t.Errorf("writes:\n got %q\nwant %q", w.log, want)
	}
	if !res.InSync() || !res.Restarted {
		t.Errorf("in sync %v, restarted %v; remaining %+v", res.InSync(), res.Restarted, res.Remaining.Changes)
	}
	// The provider made in this run gave its client id and secret to MinIO.
	if w.loaded == nil || w.loaded.ClientID != "created-client-id" || w.loaded.ClientSecret.Reveal() != fxCreatedSecret {
		t.Errorf("MinIO loaded %+v, want the created provider's id and secret", w.loaded)
	}
	if st, _ := LoadState(e.StateDir); st.RestartPending != nil || slices.Contains(st.CreatedPolicies, "old-owned") {
		t.Errorf("state after apply: %+v", st)
	}
}

func TestApplyReportModeWritesNothing(t *testing.T) {
	w, edit := fromNothing(t)
	e := testEngine(t, w, func(c *config.Config) { edit(c); c.Mode = config.ModeReport })
	saveOwned(t, e)
	res, err := e.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.log) != 0 || len(res.Applied) != 0 {
		t.Errorf("report mode wrote %q", w.log)
	}
	if res.Remaining.Drift() < res.Plan.Drift() || res.Plan.Drift() == 0 {
		t.Errorf("remaining drift %d, plan drift %d", res.Remaining.Drift(), res.Plan.Drift())
	}
}

func TestApplyFailedObservationWritesNothing(t *testing.T) {
	w, edit := fromNothing(t)
	w.akObserveErr = errors.New("authentik: list groups (page 2): HTTP 502")
	e := testEngine(t, w, edit)
	res, err := e.Apply(context.Background())
	if !errors.Is(err, ErrObserve) || res != nil {
		t.Fatalf("Apply = %v, %v; want an observe error and no result", res, err)
	}
	if len(w.log) != 0 {
		t.Errorf("wrote after a failed observation: %q", w.log)
	}
}

// A failed restart leaves the identity_openid write pending, and says so: the drift left
// is what was not applied plus the pending write, never "no drift". Prunes wait.
func TestApplyRestartFails(t *testing.T) {
	w, edit := fromNothing(t)
	w.restart = func(context.Context) error { return errors.New("minio: restart: connection refused") }
	e := testEngine(t, w, edit)
	saveOwned(t, e)

	res, err := e.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "restart MinIO") {
		t.Fatalf("Apply error = %v, want the failed restart", err)
	}
	if slices.Contains(w.log, "minio delete policy old-owned") {
		t.Errorf("pruned although the restart failed: %q", w.log)
	}
	left := func(kind Kind, action Action, name string, pending bool) bool {
		return slices.ContainsFunc(res.Remaining.Changes, func(c Change) bool {
			return c.Kind == kind && c.Action == action && c.Name == name && c.Pending == pending
		})
	}
	if !left(KindOpenID, ActionCreate, "identity_openid", true) || !left(KindPolicy, ActionDelete, "old-owned", false) {
		t.Errorf("drift left does not hold the pending identity_openid write and the prune: %+v", res.Remaining.Changes)
	}
	if res.Remaining.Drift() == 0 || !res.Remaining.RestartPending() {
		t.Errorf("drift left after a failed restart: %+v", res.Remaining.Changes)
	}
	if st, _ := LoadState(e.StateDir); st.RestartPending == nil {
		t.Error("state does not record the pending restart")
	}
}

func TestApplyBoundedByTimeout(t *testing.T) {
	w, edit := fromNothing(t)
	w.restart = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() } // MinIO never gets ready
	e := testEngine(t, w, edit)
	e.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := e.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timeout of 100ms ran out") {
		t.Errorf("Apply error = %v, want the run's timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Apply took %s", d)
	}
	if got := testEngine(t, w, nil).Timeout; got != DefaultRunTimeout {
		t.Errorf("NewEngine's timeout = %s, want %s", got, DefaultRunTimeout)
	}
}

// inSyncNever is a synced estate whose identity_openid scopes someone changed (and MinIO
// loaded), with restart: never.
func inSyncNever(t *testing.T) (*world, *Engine) {
	d := fxDesired(t, nil)
	o := fxSynced(t, d)
	w := newWorld(t, o)
	e := testEngine(t, w, func(c *config.Config) { c.MinIO.Restart = config.RestartNever })
	// fxSynced's identity_openid matches the engine's config_url (the test server's).
	w.loaded = &ObservedOpenIDTarget{OpenIDKeys: WantedOpenIDKeys(e.Desired, o.Authentik.Provider)}
	w.loaded.Scopes = "openid"
	w.disk = w.loaded
	return w, e
}

func TestRestartNeverWritesOnce(t *testing.T) {
	w, e := inSyncNever(t)
	ctx := context.Background()
	for i := range 2 {
		res, err := e.Apply(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Remaining.RestartPending() || res.Remaining.Drift() != 1 {
			t.Fatalf("apply %d: remaining %+v, want the pending identity_openid change", i+1, res.Remaining.Changes)
		}
	}
	if want := []string{"minio update identity_openid identity_openid"}; !slices.Equal(w.log, want) {
		t.Errorf("writes %q, want one", w.log)
	}
	w.loaded = w.disk // the operator restarts MinIO
	res, err := e.DryRun(ctx)
	if err != nil || !res.InSync() {
		t.Fatalf("plan after the restart: %v, %+v", err, res)
	}
	if st, _ := LoadState(e.StateDir); st.RestartPending != nil {
		t.Errorf("pending restart not cleared: %+v", st.RestartPending)
	}
}

// A pending write that MinIO never loads, because it restarted with what someone else wrote
// since, must not stay pending for ever: that drift is repaired by a new write.
func TestPendingSettlesWhenMinIOLoadsOtherValues(t *testing.T) {
	w, e := inSyncNever(t)
	ctx := context.Background()
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	other := *w.loaded
	other.ClaimName = "groups"
	w.loaded, w.disk = &other, &other // someone else's write, loaded by a restart

	p, err := e.DryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Remaining.Changes) != 1 || p.Remaining.Changes[0].Pending {
		t.Fatalf("plan: %+v, want one identity_openid change that is not pending", p.Remaining.Changes)
	}
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if len(w.log) != 2 {
		t.Errorf("writes %q, want the second identity_openid write", w.log)
	}
}

// Plan leaves state.json alone while another run holds the run lock.
func TestPlanDoesNotSaveStateUnderAnotherRun(t *testing.T) {
	w, e := inSyncNever(t)
	ctx := context.Background()
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	w.loaded = w.disk
	before, err := os.ReadFile(filepath.Join(e.StateDir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := statedir.TryLock(e.StateDir, RunLock)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.DryRun(ctx)
	if err != nil || !res.InSync() {
		t.Fatalf("plan: %v, %+v", err, res)
	}
	if after, _ := os.ReadFile(filepath.Join(e.StateDir, StateFile)); !bytes.Equal(before, after) {
		t.Errorf("plan rewrote state.json while another run held the lock:\n%s\n->\n%s", before, after)
	}
	lock.Unlock()
	if _, err := e.DryRun(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := LoadState(e.StateDir); st.RestartPending != nil {
		t.Errorf("pending restart not cleared once the lock was free: %+v", st.RestartPending)
	}
}

// The discovery check reaches authentik with authentik's TLS settings (ca_file).
func TestDiscoveryUsesAuthentikCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"issuer":"x","jwks_uri":"y"}`)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}
	if err := os.WriteFile(ca, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	w, _ := fromNothing(t)
	e := testEngine(t, w, func(c *config.Config) { c.Authentik.URL, c.Authentik.CAFile = srv.URL, ca })
	if err := e.checkDiscovery(context.Background()); err != nil {
		t.Errorf("discovery with authentik.ca_file: %v", err)
	}
}

// A discovery document larger than maxDiscoveryBytes is refused with a clear error.
func TestDiscoveryBodyIsCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"issuer":"x","jwks_uri":"y","pad":"%s"}`, strings.Repeat("A", 2<<20))
	}))
	defer srv.Close()
	w, _ := fromNothing(t)
	e := testEngine(t, w, func(c *config.Config) { c.Authentik.URL = srv.URL })
	err := e.checkDiscovery(context.Background())
	if err == nil || !strings.Contains(err.Error(), "response body exceeds akminio's limit of 1 MiB") {
		t.Errorf("discovery of a 2 MiB document: %v, want it refused at 1 MiB", err)
	}
}
