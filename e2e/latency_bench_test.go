package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
)

// BenchmarkDriftRepairLatency measures drift -> repair with the real binary (`akminio run`),
// the simulator and a real MinIO: each drift is made through the API as a person would
// (authentik edits with a person's token, MinIO changes with madmin as root), and timed from
// the moment the API call returned until /status shows a run that started after it and
// ended "repaired" (both sides written, observed again and verified: canary users' claims
// and MinIO's discovery URL).
//
// Kinds: the scope mapping's expression edited; the provider's redirect URIs edited; the
// managed policy's document changed in MinIO; the managed policy deleted; identity_openid's
// client_secret changed (set, then MinIO restarted to load it, as `mc admin config set` and
// `mc admin service restart` do).
//
// Variants: events (the feeds installed, http.debounce 1s, schedule once a day) and
// schedule (no feeds, @every 1m, no jitter). AKMINIO_BENCH_DRIFTS sets the drifts per kind
// for the events variant (default 50), AKMINIO_BENCH_SCHEDULE_DRIFTS for the schedule
// variant (default 4: each waits up to a minute). Run with -benchtime=1x; the percentiles
// are reported as metrics and logged. Results: docs/benchmarks.md.
func BenchmarkDriftRepairLatency(b *testing.B) {
	for _, v := range []struct {
		name     string
		events   bool
		schedule string
		perKind  int
	}{
		{"events", true, "@daily", envInt("AKMINIO_BENCH_DRIFTS", 50)},
		{"schedule", false, "@every 1m", envInt("AKMINIO_BENCH_SCHEDULE_DRIFTS", 4)},
	} {
		if v.perKind == 0 {
			continue
		}
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				benchLatency(b, v.events, v.schedule, v.perKind)
			}
		})
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// drift is one kind of drift a person makes.
type drift struct {
	name string
	make func(ctx context.Context, i int) error
}

