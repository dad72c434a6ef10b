package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// Size of the benchmark's estate: groups bound to policies (the two demo bindings
// included) and declared policies.
const (
	benchBindings = 1000
	benchPolicies = 500
)

// BenchmarkInSync measures one in-sync run (Engine.Apply in process, after a first apply
// that created everything) against 1,000 bindings and 500 declared policies: wall time,
// requests to authentik (the simulator's count, discovery included) and to MinIO (counted
// in the adapter's transport), allocations. Targets: under 1 s, at most 20 authentik
// requests, at most 4 MinIO requests. See docs/benchmarks.md.
//
// Variants: restrict_access false with no canary users (the target), the same with two
// canary users (verification adds their previews), and restrict_access true (the
// application's policy bindings are listed too: 1,000 bindings are ~10 more pages).
func BenchmarkInSync(b *testing.B) {
	env := e2eenvtest.Start(b)
	if err := seedEstate(env); err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name     string
		restrict bool
		users    []any
	}{
		{"restrict_access=false/verify=0", false, []any{}},
		{"restrict_access=false/verify=2", false, []any{"alice", "bob"}},
		{"restrict_access=true/verify=0", true, []any{}}, // last: its apply creates 1,000 bindings
	} {
		cfg := benchConfig(env, v.restrict, v.users)
		if err := env.WriteConfig(cfg); err != nil {
			b.Fatal(err)
		}
		eng, count := benchEngine(b, env)
		ctx := context.Background()
		start := time.Now()
		if res, err := eng.Apply(ctx); err != nil || !res.InSync() {
			b.Fatalf("%s: setting up apply: %v; remaining %+v", v.name, err, res)
		}
		b.Logf("%s: setting up apply took %s", v.name, time.Since(start).Round(time.Millisecond))
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			env.AK.ResetCounts()
			count.Store(0)
			b.ResetTimer()
			for b.Loop() {
				res, err := eng.Apply(ctx)
				if err != nil || !res.InSync() || len(res.Applied) > 0 {
					b.Fatalf("in-sync run: %v; applied %v; remaining %+v", err, res.Applied, res.Remaining)
				}
			}
			b.StopTimer()
			b.Logf("authentik requests in %d runs: %v", b.N, env.AK.Counts())
			b.ReportMetric(float64(env.AK.Count("", "/"))/float64(b.N), "authentik-req/op")
			b.ReportMetric(float64(count.Load())/float64(b.N), "minio-req/op")
		})
		if !v.restrict && len(v.users) == 0 {
			b.Run("simulator-alone", func(b *testing.B) { benchSimulatorAlone(b, env) })
		}
	}
}

// Request targets of one in-sync run in BenchmarkInSync's target case (see
// docs/benchmarks.md). Counts are stable, so a test holds them; times are not, so they
// stay in the benchmark.
const (
	inSyncAuthentikRequests = 20
	inSyncMinIORequests     = 4
)

// TestInSyncRequestCounts runs BenchmarkInSync's target case (1,000 bindings, 500 policies,
// restrict_access false, no canary users) once and holds it to the benchmark's request
// targets; the counters are shown to count by the setting-up apply, which must exceed them.
func TestInSyncRequestCounts(t *testing.T) {
	env := e2eenvtest.Start(t)
	if err := seedEstate(env); err != nil {
		t.Fatal(err)
	}
	if err := env.WriteConfig(benchConfig(env, false, []any{})); err != nil {
		t.Fatal(err)
	}
	eng, count := benchEngine(t, env)
	ctx := context.Background()
	if res, err := eng.Apply(ctx); err != nil || !res.InSync() {
		t.Fatalf("setting up apply: %v; remaining %+v", err, res)
	}
	if ak, mc := env.AK.Count("", "/"), count.Load(); ak <= inSyncAuthentikRequests || mc <= inSyncMinIORequests {
		t.Fatalf("the setting-up apply (500 policies, 1,000 groups) counted %d authentik and %d MinIO requests: the counters do not count", ak, mc)
	}
	env.AK.ResetCounts()
	count.Store(0)
	res, err := eng.Apply(ctx)
	if err != nil || !res.InSync() || len(res.Applied) > 0 {
		t.Fatalf("in-sync run: %v; applied %v; remaining %+v", err, res.Applied, res.Remaining)
	}
	if got := env.AK.Count("", "/"); got == 0 || got > inSyncAuthentikRequests {
		t.Errorf("authentik requests of an in-sync run = %d, want 1..%d: %v", got, inSyncAuthentikRequests, env.AK.Counts())
	}
	if got := count.Load(); got == 0 || got > inSyncMinIORequests {
		t.Errorf("MinIO requests of an in-sync run = %d, want 1..%d", got, inSyncMinIORequests)
	}
	t.Logf("in-sync run: %d authentik requests, %d MinIO requests", env.AK.Count("", "/"), count.Load())
}

