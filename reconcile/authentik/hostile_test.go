package authentik

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

// rewriteGroups interposes on group list pages: edit changes the simulator's answer for a
// page (its decoded JSON) before it is sent.
func (f *fixture) rewriteGroups(edit func(page string, body map[string]any)) {
	f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v3/core/groups/" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		page := r.URL.Query().Get("page")
		if page == "" {
			page = "1"
		}
		edit(page, body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

func setPagination(body map[string]any, count, pages float64) {
	pg := body["pagination"].(map[string]any)
	pg["count"], pg["total_pages"] = count, pages
}

// TestObserveHostilePagination: a server whose pagination does not add up, or that claims
// more than akminio reads, gives a failed observation after page 1 alone: no other page is
// requested (nothing is allocated or started by the claim), nothing is written, and Observe
// ends on its own well before its deadline.
func TestObserveHostilePagination(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(page string, body map[string]any)
		pages int // group list requests expected
		want  string
	}{
		{"total_pages 2e9", func(page string, b map[string]any) { setPagination(b, 250, 2e9) }, 1,
			"claims 2e+09 pages, more than akminio reads (10000)"},
		{"count -1", func(page string, b map[string]any) { setPagination(b, -1, 3) }, 1,
			"count is not a non-negative whole number"},
		{"count 2e9, pages consistent", func(page string, b map[string]any) { setPagination(b, 2e9, 2e7) }, 1,
			"claims 2e+09 results, more than akminio reads (100000)"},
		{"count inconsistent with pages", func(page string, b map[string]any) { setPagination(b, 250, 1000) }, 1,
			"total_pages is not the count divided by the page size"},
		{"one page but a larger count", func(page string, b map[string]any) { setPagination(b, 250, 1) }, 1,
			"a single page must hold the whole count"},
		{"fractional count", func(page string, b map[string]any) { setPagination(b, 250.5, 3) }, 1,
			"count is not a non-negative whole number"},
		{"page 2 changes total_pages", func(page string, b map[string]any) {
			if page == "2" {
				setPagination(b, 250, 4)
			}
		}, 3, "changed while being read (total_pages 3 on page 1, 4 on page 2)"},
		{"page 2 holds too many", func(page string, b map[string]any) {
			if page == "2" {
				res := b["results"].([]any)
				b["results"] = append(res, res[0])
			}
		}, 3, "incomplete list: 101 results on page 2 of 3, want 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seedGroups(t, 250-1, groupName) // with "authentik Admins": 250, 3 pages
			d := desired()
			f.sim.ResetCounts()
			f.rewriteGroups(tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := f.ad.Observe(ctx, d)
			if err == nil || !strings.Contains(err.Error(), "authentik: list groups: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Observe error = %v, want one naming the group list and containing %q", err, tc.want)
			}
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Errorf("Observe ran into its deadline instead of refusing the answer: %v", err)
			}
			if !reflect.DeepEqual(st, reconcile.AuthentikState{}) {
				t.Errorf("a failed Observe returned partial state: %+v", st)
			}
			if n := f.sim.Count(http.MethodGet, "/api/v3/core/groups/"); n > tc.pages {
				t.Errorf("group list requests = %d, want at most %d", n, tc.pages)
			}
			if f.writes() != 0 {
				t.Errorf("a failed Observe wrote")
			}
		})
	}
}

// TestObserveHugeBody: a valid page carrying a 50 MB field is refused at MaxResponseBytes
// (8 MiB): a failed observation, no write, and Observe allocates far less than the body.
func TestObserveHugeBody(t *testing.T) {
	f := newFixture(t)
	f.seedGroups(t, 10, groupName)
	d := desired()
	// The simulator's first page of groups, padded to 50 MB: valid JSON of the right shape.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v3/core/groups/?include_users=false&page=1&page_size=100", nil)
	req.Header.Set("Authorization", "Bearer "+f.sim.Token())
	f.sim.ServeHTTP(rec, req)
	var page map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	page["autocomplete"] = map[string]any{"pad": strings.Repeat("A", 50<<20)}
	huge, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	page = nil
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "content-length", true: "chunked"}[chunked], func(t *testing.T) {
			observeHuge(t, f, d, huge, chunked)
		})
	}
}

