package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
)

// Gate says whether a write may start now (Elector.MayWrite).
type Gate interface {
	MayWrite(ctx context.Context, step string) error
}

var _ Gate = (*Elector)(nil)

// RefusedCode is the error code of a write the fence refused, in the answer it makes up;
// RefusedHeader carries the reason in that answer, for clients that would otherwise read a
// 403 as a refused token (reconcile/authentik checks it).
const (
	RefusedCode   = "AkminioNotAllowedToWrite"
	RefusedHeader = "X-Akminio-Refused"
)

// Fence wraps an HTTP transport so that every request that may write (any method but GET,
// HEAD and OPTIONS) first asks gate, right before it is sent: the last line of defence that
// keeps a follower, or a leader whose lease ran out while it was paused, from writing,
// whatever code path sends the request. A refused request never leaves the host: the fence
// answers it itself with 403 and a JSON body that both madmin-go ({"Code","Message"}) and
// authentik's client ({"detail"}) read as a final, not retried, error naming the reason.
func Fence(gate Gate, next http.RoundTripper) http.RoundTripper {
	return fence{gate: gate, next: next}
}

type fence struct {
	gate Gate
	next http.RoundTripper
}

func (f fence) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return f.next.RoundTrip(r)
	}
	err := f.gate.MayWrite(r.Context(), r.Method+" "+r.URL.Path)
	if err == nil {
		return f.next.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	body, _ := json.Marshal(map[string]string{"Code": RefusedCode, "Message": err.Error(), "detail": err.Error()})
	return &http.Response{
		Status:        "403 Forbidden",
		StatusCode:    http.StatusForbidden,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, RefusedHeader: {err.Error()}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}
