package faultmatrix_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	madmin "github.com/minio/madmin-go/v3"
	"go.uber.org/zap"
	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/faultmatrix"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

var writeDoc = flag.Bool("write-doc", false, "write the matrix's table into docs/reliability.md")

// agent marks akminio's requests to authentik (the adapter's User-Agent), to tell them from
// those MinIO makes itself.
const agent = "akminio"

// world is one environment (real MinIO, the simulator) and an engine wired as cmd/akminio
// wires it (see adapters).
type world struct {
	env           *e2eenv.Env
	eng           *reconcile.Engine
	normal, short adapterPair
	mt            *faultmatrix.Transport
	ak            *api.APIClient
	adm           *madmin.AdminClient
	cfg           *config.Config
	root          context.Context
}

func newWorld(t *testing.T) *world {
	env := e2eenvtest.Start(t)
	m := env.DefaultConfig()
	m["authentik"].(map[string]any)["timeout"] = "15s"
	m["authentik"].(map[string]any)["restrict_access"] = true // so that the bindings list is not empty
	m["minio"].(map[string]any)["timeout"] = "15s"
	m["verify"] = map[string]any{"users": []any{"alice"}}
	if err := env.WriteConfig(m); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(env.ConfigPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{env: env, mt: faultmatrix.NewTransport(), ak: aksimtest.Client(env.AK), cfg: cfg, root: context.Background()}
	w.normal = w.adapters(t, *cfg)
	// The timeout cells use a short per-request timeout, so that a hanging call costs
	// seconds; every other run has time to spare on a loaded machine.
	short := *cfg
	short.Authentik.Timeout, short.MinIO.Timeout = 5*time.Second, 5*time.Second
	w.short = w.adapters(t, short)
	if w.eng, err = reconcile.NewEngine(cfg, w.normal.ak, w.normal.mc, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	// The discovery check's requests carry akminio's agent too, like the adapter's.
	w.eng.HTTP = &http.Client{Timeout: w.eng.HTTP.Timeout, Transport: userAgent{w.eng.HTTP.Transport}}
	if w.adm, err = env.MinIO.AdminClient(); err != nil {
		t.Fatal(err)
	}
	return w
}

// adapterPair is the engine's two adapters, built as cmd/akminio builds them but with the
// MinIO admin client behind the world's Transport, few retries and a page size of 2 (so
// that lists have several pages).
type adapterPair struct {
	ak *authentik.Adapter
	mc *minio.Adapter
}

func (w *world) adapters(t *testing.T, cfg config.Config) adapterPair {
	// No retries for authentik: a faulted call fails at once (retries are the adapter's
	// own business, tested there); MinIO's adapter keeps one retry for its restarts.
	ak, err := authentik.New(cfg.Authentik, authentik.WithPageSize(2), authentik.WithRetry(authentik.RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(cfg.MinIO, minio.WithRoundTripper(w.mt.Wrap), minio.WithRetry(2, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return adapterPair{ak, mc}
}

// use makes the engine work through p.
func (w *world) use(p adapterPair) { w.eng.Authentik, w.eng.MinIO = p.ak, p.mc }

type userAgent struct{ next http.RoundTripper }

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", agent)
	return u.next.RoundTrip(r)
}

// scenario is drift that a run repairs; its calls are the ones the matrix fails.
type scenario struct {
	name  string
	phase string // "observe": fail the reads of the first observation; "apply": the rest
	drift func(t *testing.T, w *world)
}

var scenarios = []scenario{
	{"a policy and the provider changed", "observe", func(t *testing.T, w *world) {
		w.removePolicy(t)
		w.patchProvider(t)
	}},
	{"application and scope mapping deleted, provider and policy changed", "apply", func(t *testing.T, w *world) {
		w.removePolicy(t)
		ctx := w.root
		if _, err := w.ak.CoreAPI.CoreApplicationsDestroy(ctx, e2eenv.AppSlug).Execute(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ak.PropertymappingsAPI.PropertymappingsProviderScopeDestroy(ctx, w.mappingPK(t)).Execute(); err != nil {
			t.Fatal(err)
		}
		w.patchProvider(t)
	}},
	{"identity_openid changed", "apply", func(t *testing.T, w *world) {
		if _, err := w.adm.SetConfigKV(w.root, "identity_openid scopes=openid"); err != nil {
			t.Fatal(err)
		}
		if err := w.env.MinIO.Restart(w.root); err != nil {
			t.Fatal(err)
		}
	}},
}

func (w *world) removePolicy(t *testing.T) {
	if err := w.adm.RemoveCannedPolicy(w.root, e2eenv.CustomPolicy); err != nil {
		t.Fatal(err)
	}
}

// patchProvider changes a setting akminio declares (by its default), which a PATCH repairs.
func (w *world) patchProvider(t *testing.T) {
	p := w.provider(t)
	if _, _, err := w.ak.ProvidersAPI.ProvidersOauth2PartialUpdate(w.root, p.Pk).PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{
		AccessCodeValidity: api.PtrString("minutes=3"),
	}).Execute(); err != nil {
		t.Fatal(err)
	}
}

func (w *world) mappingPK(t *testing.T) string {
	l, _, err := w.ak.PropertymappingsAPI.PropertymappingsProviderScopeList(w.root).Name(e2eenv.MappingName).Execute()
	if err != nil || len(l.Results) != 1 {
		t.Fatalf("scope mapping %q: %v", e2eenv.MappingName, err)
	}
	return l.Results[0].Pk
}

func (w *world) provider(t *testing.T) api.OAuth2Provider {
	l, _, err := w.ak.ProvidersAPI.ProvidersOauth2List(w.root).Name(e2eenv.ProviderName).Execute()
	if err != nil || len(l.Results) != 1 {
		t.Fatalf("provider %q: %v", e2eenv.ProviderName, err)
	}
	return l.Results[0]
}

// declared lists what the config declares that exists now: the application, provider and
// scope mapping in authentik; the config's policies and identity_openid in MinIO.
func (w *world) declared(t *testing.T) []string {
	ctx := w.root
	var out []string
	if _, resp, err := w.ak.CoreAPI.CoreApplicationsRetrieve(ctx, e2eenv.AppSlug).Execute(); err == nil {
		out = append(out, "authentik application "+e2eenv.AppSlug)
	} else if resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("read application: %v", err)
	}
	for _, q := range []struct {
		what string
		n    func() (int, error)
	}{
		{"authentik provider " + e2eenv.ProviderName, func() (int, error) {
			l, _, err := w.ak.ProvidersAPI.ProvidersOauth2List(ctx).Name(e2eenv.ProviderName).Execute()
			return len(l.GetResults()), err
		}},
		{"authentik scope mapping " + e2eenv.MappingName, func() (int, error) {
			l, _, err := w.ak.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Name(e2eenv.MappingName).Execute()
			return len(l.GetResults()), err
		}},
	} {
		n, err := q.n()
		if err != nil {
			t.Fatalf("read %s: %v", q.what, err)
		}
		if n > 0 {
			out = append(out, q.what)
		}
	}
	pols, err := w.adm.ListCannedPolicies(ctx)
	if err != nil {
		t.Fatalf("list policies: %v", err)
	}
	for name := range w.cfg.Policies {
		if _, ok := pols[name]; ok {
			out = append(out, "minio policy "+name)
		}
	}
	kv, err := w.adm.GetConfigKV(ctx, "identity_openid")
	if err != nil {
		t.Fatalf("read identity_openid: %v", err)
	}
	if strings.Contains(string(kv), "config_url=http") {
		out = append(out, "minio identity_openid")
	}
	sort.Strings(out)
	return out
}

// calls is the log of both sides since the last reset: "authentik GET /api/v3/..." and
// "minio GET /minio/admin/v3/..." with counts.
func (w *world) calls() map[string]int {
	out := map[string]int{}
	for k, v := range w.env.AK.CallsFrom(agent) {
		out["authentik "+k] = v
	}
	for k, v := range w.mt.Calls() {
		out["minio "+k] = v.Count
	}
	return out
}

func (w *world) reset() {
	w.env.AK.ResetCounts()
	w.mt.Reset()
}

// writes lists the write requests both sides saw since the last reset.
func (w *world) writes() []string {
	var out []string
	for k, v := range w.env.AK.CallsFrom(agent) {
		if !strings.HasPrefix(k, "GET ") && strings.Contains(k, "/api/v3/") {
			out = append(out, fmt.Sprintf("authentik %s (%d)", k, v))
		}
	}
	for k, v := range w.mt.Writes() {
		out = append(out, fmt.Sprintf("minio %s (%d)", k, v))
	}
	sort.Strings(out)
	return out
}

// repair runs a clean apply and a plan, which must end in sync.
func (w *world) repair() error {
	ctx, cancel := context.WithTimeout(w.root, 2*time.Minute)
	defer cancel()
	res, err := w.eng.Apply(ctx)
	if err != nil {
		return fmt.Errorf("the next clean apply failed: %w", err)
	}
	// Remaining comes from observing again after the writes: empty is in sync.
	if !res.InSync() {
		return fmt.Errorf("the next clean apply left drift: %v", res.Remaining.Changes)
	}
	return nil
}

// spyPages records the highest page each paginated authentik list asked for (akminio names
// the page of every list request), until ClearFaults: a fault that matches nothing, but
// looks. The function returned reads what it saw.
func (w *world) spyPages() func() map[string]int {
	var mu sync.Mutex
	pages := map[string]int{}
	w.env.AK.Fault("/", aksim.Fault{Match: func(r *http.Request) bool {
		n, err := strconv.Atoi(r.URL.Query().Get("page"))
		if err != nil {
			return false // not a paginated list
		}
		mu.Lock()
		defer mu.Unlock()
		call := "authentik " + r.Method + " " + aksim.CallPath(r)
		pages[call] = max(pages[call], n)
		return false
	}})
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(pages)
	}
}

// inject fails call with kind until the returned clear is called, which reports how many
// requests the fault answered.
func (w *world) inject(call string, kind faultmatrix.Kind, pages int) (clear func() int) {
	system, rest, _ := strings.Cut(call, " ")
	method, path, _ := strings.Cut(rest, " ")
	if system == "minio" {
		w.mt.Fail(rest, kind)
		return w.mt.Clear
	}
	var hits atomic.Int64
	f := aksim.Fault{Method: method, Match: func(r *http.Request) bool {
		if aksim.CallPath(r) != path || !strings.HasPrefix(r.UserAgent(), agent) {
			return false
		}
		// A list of several pages fails from its second page: the first one succeeding
		// must not make the run trust a partial list.
		if pages > 1 && r.URL.Query().Get("page") == "1" {
			return false
		}
		hits.Add(1)
		return true
	}}
	switch kind {
	case faultmatrix.Status500:
		f.Status = http.StatusInternalServerError
	case faultmatrix.Status429:
		f.Status = http.StatusTooManyRequests
	case faultmatrix.Reset:
		f.Reset = true
	case faultmatrix.Timeout:
		f.Hang = true
	case faultmatrix.Malformed:
		f.Truncate = true
	case faultmatrix.ShortPage:
		f.ShortPage = true
	}
	w.env.AK.Fault("/", f)
	return func() int {
		w.env.AK.ClearFaults()
		return int(hits.Load())
	}
}

// applicable says why kind cannot happen to a call, or "".
func applicable(kind faultmatrix.Kind, list, body bool) string {
	switch {
	case kind == faultmatrix.ShortPage && !list:
		return "n/a: not a paginated list"
	case kind == faultmatrix.Malformed && !body:
		return "n/a: the answer has no body"
	}
	return ""
}

// bestEffort are the calls a run may do without: their failure has a documented fallback,
// so the cell holds when the run carries on, deletes nothing and ends in sync. ServerInfo
// before a restart lists the nodes to wait for; without it akminio waits for the node it
// talks to, as on a single server (reconcile/minio Adapter.Restart).
var bestEffort = map[string]bool{"minio GET /minio/admin/v3/info": true}

// settle waits until MinIO is ready again after a cell, so that a restart the cell left
// running (the restart request went through, but its answer was faulted) never fails the
// next cell's setup.
func (w *world) settle(t *testing.T, call string, kind faultmatrix.Kind, starts int) {
	ctx, cancel := context.WithTimeout(w.root, 2*time.Minute)
	defer cancel()
	var err error
	if call == "minio POST /minio/admin/v3/service" && kind == faultmatrix.Malformed {
		err = w.env.MinIO.WaitRestarted(ctx, starts) // the request reached MinIO
	} else {
		err = w.env.MinIO.WaitReady(ctx)
	}
	if err != nil {
		t.Fatalf("MinIO not ready after the cell: %v", err)
	}
}

// cell runs one cell and returns its outcome: "held" or what broke.
func (w *world) cell(t *testing.T, sc scenario, call string, kind faultmatrix.Kind, pages int) string {
	sc.drift(t, w)
	before := w.declared(t)
	starts := w.env.MinIO.Starts()
	w.reset()
	clear := w.inject(call, kind, pages)
	if kind == faultmatrix.Timeout {
		w.use(w.short)
	}
	ctx, cancel := context.WithTimeout(w.root, 2*time.Minute)
	res, err := w.eng.Apply(ctx)
	cancel()
	w.use(w.normal)
	hits := clear()
	w.settle(t, call, kind, starts)
	writes := w.writes()
	after := w.declared(t)
	var problems []string
	if hits == 0 {
		problems = append(problems, "the fault was never reached")
	}
	if bestEffort[call] {
		// The run must carry on without it and end in sync (checked below by repair).
		if err != nil {
			problems = append(problems, "a best-effort read failed the run: "+err.Error())
		}
	} else if (sc.phase == "observe" && err == nil) || (sc.phase == "apply" && err == nil && res != nil && res.InSync()) {
		problems = append(problems, "the run reported success")
	}
	if sc.phase == "observe" && len(writes) > 0 {
		problems = append(problems, "writes during a failed observation: "+strings.Join(writes, ", "))
	}
	for _, d := range before {
		if !slices.Contains(after, d) {
			problems = append(problems, "deleted: "+d)
		}
	}
	if err := w.repair(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return strings.Join(problems, "; ")
	}
	return "held"
}

// TestFaultMatrix fails every distinct call a run makes, in turn, with each fault, and
// checks: a failed observation writes nothing on either side and reports failure; a
// failed apply reports failure and deletes nothing declared; the next clean run ends in
// sync. The table goes to the test log (and to docs/reliability.md with -write-doc).
func TestFaultMatrix(t *testing.T) {
	// madmin retries 429, 503 and network errors by itself, 10 times at 1s and more apart;
	// twice keeps a cell short. How akminio reacts does not depend on the count.
	defer func(n int) { madmin.MaxRetry = n }(madmin.MaxRetry)
	madmin.MaxRetry = 2
	w := newWorld(t)
	if err := w.repair(); err != nil {
		t.Fatalf("first apply: %v", err)
	}
	seen := map[string]bool{}
	var cells []faultmatrix.Cell
	users := w.eng.Users
	for _, sc := range scenarios {
		// Observation cells need no verification of the canary users (it runs after writes
		// only, and costs a python3 evaluation per user).
		w.eng.Users = nil
		if sc.phase == "apply" {
			w.eng.Users = users
		}
		// Enumerate: the calls of a plan (one observation), then of an apply.
		sc.drift(t, w)
		w.reset()
		lastPages := w.spyPages()
		if _, err := w.eng.DryRun(w.root); err != nil {
			t.Fatalf("%s: plan: %v", sc.name, err)
		}
		w.env.AK.ClearFaults()
		pageCount := lastPages()
		observed := w.calls()
		w.reset()
		applyPages := w.spyPages()
		if _, err := w.eng.Apply(w.root); err != nil {
			t.Fatalf("%s: apply: %v", sc.name, err)
		}
		w.env.AK.ClearFaults()
		for c, n := range applyPages() {
			pageCount[c] = max(pageCount[c], min(n, 1)) // a list of the apply phase fails whole
		}
		applied := w.calls()
		bodies := map[string]bool{}
		for k, v := range w.mt.Calls() {
			bodies["minio "+k] = v.Body
		}
		if err := w.repair(); err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		var calls []string
		for c := range applied {
			inObs := observed[c] > 0
			if (sc.phase == "observe") == inObs && !seen[c] {
				calls = append(calls, c)
			}
		}
		sort.Strings(calls)
		t.Logf("scenario %q (%s): calls %q", sc.name, sc.phase, calls)
		for _, c := range calls {
			seen[c] = true
			body := bodies[c]
			if strings.HasPrefix(c, "authentik ") {
				body = !strings.HasPrefix(c, "authentik DELETE ")
			}
			pages := pageCount[c]
			for _, kind := range faultmatrix.Kinds {
				cell := faultmatrix.Cell{Phase: sc.phase, Call: c, Kind: kind, Outcome: applicable(kind, pageCount[c] > 0, body)}
				if cell.Outcome == "" {
					t.Run(fmt.Sprintf("%s/%s/%s", sc.phase, c, kind), func(t *testing.T) {
						cell.Outcome = w.cell(t, sc, c, kind, pages)
						t.Logf("%s", cell.Outcome)
						if !cell.Held() {
							t.Errorf("%s × %s (%s): %s", c, kind, sc.phase, cell.Outcome)
						}
					})
				}
				cells = append(cells, cell)
			}
		}
	}
	tried, held := faultmatrix.Summary(cells)
	table := faultmatrix.Table(cells)
	t.Logf("fault matrix: %d cells tried, %d held\n%s", tried, held, table)
	if tried < 40 {
		t.Errorf("only %d cells: the enumeration found too few calls", tried)
	}
	if *writeDoc {
		writeTable(t, tried, held, table)
	}
}

// writeTable replaces the matrix section of docs/reliability.md.
func writeTable(t *testing.T, tried, held int, table string) {
	path := filepath.Join("..", "..", "docs", "reliability.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s ... %s section", path, begin, end)
	}
	body := fmt.Sprintf("%s\n%d cells tried, %d held.\n\n%s%s", begin, tried, held, table, end)
	if err := os.WriteFile(path, []byte(s[:i]+body+s[j+len(end):]), 0o644); err != nil {
		t.Fatal(err)
	}
}
