package aksim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

func TestFaultStatusNTimesThenNormal(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	s.Fault("/api/v3/core/groups/", aksim.Fault{Method: "GET", Status: 503, Times: 2})
	for i := range 2 {
		_, resp, err := c.CoreAPI.CoreGroupsList(ctx).Execute()
		if err == nil || resp == nil || resp.StatusCode != 503 {
			t.Fatalf("call %d: want injected 503, got %v", i, err)
		}
	}
	if _, _, err := c.CoreAPI.CoreGroupsList(ctx).Execute(); err != nil {
		t.Fatalf("third call must be normal: %v", err)
	}
	// The method limits the fault: a POST is unaffected.
	s.Fault("/api/v3/core/groups/", aksim.Fault{Method: "POST", Status: 500, Times: 1})
	if _, _, err := c.CoreAPI.CoreGroupsList(ctx).Execute(); err != nil {
		t.Fatalf("GET with a POST fault: %v", err)
	}
}

func TestFaultDelayAndHang(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	s.Fault("/api/v3/flows/", aksim.Fault{Delay: 300 * time.Millisecond, Times: 1})
	start := time.Now()
	if _, _, err := c.FlowsAPI.FlowsInstancesList(context.Background()).Execute(); err != nil {
		t.Fatalf("slow call must still succeed: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("slow call took %v, want >= 300ms", d)
	}
	s.Fault("/api/v3/flows/", aksim.Fault{Hang: true, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, _, err := c.FlowsAPI.FlowsInstancesList(ctx).Execute()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging call: got %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("hang outlived the client's context: %v", d)
	}
	if _, _, err := c.FlowsAPI.FlowsInstancesList(context.Background()).Execute(); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
}

func TestCounts(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	for range 3 {
		_, _, err := c.CoreAPI.CoreGroupsList(ctx).Execute()
		must(t, err)
	}
	_, err := s.AddGroup("x")
	must(t, err)
	_, _, err = c.CoreAPI.CoreUsersList(ctx).Execute()
	must(t, err)
	if n := s.Count(http.MethodGet, "/api/v3/core/groups/"); n != 3 {
		t.Fatalf("GET groups: %d, want 3", n)
	}
	if n := s.Count("", "/api/v3/core/"); n != 4 {
		t.Fatalf("any method under core: %d, want 4", n)
	}
	if n := s.Count(http.MethodPost, "/api/v3/"); n != 0 {
		t.Fatalf("POSTs: %d (Go helpers must not count)", n)
	}
	if got := s.Counts()["GET /api/v3/core/users/"]; got != 1 {
		t.Fatalf("Counts: %v", s.Counts())
	}
	s.ResetCounts()
	if n := s.Count("", "/"); n != 0 {
		t.Fatalf("after reset: %d", n)
	}
}

// TestFaultResetTruncateShortPage: a reset answers nothing, a truncated body is not JSON, a
// short page holds one result fewer than its count; Match narrows a fault to one page.
func TestFaultResetTruncateShortPage(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	list := func() (int, int, error) {
		l, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Execute()
		if err != nil {
			return 0, 0, err
		}
		return len(l.Results), int(l.Pagination.Count), nil
	}
	n, count, err := list()
	if err != nil || n != count || n < 2 {
		t.Fatalf("normal list: %d of %d, %v", n, count, err)
	}
	const prefix = "/api/v3/propertymappings/provider/scope/"
	// Go's transport sends a GET again once when a reused connection breaks: reset twice.
	s.Fault(prefix, aksim.Fault{Reset: true, Times: 2})
	if _, _, err := list(); err == nil {
		t.Fatal("a reset connection gave no error")
	}
	s.ClearFaults()
	s.Fault(prefix, aksim.Fault{Truncate: true, Times: 1})
	if _, _, err := list(); err == nil {
		t.Fatal("a truncated body decoded")
	}
	s.Fault(prefix, aksim.Fault{ShortPage: true, Times: 1})
	if got, gotCount, err := list(); err != nil || got != n-1 || gotCount != count {
		t.Fatalf("short page: %d of %d, %v; want %d of %d", got, gotCount, err, n-1, count)
	}
	s.Fault(prefix, aksim.Fault{Status: 500, Times: 1, Match: func(r *http.Request) bool { return r.URL.Query().Get("page") == "2" }})
	if got, _, err := list(); err != nil || got != n {
		t.Fatalf("a fault of page 2 hit page 1: %d, %v", got, err)
	}
}
