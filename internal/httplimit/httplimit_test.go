package httplimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// server answers /n with n bytes; ?cl=no sends them chunked (no Content-Length).
func server(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if r.URL.Query().Get("cl") != "no" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		chunk := strings.Repeat("x", 4096)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := io.WriteString(w, chunk[:k]); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok && r.URL.Query().Get("cl") == "no" {
				f.Flush()
			}
			n -= k
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func read(ctx context.Context, c *http.Client, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return len(b), err
}

func TestBodyCap(t *testing.T) {
	url := server(t)
	c := Client(nil, 10_000)
	for _, tc := range []struct {
		n       int
		query   string
		tooLong bool
	}{
		{10_000, "", false},
		{10_000, "?cl=no", false},
		{10_001, "", true},
		{10_001, "?cl=no", true},
		{50 << 20, "?cl=no", true},
		{0, "", false},
	} {
		t.Run(fmt.Sprint(tc.n, tc.query), func(t *testing.T) {
			got, err := read(context.Background(), c, fmt.Sprintf("%s/%d%s", url, tc.n, tc.query))
			var tl *TooLargeError
			if tc.tooLong {
				if !errors.As(err, &tl) || tl.Budget || got > 10_000 {
					t.Fatalf("read %d bytes, err %v; want at most 10000 and a TooLargeError", got, err)
				}
				if want := "response body exceeds akminio's limit of 10000 bytes"; err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
				return
			}
			if err != nil || got != tc.n {
				t.Fatalf("read %d bytes, err %v; want %d", got, err, tc.n)
			}
		})
	}
}

func TestBudgetIsShared(t *testing.T) {
	url := server(t)
	c := Client(&http.Client{}, 1<<20)
	ctx := WithBudget(context.Background(), 25_000)
	for i := range 2 {
		if _, err := read(ctx, c, url+"/10000?cl=no"); err != nil {
			t.Fatalf("read %d within the budget: %v", i, err)
		}
	}
	_, err := read(ctx, c, url+"/10000?cl=no")
	var tl *TooLargeError
	if !errors.As(err, &tl) || !tl.Budget || tl.Limit != 25_000 {
		t.Fatalf("third read: err %v, want the budget's TooLargeError", err)
	}
	// Another context has its own budget; none at all: only the cap.
	if _, err := read(context.Background(), c, url+"/10000"); err != nil {
		t.Errorf("read outside the budget: %v", err)
	}
}
