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