func observeHuge(t *testing.T, f *fixture, d *reconcile.Desired, huge []byte, chunked bool) {
	f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v3/core/groups/" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(huge)))
		}
		_, _ = w.Write(huge)
	})
	f.sim.ResetCounts()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := f.ad.Observe(ctx, d)
	runtime.ReadMemStats(&after)

	var tl *httplimit.TooLargeError
	if err == nil || !errors.As(err, &tl) || !strings.Contains(err.Error(), "authentik: list groups (page 1): ") ||
		!strings.Contains(err.Error(), "response body exceeds akminio's limit of 8 MiB") {
		t.Fatalf("Observe error = %v, want the group list's body refused at 8 MiB", err)
	}
	if !reflect.DeepEqual(st, reconcile.AuthentikState{}) {
		t.Errorf("a failed Observe returned partial state: %+v", st)
	}
	if f.writes() != 0 {
		t.Errorf("a failed Observe wrote")
	}
	// What this process allocated while Observe ran (the other lists, the server and the
	// race detector included): bounded by the 8 MiB cap (io.ReadAll's doubling buffer
	// makes that ~16 MiB), not by the 50 MB the server sent. Without the cap it is >100 MiB.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MiB during Observe of a %d MiB answer", float64(alloc)/(1<<20), len(huge)>>20)
	if alloc > 40<<20 {
		t.Errorf("Observe allocated %d MiB, want under 40 MiB", alloc>>20)
	}
}

// TestObserveSlowPagesEndsAtDeadline: a consistent but endless-looking list (100,000
// groups, 1,000 pages) whose later pages never answer: Observe has at most the Adapter's
// concurrency of pages in flight and about as many goroutines, ends when its deadline does,
// and sends nothing more after it returned.
func TestObserveSlowPagesEndsAtDeadline(t *testing.T) {
	f := newFixture(t)
	f.seedGroups(t, 150, groupName)
	d := desired()
	f.sim.ResetCounts()
	var inFlight, peak, total atomic.Int32
	release := make(chan struct{})
	f.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v3/core/groups/" {
			next.ServeHTTP(w, r)
			return
		}
		total.Add(1)
		if r.URL.Query().Get("page") != "1" {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		size := len(body["results"].([]any))
		setPagination(body, float64(MaxListItems), float64(MaxListItems/size))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
	defer close(release)

	goroutinesBefore := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var goroutinesDuring int
	go func() {
		_, err := f.ad.Observe(ctx, d)
		done <- err
	}()
	// Wait until the Adapter's concurrency is used up by hanging pages, then count.
	for inFlight.Load() < DefaultConcurrency && ctx.Err() == nil {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	goroutinesDuring = runtime.NumGoroutine()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Observe did not end 18 s after its deadline")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Observe error = %v, want the deadline", err)
	}
	if p := peak.Load(); p > DefaultConcurrency {
		t.Errorf("%d pages in flight at once, want at most %d", p, DefaultConcurrency)
	}
	// Per request in flight: the client's, the transport's two connection loops and the
	// server's connection goroutine, plus the Observe group; not one per claimed page.
	if extra := goroutinesDuring - goroutinesBefore; extra > 60 {
		t.Errorf("%d more goroutines while Observe waited on %d pages, want a bounded few", extra, DefaultConcurrency)
	}
	t.Logf("%d goroutines more during Observe; %d group list requests", goroutinesDuring-goroutinesBefore, total.Load())
	// Nothing more is sent once Observe returned: wait for the hanging ones to see the
	// end, then check no new request arrives.
	for inFlight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	n := total.Load()
	if n > 1+2*DefaultConcurrency {
		t.Errorf("%d group list requests, want page 1 and the pages in flight", n)
	}
	time.Sleep(100 * time.Millisecond) // a request started late would arrive within this
	if m := total.Load(); m != n {
		t.Errorf("%d group list requests after Observe returned", m-n)
	}
	if f.writes() != 0 {
		t.Errorf("a failed Observe wrote")
	}
}

// TestCheckPagination is the table of checkPagination over authentik's (Django's) shapes.
func TestCheckPagination(t *testing.T) {
	pg := func(count, pages float32) api.Pagination { return api.Pagination{Count: count, TotalPages: pages} }
	for _, tc := range []struct {
		pg       api.Pagination
		got, ask int
		ok       bool
	}{
		{pg(0, 1), 0, 100, true},       // an empty list has one page
		{pg(100, 1), 100, 100, true},   // exactly one full page
		{pg(101, 2), 100, 100, true},   // one more
		{pg(250, 13), 20, 100, true},   // the server capped the size at 20
		{pg(0, 0), 0, 100, false},      // no pages
		{pg(5, 1), 6, 100, false},      // more results than the count
		{pg(500, 5), 101, 100, false},  // a page larger than asked
		{pg(250, 3), 0, 100, false},    // an empty first page of many
		{pg(1e5, 1e3), 100, 100, true}, // at the cap
		{pg(1e5+1, 1e3+1), 100, 100, false},
		{pg(1e4+1, 1e4+1), 1, 100, false},
	} {
		_, err := checkPagination(tc.pg, tc.got, tc.ask)
		if (err == nil) != tc.ok {
			t.Errorf("checkPagination(count %v, pages %v, got %d, asked %d) = %v, want ok %v", tc.pg.Count, tc.pg.TotalPages, tc.got, tc.ask, err, tc.ok)
		}
	}
}
