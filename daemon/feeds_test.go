package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// TestFeedsStatusMetricAndRunReasons: the events counter exists for both sources from the
// start; a relevant authentik notification is counted, shows as last delivered and causes a
// run whose reason names the source; /status says the feeds are installed when events.install
// is on and the last observing run found no drift on them.
func TestFeedsStatusMetricAndRunReasons(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events = config.Events{Install: true, PublicURL: "http://127.0.0.1:9470"}
	var feedDrift atomic.Bool
	feedDrift.Store(true)
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		if feedDrift.Load() {
			return drifted(reconcile.Change{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate,
				Kind: reconcile.KindAuditWebhook, Name: reconcile.FeedName}), nil
		}
		return inSync(), nil
	}}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	for _, src := range eventSources {
		if v := h.metric("akminio_events_received_total", map[string]string{"source": src}); v != 0 {
			t.Errorf("akminio_events_received_total{source=%q} = %v at start, want 0", src, v)
		}
	}
	eventually(t, "the start run", func() bool { return h.runs(ResultDrift) == 1 })
	st := h.status()
	if st.Events[SourceMinIO].Installed || !st.Events[SourceAuthentik].Installed || st.Events[SourceAuthentik].LastDelivered != nil {
		t.Fatalf("events with MinIO's feed missing: %+v", st.Events)
	}

	feedDrift.Store(false)
	code, body := h.do(http.MethodPost, "/hooks/authentik", hookToken, akNotification("model_updated", "authentik_providers_oauth2", "scopemapping", "python-requests/2.32"))
	if code != http.StatusAccepted {
		t.Fatalf("relevant notification: %d %s", code, body)
	}
	eventually(t, "the hook's run", func() bool { return h.runs(ResultInSync) == 1 })
	st = h.status()
	if len(st.RecentRuns) != 2 || st.RecentRuns[0].Reason != "hook:authentik" || st.RecentRuns[1].Reason != "start" ||
		st.LastRun.Reason != "hook:authentik" {
		t.Fatalf("run reasons: last %+v, recent %+v", st.LastRun, st.RecentRuns)
	}
	if !st.Events[SourceMinIO].Installed || st.Events[SourceAuthentik].LastDelivered == nil || st.Events[SourceAuthentik].Received != 1 {
		t.Fatalf("events after the hook: %+v", st.Events)
	}
	if v := h.metric("akminio_events_received_total", map[string]string{"source": SourceAuthentik}); v != 1 {
		t.Errorf("akminio_events_received_total{source=authentik} = %v, want 1", v)
	}
}

// TestHookRefusalsTriggerNothing: no token, a wrong token, a body over the limit and a
// malformed body are refused with 401, 401, 413 and 400, are not counted, and cause no run.
func TestHookRefusalsTriggerNothing(t *testing.T) {
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { calls.Add(1); return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })
	good := akNotification("model_updated", "authentik_core", "group", "Mozilla/5.0")
	huge := `{"body":"` + strings.Repeat("x", maxHookBody) + `"}`
	for _, tc := range []struct {
		name, path, token, body string
		want                    int
	}{
		{"no token", "/hooks/authentik", "", good, http.StatusUnauthorized},
		{"wrong token", "/hooks/authentik", "not-the-hook-token", good, http.StatusUnauthorized},
		{"oversized", "/hooks/authentik", hookToken, huge, http.StatusRequestEntityTooLarge},
		{"malformed", "/hooks/authentik", hookToken, `{"body": 3}`, http.StatusBadRequest},
		{"no token (minio)", "/hooks/minio", "", `{"api":{"name":"AddCannedPolicy"}}`, http.StatusUnauthorized},
		{"oversized (minio)", "/hooks/minio", hookToken, `{"api":{"name":"` + strings.Repeat("x", maxHookBody) + `"}}`, http.StatusRequestEntityTooLarge},
		{"malformed (minio)", "/hooks/minio", hookToken, `{"api":`, http.StatusBadRequest},
	} {
		if code, body := h.do(http.MethodPost, tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s: %d %.200s, want %d", tc.name, code, body, tc.want)
		}
	}
	h.d.mu.Lock()
	waiting := len(h.d.feeds.hookSources)
	h.d.mu.Unlock()
	if waiting != 0 {
		t.Fatalf("refused deliveries wait for the debounce: %d sources", waiting)
	}
	// A trigger after the refusals: its run is the only one.
	h.d.Trigger("reconcile")
	eventually(t, "the triggered run", func() bool { return h.runs(ResultInSync) == 2 })
	st := h.status()
	if n := calls.Load(); n != 2 || st.RecentRuns[0].Reason != "reconcile" || st.RecentRuns[1].Reason != "start" {
		t.Fatalf("runs: %d, %+v", n, st.RecentRuns)
	}
	for _, src := range eventSources {
		if v := h.metric("akminio_events_received_total", map[string]string{"source": src}); v != 0 {
			t.Errorf("refused deliveries counted: %s = %v", src, v)
		}
	}
}

