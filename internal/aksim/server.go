// Package aksim is an in-memory simulator of the part of authentik 2026.5's
// REST API and OpenID endpoints that akminio uses, held to authentik's
// OpenAPI contract: every request under /api/v3/ is validated against the
// document shipped in goauthentik.io/api/v3 (a spec-invalid request gets
// authentik's 400 shape) and every response is validated too (a violation
// is reported through Options.OnViolation).
//
// Scope mapping expressions are compiled and evaluated by internal/pyexpr,
// as authentik does, so claims come from the real Python expressions.
package aksim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// DefaultToken is the API token used when Options.Token is empty.
const DefaultToken = "aksim-token"

// Options configures a Server.
type Options struct {
	// Token is the API token (the akadmin user's) accepted as
	// "Authorization: Bearer <Token>". Empty means DefaultToken.
	Token string
	// OnViolation receives every response that violates the OpenAPI
	// contract. Nil logs it with the standard logger.
	OnViolation func(error)
	// Logf receives what authentik would log or record as an event (for
	// example a scope mapping that raised). Nil uses the standard logger.
	Logf func(format string, args ...any)
}

// Server is a running (or runnable) simulator. All methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	contract *contract
	st       *store
	mux      *http.ServeMux

	mu       sync.Mutex
	http     *http.Server
	listener net.Listener
	url      string
	closed   chan struct{}

	faults   faultTable
	counts   counter
	calls    counter // by operation: "METHOD /api/v3/<path template>"
	anonMu   sync.Mutex
	anonFail []AnonymousFailure
}

// New builds a simulator seeded as a fresh authentik install: the akadmin
// user (pk 1) in "authentik Admins", the managed OAuth2 scope mappings,
// the default flows and "authentik Self-signed Certificate". It panics
// only if the embedded contract cannot be parsed, which is a build defect.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	c, err := loadContract()
	if err != nil {
		panic(err)
	}
	s := &Server{opts: opts, contract: c, st: newStore(), closed: make(chan struct{})}
	if err := s.seed(); err != nil {
		panic(fmt.Errorf("aksim: seed: %w", err))
	}
	s.mux = http.NewServeMux()
	s.routesOIDC()
	s.mux.HandleFunc(apiPrefix+"/", s.serveAPI)
	return s
}

// Start listens on addr ("" means 127.0.0.1:0) and serves in the background.
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("aksim: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	s.listener = ln
	s.url = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s}
	srv := s.http
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// URL is the base URL (no trailing slash), e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Token is the API token the server accepts.
func (s *Server) Token() string { return s.opts.Token }

// closeGrace bounds how long Close waits for requests in progress.
const closeGrace = 15 * time.Second

// Close releases hanging requests, stops serving and waits (up to
// closeGrace) for the requests in progress to finish, so that nothing is
// reported through OnViolation or Logf after Close returns (aksimtest
// reports through t.Errorf, which panics once the test has ended).
func (s *Server) Close() error {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return nil
	default:
		close(s.closed)
	}
	srv := s.http
	s.mu.Unlock() // handlers may call URL() while Shutdown waits for them
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	defer func() { _ = s.WaitDeliveries(ctx) }() // notifications in flight log through Logf
	if err := srv.Shutdown(ctx); err != nil {
		return errors.Join(fmt.Errorf("aksim: requests still running after %s: %w", closeGrace, err), srv.Close())
	}
	return nil
}

// ServeHTTP makes the Server an http.Handler (for httptest.NewServer).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.counts.add(r.Method, r.URL.Path)
	s.calls.add(r.Method, CallPath(r)+"\x00"+r.UserAgent())
	if s.applyFault(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// baseURL is the URL clients reach the server under, for absolute links.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// call is one validated API request.
type call struct {
	r      *http.Request
	params map[string]string
	body   map[string]any
}

// handler answers one API operation with a status and a JSON body (nil
// for no body).
type handler func(s *Server, c *call) (int, any)

// serveAPI validates, dispatches by operationId and validates the answer.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	route, params, err := s.contract.findRoute(r)
	if err != nil {
		if errors.Is(err, routers.ErrMethodNotAllowed) || strings.Contains(err.Error(), routers.ErrMethodNotAllowed.Error()) {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": fmt.Sprintf("Method %q not allowed.", r.Method)})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: s.authOptions()}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			s.respond(w, in, http.StatusForbidden, map[string]any{"detail": ae.detail})
			return
		}
		s.respond(w, in, http.StatusBadRequest, validationBody(err))
		return
	}
	c := &call{r: r, params: params, body: map[string]any{}}
	if route.Operation.RequestBody != nil && r.Body != nil {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &body) == nil {
			applyBody(c.body, body, requestProperties(route))
		}
	}
	h := apiHandlers[route.Operation.OperationID]
	if h == nil {
		// Not a contract violation but a hole in the simulator: the test
		// that reached it must fail rather than see a 501 authentik never sends.
		s.violation(fmt.Errorf("aksim: %s %s: operation %s is not simulated", r.Method, r.URL.Path, route.Operation.OperationID))
		writeJSON(w, http.StatusNotImplemented, map[string]any{"detail": "aksim: operation " + route.Operation.OperationID + " is not simulated"})
		return
	}
	pre := s.beforeWrite(route.Operation.OperationID, c)
	status, body := h(s, c)
	s.respond(w, in, status, body)
	s.afterWrite(route.Operation.OperationID, c, status, body, pre)
}

// respond writes a JSON answer after checking it against the contract.
func (s *Server) respond(w http.ResponseWriter, in *openapi3filter.RequestValidationInput, status int, body any) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			s.violation(fmt.Errorf("aksim: encode response to %s %s: %w", in.Request.Method, in.Request.URL.Path, err))
			status, raw = http.StatusInternalServerError, []byte(`{"detail":"aksim: encoding failed"}`)
		}
	}
	header := http.Header{}
	if raw != nil {
		header.Set("Content-Type", "application/json")
	}
	if err := validateResponse(in.Request.Context(), in, status, header, raw); err != nil {
		s.violation(err)
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) violation(err error) {
	if s.opts.OnViolation != nil {
		s.opts.OnViolation(err)
		return
	}
	log.Print(err)
}

// writeJSON writes an unvalidated JSON answer (non-API endpoints).
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// errNotFound is DRF's 404 body for a missing object.
func errNotFound(model string) (int, any) {
	return http.StatusNotFound, map[string]any{"detail": fmt.Sprintf("No %s matches the given query.", model)}
}

// errField is a DRF field validation error.
func errField(field, msg string) (int, any) {
	return http.StatusBadRequest, map[string]any{field: []string{msg}}
}
