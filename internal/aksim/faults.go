package aksim

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is an injected misbehaviour for requests whose path starts with a
// prefix. Exactly what happens, in order:
//
//	Delay > 0   wait Delay (or until the client gives up), then continue
//	Hang        never answer; return only when the client's context ends
//	            or the server closes
//	Status != 0 answer Status with {"detail": "aksim: injected fault"}
//	Reset       close the connection with a TCP reset, answering nothing
//	Truncate    serve the request, but send only the first half of the body
//	ShortPage   serve the request; a paginated list loses its last result
//	            (pagination.count is kept, so the page is shorter than it says)
//
// A Fault with only Delay set slows the request and then serves it normally. Truncate and
// ShortPage serve the request for real: a write they answer has happened.
type Fault struct {
	// Method limits the fault to one HTTP method; empty matches all.
	Method string
	// Match, when set, must also accept the request (to fault one call of several that
	// share a prefix, or one page of a list).
	Match     func(r *http.Request) bool
	Status    int
	Hang      bool
	Reset     bool
	Truncate  bool
	ShortPage bool
	Delay     time.Duration
	// Times is how many matching requests the fault applies to; 0 means
	// until cleared with ClearFaults.
	Times int
}

type faultEntry struct {
	prefix string
	f      Fault
	left   int // remaining applications; -1 for unlimited
}

type faultTable struct {
	mu      sync.Mutex
	entries []*faultEntry
}

// Fault makes the next f.Times requests whose path starts with pathPrefix
// (e.g. "/api/v3/core/groups/") misbehave as f describes. Faults are
// checked in the order they were added; the first match applies.
func (s *Server) Fault(pathPrefix string, f Fault) {
	left := f.Times
	if left <= 0 {
		left = -1
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.entries = append(s.faults.entries, &faultEntry{prefix: pathPrefix, f: f, left: left})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.entries = nil
}

// take returns the fault for a request, consuming one application.
func (t *faultTable) take(r *http.Request) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, e := range t.entries {
		if !strings.HasPrefix(r.URL.Path, e.prefix) || (e.f.Method != "" && !strings.EqualFold(e.f.Method, r.Method)) ||
			(e.f.Match != nil && !e.f.Match(r)) {
			continue
		}
		if e.left > 0 {
			e.left--
			if e.left == 0 {
				t.entries = append(t.entries[:i:i], t.entries[i+1:]...)
			}
		}
		return e.f, true
	}
	return Fault{}, false
}

// applyFault performs an injected fault; true means the request is answered.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request) bool {
	f, ok := s.faults.take(r)
	if !ok {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closed:
			return true
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return true
	}
	if f.Status != 0 {
		writeJSON(w, f.Status, map[string]any{"detail": "aksim: injected fault"})
		return true
	}
	if f.Reset {
		resetConnection(w)
		return true
	}
	if f.Truncate || f.ShortPage {
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if f.ShortPage {
			body = shortPage(body)
		} else {
			body = body[:len(body)/2]
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return true
	}
	return false
}

// resetConnection closes the request's connection with a TCP RST (SO_LINGER 0).
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// shortPage drops the last result of a paginated list body; other bodies stay as they are.
func shortPage(body []byte) []byte {
	var page map[string]json.RawMessage
	if json.Unmarshal(body, &page) != nil || page["pagination"] == nil {
		return body
	}
	var results []json.RawMessage
	if json.Unmarshal(page["results"], &results) != nil || len(results) == 0 {
		return body
	}
	page["results"], _ = json.Marshal(results[:len(results)-1])
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(page) != nil {
		return body
	}
	return b.Bytes()
}

// counter counts requests by "METHOD path".
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(method, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[method+" "+path]++
}

// Count returns how many requests with method (empty for any) had a path
// starting with pathPrefix, since the start or the last ResetCounts.
// Requests answered by an injected fault count too.
func (s *Server) Count(method, pathPrefix string) int {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	n := 0
	for k, v := range s.counts.m {
		m, p, _ := strings.Cut(k, " ")
		if (method == "" || strings.EqualFold(m, method)) && strings.HasPrefix(p, pathPrefix) {
			n += v
		}
	}
	return n
}

// Counts returns a copy of all counts keyed "METHOD /path".
func (s *Server) Counts() map[string]int {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	out := make(map[string]int, len(s.counts.m))
	for k, v := range s.counts.m {
		out[k] = v
	}
	return out
}

// ResetCounts sets every count back to zero (Counts and Calls).
func (s *Server) ResetCounts() {
	s.counts.mu.Lock()
	s.counts.m = nil
	s.counts.mu.Unlock()
	s.calls.mu.Lock()
	s.calls.m = nil
	s.calls.mu.Unlock()
}

// CallsFrom returns how many requests each distinct call had since the start or the last
// ResetCounts, from clients whose User-Agent starts with agent ("" for all), keyed
// "METHOD path" with the path as authentik's OpenAPI document writes it ("GET
// /api/v3/core/applications/{slug}/"): the request log by operation, so that two objects
// read the same way are one call. The agent tells akminio's requests from those MinIO
// makes itself (OpenID discovery and keys).
func (s *Server) CallsFrom(agent string) map[string]int {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls.m {
		call, ua, _ := strings.Cut(k, "\x00")
		if strings.HasPrefix(ua, agent) {
			out[call] += v
		}
	}
	return out
}

// CallPath is the path of r as the OpenAPI document writes it (its operation's template,
// under /api/v3), or r's path when no operation matches (OIDC endpoints, unknown paths).
func CallPath(r *http.Request) string {
	if !strings.HasPrefix(r.URL.Path, apiPrefix) {
		return r.URL.Path
	}
	c, err := loadContract()
	if err != nil {
		return r.URL.Path
	}
	route, _, err := c.findRoute(r)
	if err != nil {
		return r.URL.Path
	}
	return apiPrefix + route.Path
}
