package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
)

// SoakRunsEnv sets how many runs TestSoak makes (default soakRunsCI). The long soak of
// docs/reliability.md is AKMINIO_SOAK_RUNS=2000.
const SoakRunsEnv = "AKMINIO_SOAK_RUNS"

const soakRunsCI = 200

// Growth bounds, measured with 2,000 runs (docs/reliability.md) and set with a wide margin:
// from the first tenth of the runs (after warm-up) to the last tenth, the mean of each
// sample may grow by at most this much.
const (
	maxHeapGrowth      = 8 << 20  // bytes of go_memstats_heap_alloc_bytes
	maxRSSGrowth       = 24 << 20 // bytes of process_resident_memory_bytes
	maxGoroutineGrowth = 4        // go_goroutines
)

type soakSample struct {
	run                  int
	heap, rss, goroutine float64
}

// TestSoak runs the real `akminio run` against the real MinIO and the simulator for many
// runs: a schedule of one second, and a run asked for with POST /reconcile?wait=true as
// soon as the last one ended; every 10th run finds drift (a policy removed in MinIO, or the
// provider changed in authentik, in turn) and must repair it, every other run must find
// the estate in sync. Heap, RSS and goroutines are read from /metrics every 5 runs; the
// test fails when their mean over the last tenth of the runs exceeds the mean over the
// first tenth (after a warm-up tenth) by more than the bounds above.
func TestSoak(t *testing.T) {
	runs := soakRunsCI
	if v := os.Getenv(SoakRunsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("%s=%q: want a number of runs, at least 100", SoakRunsEnv, v)
		}
		runs = n
	}
	s := newSuite(t)
	const hookToken = "soak-hook-token-5d1e9a7c3b2f4e6a8d0c1b3e"
	cfg := deepCopy(s.cfg)
	cfg["schedule"] = map[string]any{"reconcile": "@every 1s", "rotate_secret": "", "jitter": "0s"}
	cfg["http"].(map[string]any)["hook_token"] = hookToken
	s.write(t, cfg)
	d := startDaemon(t, s.env)
	d.waitStatus(t, "the first run", func(st daemonStatus) bool { return st.LastRun != nil })
	scan := e2eenvtest.Scan(s.env)
	scan.Secret("hook token", hookToken)

	var samples []soakSample
	start := time.Now()
	for i := 1; i <= runs; i++ {
		drift := i%10 == 0
		if drift {
			if (i/10)%2 == 0 {
				if err := s.adm.RemoveCannedPolicy(context.Background(), e2eenv.CustomPolicy); err != nil {
					t.Fatal(err)
				}
			} else {
				s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{AccessCodeValidity: ptr("minutes=7")})
			}
		}
		res := d.reconcile(t, hookToken)
		want := "in_sync"
		if drift {
			want = "repaired"
		}
		// A scheduled run may have repaired the drift just before ours: then ours is in sync.
		if res.Result != want && !(drift && res.Result == "in_sync") {
			t.Fatalf("run %d: result %q (%s), want %q", i, res.Result, res.Error, want)
		}
		if i%5 == 0 {
			samples = append(samples, d.sample(t, i))
		}
		if i%100 == 0 {
			last := samples[len(samples)-1]
			t.Logf("run %d after %s: heap %.1f MiB, RSS %.1f MiB, %0.f goroutines", i, time.Since(start).Round(time.Second),
				last.heap/(1<<20), last.rss/(1<<20), last.goroutine)
		}
	}
	took := time.Since(start)
	if plan, code := s.planJSON(t); code != 0 || len(plan.Changes) != 0 {
		t.Errorf("after the soak, plan exits %d with drift %v", code, plan.Changes)
	}
	d.get(t, "/status")

	n := len(samples)
	first, last := samples[n/10:2*n/10], samples[n-n/10:]
	mean := func(ss []soakSample, f func(soakSample) float64) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	heap := func(s soakSample) float64 { return s.heap }
	rss := func(s soakSample) float64 { return s.rss }
	gor := func(s soakSample) float64 { return s.goroutine }
	report := fmt.Sprintf("soak: %d runs in %s (%.0f ms a run); heap %.1f -> %.1f MiB (slope %.1f KiB per 1000 runs), "+
		"RSS %.1f -> %.1f MiB (slope %.1f KiB per 1000 runs), goroutines %.1f -> %.1f",
		runs, took.Round(time.Second), float64(took.Milliseconds())/float64(runs),
		mean(first, heap)/(1<<20), mean(last, heap)/(1<<20), slope(samples[n/10:], heap)*1000/1024,
		mean(first, rss)/(1<<20), mean(last, rss)/(1<<20), slope(samples[n/10:], rss)*1000/1024,
		mean(first, gor), mean(last, gor))
	t.Log(report)
	if g := mean(last, heap) - mean(first, heap); g > maxHeapGrowth {
		t.Errorf("heap grew by %.1f MiB, more than %d MiB: %s", g/(1<<20), maxHeapGrowth>>20, report)
	}
	if g := mean(last, rss) - mean(first, rss); g > maxRSSGrowth {
		t.Errorf("RSS grew by %.1f MiB, more than %d MiB: %s", g/(1<<20), maxRSSGrowth>>20, report)
	}
	if g := mean(last, gor) - mean(first, gor); g > maxGoroutineGrowth {
		t.Errorf("goroutines grew by %.1f, more than %d: %s", g, maxGoroutineGrowth, report)
	}
	if path := os.Getenv("AKMINIO_SOAK_REPORT"); path != "" {
		var b strings.Builder
		fmt.Fprintln(&b, "run\theap_bytes\trss_bytes\tgoroutines")
		for _, s := range samples {
			fmt.Fprintf(&b, "%d\t%.0f\t%.0f\t%.0f\n", s.run, s.heap, s.rss, s.goroutine)
		}
		if err := os.WriteFile(path, []byte(report+"\n"+b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// slope is the least-squares slope of f over the samples, per run.
func slope(ss []soakSample, f func(soakSample) float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(ss))
	for _, s := range ss {
		x, y := float64(s.run), f(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

type runResult struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

// reconcile asks for a run and waits for its result.
func (d *daemon) reconcile(t *testing.T, token string) runResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.url+"/reconcile?wait=true", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r runResult
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
		t.Fatalf("POST /reconcile?wait=true: %d %s", resp.StatusCode, b)
	}
	return r
}

// sample reads heap, RSS and goroutines from /metrics (get records the body for the leak
// scan).
func (d *daemon) sample(t *testing.T, run int) soakSample {
	t.Helper()
	body := d.get(t, "/metrics")
	s := soakSample{run: run, heap: -1, rss: -1, goroutine: -1}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_alloc_bytes":
			s.heap = f
		case "process_resident_memory_bytes":
			s.rss = f
		case "go_goroutines":
			s.goroutine = f
		}
	}
	if s.heap < 0 || s.rss < 0 || s.goroutine < 0 {
		t.Fatalf("/metrics lacks go_memstats_heap_alloc_bytes, process_resident_memory_bytes or go_goroutines")
	}
	return s
}