// benchSimulatorAlone replays the authentik requests of one in-sync run (recorded from a
// run of an engine whose authentik client records them) with a plain HTTP client, four at
// a time as the adapter does. The simulator runs inside the benchmark's process, so its
// time and allocations are part of every figure above; this is its share.
func benchSimulatorAlone(b *testing.B, env *e2eenv.Env) {
	cfg, _, err := config.Load(env.ConfigPath, nil)
	if err == nil {
		err = cfg.RequireSecrets()
	}
	if err != nil {
		b.Fatal(err)
	}
	var urls []string
	var mu sync.Mutex
	rec := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		urls = append(urls, r.URL.String())
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	ak, err := authentik.New(cfg.Authentik, authentik.WithHTTPClient(rec))
	if err != nil {
		b.Fatal(err)
	}
	mc, err := minio.New(cfg.MinIO)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := reconcile.NewEngine(cfg, ak, mc, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	eng.HTTP = rec // the discovery check
	if _, err := eng.DryRun(context.Background()); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	get := func(u string) error {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+env.AK.Token())
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var g errgroup.Group
		g.SetLimit(4)
		for _, u := range urls {
			g.Go(func() error { return get(u) })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(urls)), "authentik-req/op")
}

// seedEstate adds the groups the benchmark's bindings name (the demo's two exist).
func seedEstate(env *e2eenv.Env) error {
	for i := range benchBindings - 2 {
		if _, err := env.AK.AddGroup(benchGroup(i)); err != nil {
			return err
		}
	}
	return nil
}

func benchGroup(i int) string  { return fmt.Sprintf("team-%04d", i) }
func benchPolicy(i int) string { return fmt.Sprintf("bucket-%03d-rw", i) }

// benchConfig is the demo config with 500 declared policies and 1,000 bindings.
func benchConfig(env *e2eenv.Env, restrict bool, users []any) map[string]any {
	cfg := env.DefaultConfig()
	policies := map[string]any{}
	for i := range benchPolicies {
		bucket := fmt.Sprintf("arn:aws:s3:::bucket-%03d", i)
		policies[benchPolicy(i)] = map[string]any{"document": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect": "Allow", "Action": []any{"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
				"Resource": []any{bucket, bucket + "/*"},
			}},
		}}
	}
	cfg["policies"] = policies
	bindings := cfg["bindings"].([]any)
	for i := range benchBindings - len(bindings) {
		bindings = append(bindings, map[string]any{"group": benchGroup(i), "policies": []any{benchPolicy(i % benchPolicies)}})
	}
	cfg["bindings"] = bindings
	section(cfg, "authentik")["restrict_access"] = restrict
	cfg["verify"] = map[string]any{"users": users}
	return cfg
}

// benchEngine builds the engine as `akminio apply` does, from the written config, with a
// request counter in the MinIO adapter's transport.
func benchEngine(b testing.TB, env *e2eenv.Env) (*reconcile.Engine, *atomic.Int64) {
	b.Helper()
	cfg, _, err := config.Load(env.ConfigPath, nil)
	if err == nil {
		err = cfg.RequireSecrets()
	}
	if err != nil {
		b.Fatal(err)
	}
	ak, err := authentik.New(cfg.Authentik)
	if err != nil {
		b.Fatal(err)
	}
	count := &atomic.Int64{}
	mc, err := minio.New(cfg.MinIO, minio.WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			count.Add(1)
			return next.RoundTrip(r)
		})
	}))
	if err != nil {
		b.Fatal(err)
	}
	eng, err := reconcile.NewEngine(cfg, ak, mc, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return eng, count
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
