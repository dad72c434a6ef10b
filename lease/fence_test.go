package lease

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

type gateFunc func(ctx context.Context, step string) error

func (f gateFunc) MayWrite(ctx context.Context, step string) error { return f(ctx, step) }

// TestFenceRefusesWritesOnly: reads always pass; a write passes only when the gate allows it,
// and a refused one never reaches the server and is answered 403 with the reason.
func TestFenceRefusesWritesOnly(t *testing.T) {
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer srv.Close()
	allow := atomic.Bool{}
	var steps []string
	c := &http.Client{Transport: Fence(gateFunc(func(_ context.Context, step string) error {
		steps = append(steps, step)
		if allow.Load() {
			return nil
		}
		return errors.New("not allowed to write: not the leader")
	}), http.DefaultTransport)}

	if resp, err := c.Get(srv.URL + "/read"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET through the fence: %v %v", resp, err)
	}
	resp, err := c.Post(srv.URL+"/write", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get(RefusedHeader), "not the leader") {
		t.Fatalf("refused write: %d %q", resp.StatusCode, resp.Header.Get(RefusedHeader))
	}
	if reached.Load() != 1 {
		t.Fatalf("the server saw %d requests, want only the read", reached.Load())
	}
	allow.Store(true)
	if resp, err := c.Post(srv.URL+"/write", "application/json", strings.NewReader("{}")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("allowed write: %v %v", resp, err)
	}
	if reached.Load() != 2 || len(steps) != 2 || steps[0] != "POST /write" {
		t.Fatalf("server saw %d, gate asked %v", reached.Load(), steps)
	}
}