func benchLatency(b *testing.B, events bool, schedule string, perKind int) {
	env := e2eenvtest.Start(b)
	ctx := context.Background()
	cfg := eventsConfig(env, events)
	section(cfg, "http")["debounce"] = "1s"
	cfg["schedule"] = map[string]any{"reconcile": schedule, "rotate_secret": "", "jitter": "0s"}
	if err := env.WriteConfig(cfg); err != nil {
		b.Fatal(err)
	}
	if _, _, code := e2eenvtest.Akminio(b, env, "apply"); code != 0 {
		b.Fatalf("first apply: exit %d", code)
	}
	alice, err := env.AK.AddAPIToken("alice")
	if err != nil {
		b.Fatal(err)
	}
	person := clientWithToken(env, alice)
	adm, err := env.MinIO.AdminClient()
	if err != nil {
		b.Fatal(err)
	}
	ml, _, err := person.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Name(e2eenv.MappingName).Execute()
	if err != nil || len(ml.Results) != 1 {
		b.Fatalf("scope mapping: %v", err)
	}
	mappingPK := ml.Results[0].Pk
	pl, _, err := person.ProvidersAPI.ProvidersOauth2List(ctx).Name(e2eenv.ProviderName).Execute()
	if err != nil || len(pl.Results) != 1 {
		b.Fatalf("provider: %v", err)
	}
	providerPK := pl.Results[0].Pk
	kinds := []drift{
		{"scope mapping expression edited", func(ctx context.Context, i int) error {
			_, _, err := person.PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(ctx, mappingPK).
				PatchedScopeMappingRequest(api.PatchedScopeMappingRequest{Expression: api.PtrString(fmt.Sprintf("return {%q: %q}", "policy", "consoleAdmin-"+strconv.Itoa(i)))}).Execute()
			return err
		}},
		{"provider redirect URIs edited", func(ctx context.Context, i int) error {
			_, _, err := person.ProvidersAPI.ProvidersOauth2PartialUpdate(ctx, providerPK).PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{
				RedirectUris: []api.RedirectURIRequest{{MatchingMode: api.MATCHINGMODEENUM_STRICT, Url: fmt.Sprintf("https://elsewhere.example/%d", i),
					RedirectUriType: api.REDIRECTURITYPEENUM_AUTHORIZATION.Ptr()}},
			}).Execute()
			return err
		}},
		{"policy document changed in MinIO", func(ctx context.Context, i int) error {
			doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::other-%d/*"]}]}`, i)
			return adm.AddCannedPolicy(ctx, e2eenv.CustomPolicy, []byte(doc))
		}},
		{"policy deleted", func(ctx context.Context, _ int) error {
			return adm.RemoveCannedPolicy(ctx, e2eenv.CustomPolicy)
		}},
		{"identity_openid client_secret changed", func(ctx context.Context, i int) error {
			if _, err := adm.SetConfigKV(ctx, fmt.Sprintf("identity_openid client_secret=wrong-secret-%d", i)); err != nil {
				return err
			}
			return adm.ServiceRestartV2(ctx)
		}},
	}

	d := startDaemon(b, env)
	d.waitStatusB(b, "the start run", func(st benchStatus) bool { return st.LastRun != nil && st.LastRun.Result == "in_sync" })
	byKind := map[string][]time.Duration{}
	var all []time.Duration
	for i := range perKind {
		for _, k := range kinds {
			if !events {
				// A drift happens at any moment of the schedule's period, not just after the
				// run that repaired the one before: wait a random part of the period first.
				time.Sleep(time.Duration(rand.Int64N(int64(time.Minute))))
			}
			t0 := time.Now()
			if err := k.make(ctx, i); err != nil {
				b.Fatalf("%s #%d: %v", k.name, i, err)
			}
			d.waitStatusB(b, k.name+" repaired", func(st benchStatus) bool {
				return st.LastRun != nil && !st.LastRun.Start.Before(t0) && st.LastRun.Result == "repaired" && st.Drift.Drift == 0 && st.Running == ""
			})
			lat := time.Since(t0)
			byKind[k.name] = append(byKind[k.name], lat)
			all = append(all, lat)
		}
	}
	rss := d.metricValue(b, "process_resident_memory_bytes")
	variant := "schedule " + schedule
	if events {
		variant = "events"
	}
	if events {
		floodHooks(b, d)
	}
	var runs []float64
	for _, line := range strings.Split(d.logs.String(), "\n") {
		var l struct {
			Msg      string  `json:"msg"`
			Duration float64 `json:"duration"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "reconcile run finished" {
			runs = append(runs, l.Duration)
		}
	}
	slices.Sort(runs)
	if len(runs) > 0 {
		fmt.Printf("latency %s: run durations median %.2f s, max %.2f s over %d runs\n", variant, runs[len(runs)/2], runs[len(runs)-1], len(runs))
	}
	// Printed, not logged: a benchmark's log is cut to its first lines.
	for _, k := range kinds {
		p50, p99, mx := percentiles(byKind[k.name])
		fmt.Printf("latency %s: %-40s n=%-3d p50=%-8s p99=%-8s max=%s\n", variant, k.name, len(byKind[k.name]), p50, p99, mx)
	}
	p50, p99, mx := percentiles(all)
	fmt.Printf("latency %s: %-40s n=%-3d p50=%-8s p99=%-8s max=%s (daemon RSS at the end: %.1f MiB)\n", variant, "all", len(all), p50, p99, mx, rss/(1<<20))
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.ReportMetric(p99.Seconds(), "p99-s")
	b.ReportMetric(mx.Seconds(), "max-s")
	b.ReportMetric(float64(len(all)), "drifts")
	d.stop(b)
}

// percentiles returns p50, p99 (nearest rank) and the maximum.
func percentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(float64(len(s))*p+0.999999) - 1
		return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
	}
	return rank(0.50), rank(0.99), s[len(s)-1].Round(time.Millisecond)
}

// benchStatus is the part of /status the benchmark reads.
type benchStatus struct {
	Running string `json:"running"`
	LastRun *struct {
		Start  time.Time `json:"start"`
		Result string    `json:"result"`
	} `json:"last_run"`
	Drift struct {
		Drift int `json:"drift"`
	} `json:"drift"`
}

func (d *daemon) waitStatusB(b testing.TB, what string, cond func(benchStatus) bool) {
	b.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.exited:
			b.Fatalf("akminio run exited while waiting for %s: %v\n%s", what, err, d.logs.String())
		default:
		}
		resp, err := http.Get(d.url + "/status")
		if err == nil {
			var st benchStatus
			ok := json.NewDecoder(resp.Body).Decode(&st) == nil && cond(st)
			resp.Body.Close()
			if ok {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("timed out waiting for %s\n%s", what, d.logs.String())
}

// metricValue reads one unlabelled series from /metrics (0 when absent).
func (d *daemon) metricValue(b testing.TB, name string) float64 {
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// floodHooks sends 1,000 relevant authentik notifications over 10 s and logs how many runs
// they caused and the daemon's memory before and after (the flood acceptance's memory part).
func floodHooks(b *testing.B, d *daemon) {
	runs := func() float64 {
		n := 0.0
		for _, r := range []string{"in_sync", "repaired", "drift", "error"} {
			n += d.labelledValue(b, "akminio_reconcile_runs_total", `result="`+r+`"`)
		}
		return n
	}
	heap0, rss0, runs0 := d.metricValue(b, "go_memstats_heap_inuse_bytes"), d.metricValue(b, "process_resident_memory_bytes"), runs()
	body := `{"body":"model_updated: {'model': {'app': 'authentik_core', 'model_name': 'group', 'pk': 'x', 'name': 'x'}, 'http_request': {'path': '/api/v3/core/groups/x/', 'method': 'PATCH', 'args': {}, 'user_agent': 'Mozilla/5.0', 'request_id': 'r'}}","severity":"notice","user_email":"","user_username":"ops","event_user_email":"","event_user_username":"ops"}`
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for range 1000 {
		<-tick.C
		req, _ := http.NewRequest(http.MethodPost, d.url+"/hooks/authentik", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+feedHookToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("flood: HTTP %d", resp.StatusCode)
		}
	}
	took := time.Since(start)
	d.waitStatusB(b, "the trailing run", func(st benchStatus) bool {
		return st.LastRun != nil && st.LastRun.Start.After(start.Add(took)) && st.Running == ""
	})
	heap1, rss1 := d.metricValue(b, "go_memstats_heap_inuse_bytes"), d.metricValue(b, "process_resident_memory_bytes")
	fmt.Printf("flood: 1000 requests in %s caused %.0f runs (debounce 1s: at most %d); heap in use %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB",
		took.Round(time.Millisecond), runs()-runs0, int(took/time.Second)+1, heap0/(1<<20), heap1/(1<<20), rss0/(1<<20), rss1/(1<<20))
	fmt.Println()
}

// labelledValue reads one labelled series, given as its label text (`result="in_sync"`).
func (d *daemon) labelledValue(b testing.TB, name, labels string) float64 {
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+"{"+labels+"} "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