// TestHookFloodIsDebounced: 1,000 relevant hook requests spread over 10 s, half from each
// source. The daemon stays healthy throughout and runs at most 10 s / debounce + 1 times
// (plus its start run). Memory over a flood is measured by bench/latency (docs/benchmarks.md).
func TestHookFloodIsDebounced(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.Debounce = time.Second
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { calls.Add(1); return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })

	const n, over = 1000, 10 * time.Second
	ak := akNotification("model_updated", "authentik_core", "application", "Mozilla/5.0")
	mc := `{"api":{"name":"AddCannedPolicy"},"userAgent":"MinIO (linux; amd64) madmin-go/v3 mc/2025"}`
	tick := time.NewTicker(over / n)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		path, body, want := "/hooks/authentik", ak, http.StatusAccepted
		if i%2 == 1 {
			path, body, want = "/hooks/minio", mc, http.StatusOK
		}
		if code, b := h.do(http.MethodPost, path, hookToken, body); code != want {
			t.Fatalf("request %d: %d %s", i, code, b)
		}
		if i%100 == 0 {
			if code, b := h.get("/healthz"); code != http.StatusOK {
				t.Fatalf("healthz during the flood: %d %s", code, b)
			}
		}
	}
	eventually(t, "the trailing run", func() bool {
		return h.status().RecentRuns[0].Reason == "hook:authentik,minio" && h.status().Running == ""
	})
	if code, b := h.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after the flood: %d %s", code, b)
	}
	maxRuns := int32(over/cfg.HTTP.Debounce) + 1
	if got := calls.Load() - 1; got < 1 || got > maxRuns {
		t.Fatalf("the flood made %d runs, want 1..%d", got, maxRuns)
	}
	if v := h.metric("akminio_events_received_total", map[string]string{"source": SourceAuthentik}); v != n/2 {
		t.Errorf("events received from authentik = %v, want %d", v, n/2)
	}
}

// TestHookRunRetriedWhenItCannotObserve: a run caused by an event that cannot observe (a
// backend restarting) is retried one debounce later, with the event's source as its reason;
// a scheduled or requested run that fails is not.
func TestHookRunRetriedWhenItCannotObserve(t *testing.T) {
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		switch calls.Add(1) {
		case 2, 3: // the hook's run and its first retry
			return nil, &reconcile.ObserveError{Failed: map[reconcile.System]error{reconcile.SystemMinIO: errors.New("minio: server is starting")}}
		}
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })
	if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, `{"api":{"name":"ServiceV2"},"userAgent":"mc"}`); code != http.StatusOK || !strings.Contains(body, `"triggered": true`) {
		t.Fatalf("a restart's audit entry: %d %s", code, body)
	}
	eventually(t, "the retried run", func() bool { return h.runs(ResultInSync) == 2 })
	st := h.status()
	var reasons []string
	for _, r := range st.RecentRuns {
		reasons = append(reasons, r.Reason+"="+r.Result)
	}
	if strings.Join(reasons, " ") != "hook:minio=in_sync hook:minio=error hook:minio=error start=in_sync" {
		t.Fatalf("runs, newest first: %v", reasons)
	}
}
