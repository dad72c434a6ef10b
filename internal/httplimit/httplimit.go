// Package httplimit caps how much a client reads of the answers of a peer it does not
// control: each response body at a fixed size, and, optionally, all responses read under
// one context (an observation) at a shared budget. Reading past either fails with a
// *TooLargeError instead of growing a buffer, so a hostile or broken server cannot make
// akminio allocate without bound.
package httplimit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// MaxResponseHeaderBytes is the cap akminio's own transports set on a response's headers
// (Go's default is 1 MiB).
const MaxResponseHeaderBytes = 64 << 10

// TooLargeError reports a response body, or the responses of one budget, larger than allowed.
type TooLargeError struct {
	Limit  int64 // bytes
	Budget bool  // the shared budget ran out, not one response's cap
}

func (e *TooLargeError) Error() string {
	if e.Budget {
		return fmt.Sprintf("responses exceed akminio's limit of %s for one observation", size(e.Limit))
	}
	return fmt.Sprintf("response body exceeds akminio's limit of %s", size(e.Limit))
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Transport returns a RoundTripper that sends requests through next and caps each response
// body at max bytes (and draws from the budget of the request's context, if any; see
// WithBudget). A body announced larger by Content-Length fails on its first read.
func Transport(next http.RoundTripper, max int64) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{next: next, max: max}
}

// Client returns a copy of c (nil: a zero client) whose transport caps bodies at max.
func Client(c *http.Client, max int64) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.Transport = Transport(out.Transport, max)
	return &out
}

type transport struct {
	next http.RoundTripper
	max  int64
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	b := &body{rc: resp.Body, left: t.max, limit: t.max, budget: budgetOf(r.Context())}
	if resp.ContentLength > t.max {
		b.err = &TooLargeError{Limit: t.max}
	}
	resp.Body = b
	return resp, nil
}

// body reads at most limit bytes of rc; the read that would go past fails.
type body struct {
	rc     io.ReadCloser
	left   int64
	limit  int64
	budget *budget
	err    error // sticky
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more than allowed tells "too large" from "exactly the cap"
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.err = &TooLargeError{Limit: b.limit}
	}
	b.left -= int64(n)
	if b.budget != nil && !b.budget.take(int64(n)) {
		b.err = &TooLargeError{Limit: b.budget.limit, Budget: true}
	}
	if b.err != nil {
		return n, b.err
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// budget is a number of bytes shared by every response read under one context.
type budget struct {
	limit int64
	left  atomic.Int64
}

func (b *budget) take(n int64) bool { return b.left.Add(-n) >= 0 }

type budgetKey struct{}

// WithBudget returns a context under which all responses read through a Transport together
// may not exceed n bytes. An inner budget replaces an outer one.
func WithBudget(ctx context.Context, n int64) context.Context {
	b := &budget{limit: n}
	b.left.Store(n)
	return context.WithValue(ctx, budgetKey{}, b)
}

func budgetOf(ctx context.Context) *budget {
	b, _ := ctx.Value(budgetKey{}).(*budget)
	return b
}
