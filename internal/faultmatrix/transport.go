// Package faultmatrix holds the parts of akminio's fault matrix (its test, matrix_test.go)
// that are not tests: the faults, a recording and faulting transport for the MinIO admin
// client, and the table of cells.
//
// The matrix enumerates the distinct calls a run makes, from the authentik simulator's
// request log (aksim.Server.Calls) and from Transport's, so that a call added to akminio
// joins the matrix by itself; then it fails each call in turn with each Kind.
package faultmatrix

import (
	"bytes"

	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Kind is a way a call fails.
type Kind string

// The faults, in the order of the table's columns.
const (
	Status500 Kind = "500"
	Status429 Kind = "429"
	Reset     Kind = "reset"
	Timeout   Kind = "timeout"
	Malformed Kind = "bad JSON"
	ShortPage Kind = "short page"
)

// Kinds lists every Kind, in the table's order.
var Kinds = []Kind{Status500, Status429, Reset, Timeout, Malformed, ShortPage}

// CallStats is what the log knows of one call.
type CallStats struct {
	Count   int  // requests
	Body    bool // some answer had a non-empty body (a truncated one can then be noticed)
	IsWrite bool // not a GET or HEAD
}

// Transport records every request of the MinIO admin client by call ("METHOD path", the
// query left out: "GET /minio/admin/v3/get-config-kv"), and fails the requests of one call
// as a Kind says. Use Wrap with reconcile/minio.WithRoundTripper.
type Transport struct {
	next http.RoundTripper

	mu    sync.Mutex
	calls map[string]*CallStats
	fault string // the call to fail; "" for none
	kind  Kind
	hits  int // requests the fault answered
}

// NewTransport returns a Transport with nothing recorded; Wrap puts it in front of a
// client's transport.
func NewTransport() *Transport { return &Transport{calls: map[string]*CallStats{}} }

// Wrap is the hook for minio.WithRoundTripper.
func (t *Transport) Wrap(next http.RoundTripper) http.RoundTripper {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next = next
	return t
}

// MinIOCall is the call a request belongs to.
func MinIOCall(r *http.Request) string { return r.Method + " " + r.URL.Path }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	call := MinIOCall(r)
	t.mu.Lock()
	st := t.calls[call]
	if st == nil {
		st = &CallStats{IsWrite: r.Method != http.MethodGet && r.Method != http.MethodHead}
		t.calls[call] = st
	}
	st.Count++
	faulted := t.fault == call
	kind := t.kind
	if faulted {
		t.hits++
	}
	next := t.next
	t.mu.Unlock()
	if !faulted {
		resp, err := next.RoundTrip(r)
		if err == nil && resp.ContentLength != 0 {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if rerr != nil {
				return nil, rerr
			}
			if len(body) > 0 {
				t.mu.Lock()
				st.Body = true
				t.mu.Unlock()
			}
		}
		return resp, err
	}
	switch kind {
	case Status500:
		return errorResponse(r, http.StatusInternalServerError, "InternalError"), nil
	case Status429:
		return errorResponse(r, http.StatusTooManyRequests, "SlowDown"), nil
	case Reset:
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case Timeout:
		<-r.Context().Done()
		return nil, r.Context().Err()
	case Malformed:
		resp, err := next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = body[:len(body)/2]
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return resp, nil
	}
	return next.RoundTrip(r)
}

// errorResponse is a MinIO admin error answer.
func errorResponse(r *http.Request, status int, code string) *http.Response {
	body := `{"Code":"` + code + `","Message":"faultmatrix: injected fault","Resource":"` + r.URL.Path + `","RequestId":"","HostId":""}`
	return &http.Response{
		Status:        http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// Fail makes every request of call fail as kind says, until Clear.
func (t *Transport) Fail(call string, kind Kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fault, t.kind, t.hits = call, kind, 0
}

// Clear removes the fault and returns how many requests it answered.
func (t *Transport) Clear() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.hits
	t.fault, t.hits = "", 0
	return n
}

// Calls returns a copy of the log since the last Reset.
func (t *Transport) Calls() map[string]CallStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]CallStats, len(t.calls))
	for k, v := range t.calls {
		out[k] = *v
	}
	return out
}

// Writes lists the write requests since the last Reset, "METHOD path" with a count.
func (t *Transport) Writes() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for k, v := range t.calls {
		if v.IsWrite && v.Count > 0 {
			out[k] = v.Count
		}
	}
	return out
}

// Reset empties the log.
func (t *Transport) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = map[string]*CallStats{}
}
