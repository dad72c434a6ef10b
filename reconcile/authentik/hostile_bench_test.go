package authentik

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkObserveHostile measures what a hostile authentik costs an Observe: bytes
// allocated (B/op) and the peak heap while it ran (peak-heap-MiB). Results are in
// docs/benchmarks.md ("Against a hostile authentik"). Run with -benchtime=1x (the budget case reads 128 MiB).
//
//	huge-body     page 1 of groups is a valid 50 MB page (chunked: no Content-Length)
//	pages-2e9     page 1 claims 2,000,000,000 pages
//	budget        a consistent list at the limits (100,000 groups on 1,000 pages), every
//	              page just under MaxResponseBytes with the bulk inside the results, so
//	              that what Observe keeps grows until MaxObserveBytes stops it: the worst
//	              case the limits allow
func BenchmarkObserveHostile(b *testing.B) {
	for _, tc := range []struct {
		name string
		page func(template map[string]any) []byte
	}{
		{"huge-body", func(tpl map[string]any) []byte {
			tpl["autocomplete"] = map[string]any{"pad": strings.Repeat("A", 50<<20)}
			return mustJSON(b, tpl)
		}},
		{"pages-2e9", func(tpl map[string]any) []byte {
			setPagination(tpl, 250, 2e9)
			return mustJSON(b, tpl)
		}},
		{"budget", func(tpl map[string]any) []byte {
			res := tpl["results"].([]any)
			full := make([]any, 0, 100)
			for i := range 100 {
				g := map[string]any{}
				for k, v := range res[i%len(res)].(map[string]any) {
					g[k] = v
				}
				g["attributes"] = map[string]any{"pad": strings.Repeat("A", (MaxResponseBytes-(64<<10))/100)}
				full = append(full, g)
			}
			tpl["results"] = full
			setPagination(tpl, MaxListItems, MaxListItems/100)
			return mustJSON(b, tpl)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b)
			f.seedGroups(b, 10, groupName)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/api/v3/core/groups/?include_users=false&page=1&page_size=100", nil)
			req.Header.Set("Authorization", "Bearer "+f.sim.Token())
			f.sim.ServeHTTP(rec, req)
			var tpl map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &tpl); err != nil {
				b.Fatal(err)
			}
			body := tc.page(tpl)
			tpl = nil
			f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/v3/core/groups/" {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if tc.name != "huge-body" {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				_, _ = w.Write(body)
			})
			d := desired()
			runtime.GC()
			runtime.GC() // twice: sync.Pool's victim cache holds the encoder's buffer once
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // sample the heap while Observe runs
				defer close(done)
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			var err error
			for range b.N {
				if _, err = f.ad.Observe(context.Background(), d); err == nil {
					b.Fatal("a hostile authentik was observed without error")
				}
			}
			b.StopTimer()
			close(stop)
			<-done
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapAlloc))/(1<<20), "peak-heap-MiB")
			b.Logf("Observe: %v", err)
		})
	}
}

func mustJSON(b *testing.B, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
