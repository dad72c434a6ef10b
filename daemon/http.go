package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Body limits of the POST endpoints. MinIO batches audit entries, so its hook gets more.
const (
	maxReconcileBody = 4 << 10
	maxHookBody      = 1 << 20
)

// healthStale is how old the loop's heartbeat may be before /healthz says the loop is dead.
const healthStale = 15 * time.Second

// Limits of the HTTP server against slow or greedy clients. Each endpoint has its own write
// timeout (from the end of its request's headers), fitted to what it does:
//
//	/healthz /readyz            5s   probes; answers are tiny
//	/status /reconcile /hooks  10s   answers are small; bodies are bounded by ReadTimeout
//	/metrics                   30s   a scraper may be slow to read
//	/reconcile?wait=true       waitBudget + 10s: it waits for up to two runs
//
// serverWriteTimeout is the server-wide bound for anything else (404s, 405s).
const (
	maxHeaderBytes        = 16 << 10
	DefaultMaxConnections = 64 // connections served at once; more wait in the listen backlog
	serverWriteTimeout    = 30 * time.Second
	probeWriteTimeout     = 5 * time.Second
	apiWriteTimeout       = 10 * time.Second
	metricsWriteTimeout   = 30 * time.Second
)

// Handler is the daemon's HTTP API (spec section 7):
//
//	GET  /healthz          200 while the run loop is alive, 503 when it is stuck or stopped
//	GET  /readyz           200 when the last run finished without error and both backends answered
//	GET  /status           JSON status, never a secret
//	GET  /metrics          Prometheus text format, from the daemon's own registry
//	POST /reconcile        run now (?wait=true: wait for the run and answer with its result)
//	POST /hooks/authentik  authentik notification webhook: a debounced run
//	POST /hooks/minio      MinIO audit_webhook: a debounced run for policy/identity admin calls
//
// POST endpoints need "Authorization: Bearer <http.hook_token>" (or the bare token).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", writeTimeout(probeWriteTimeout, http.HandlerFunc(d.handleHealthz)))
	mux.Handle("GET /readyz", writeTimeout(probeWriteTimeout, http.HandlerFunc(d.handleReadyz)))
	mux.Handle("GET /status", writeTimeout(apiWriteTimeout, http.HandlerFunc(d.handleStatus)))
	mux.Handle("GET /metrics", writeTimeout(metricsWriteTimeout, promhttp.HandlerFor(d.gatherer, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(d.log.Named("metrics")), ErrorHandling: promhttp.ContinueOnError,
	})))
	// handleReconcile extends its own deadline when it waits.
	mux.Handle("POST /reconcile", writeTimeout(apiWriteTimeout, d.authorized(maxReconcileBody, http.HandlerFunc(d.handleReconcile))))
	mux.Handle("POST /hooks/authentik", writeTimeout(apiWriteTimeout, d.authorized(maxHookBody, http.HandlerFunc(d.handleAuthentikHook))))
	mux.Handle("POST /hooks/minio", writeTimeout(apiWriteTimeout, d.authorized(maxHookBody, http.HandlerFunc(d.handleMinIOHook))))
	return mux
}

// writeTimeout bounds the writing of next's response to limit from now: a client that
// does not read its answer holds the connection that long at most.
func writeTimeout(limit time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(limit))
		next.ServeHTTP(w, r)
	})
}

// waitBudget is how long POST /reconcile?wait=true waits for its run: the run in
// progress, if any, and then its own, each bounded by RunTimeout plus the grace after
// which the loop counts as stuck.
func (d *Daemon) waitBudget() time.Duration { return 2 * (d.opts.RunTimeout + d.opts.StuckGrace) }

func (d *Daemon) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	beat := d.beat.Load()
	age := d.now().Sub(time.Unix(0, beat))
	switch {
	case beat == 0:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"healthy": false, "reason": "the run loop has not started"})
	case d.stuck():
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"healthy": false, "reason": "a run has overrun its timeout; the run loop is stuck"})
	case age > healthStale:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"healthy": false,
			"reason": "the run loop has not answered for " + age.Round(time.Second).String()})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"healthy": true})
	}
}

func (d *Daemon) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if reason := d.notReady(); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// notReady says why the daemon is not ready, or "" when it is.
func (d *Daemon) notReady() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.last == nil:
		return "no run has finished yet"
	case d.last.Err != nil:
		return d.last.Err.Error()
	}
	for _, s := range systems {
		if b, ok := d.backends[s]; !ok || !b.Up {
			return string(s) + " did not answer"
		}
	}
	return ""
}

func (d *Daemon) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, d.Status())
}

func (d *Daemon) handleReconcile(w http.ResponseWriter, r *http.Request) {
	if _, err := drain(r); err != nil {
		bodyError(w, err)
		return
	}
	if r.URL.Query().Get("wait") != "true" {
		if !d.Trigger("http") {
			shuttingDown(w)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"triggered": true})
		return
	}
	budget := d.waitBudget()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(budget + apiWriteTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), budget)
	defer cancel()
	o, ok := d.triggerWait(ctx, "http")
	switch {
	case !ok && errors.Is(ctx.Err(), context.DeadlineExceeded):
		writeJSON(w, http.StatusGatewayTimeout, map[string]any{"error": fmt.Sprintf(
			"the run did not finish within %s; it goes on: see /status", budget)})
	case !ok:
		shuttingDown(w)
	default:
		writeJSON(w, http.StatusOK, lastRunOf(o))
	}
}

// authorized checks the bearer token in constant time and limits the body size. With no
// http.hook_token configured, POST endpoints are refused.
func (d *Daemon) authorized(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := d.config().HTTP.HookToken
		if !token.IsSet() {
			writeJSON(w, http.StatusForbidden, map[string]any{"error": "POST endpoints are disabled: no http.hook_token is configured"})
			return
		}
		got := bearerToken(r.Header.Get("Authorization"))
		want := sha256.Sum256([]byte(token.Reveal()))
		have := sha256.Sum256([]byte(got))
		if got == "" || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="akminio"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer token (http.hook_token)"})
			return
		}
		if d.closing.Load() {
			shuttingDown(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// bearerToken is the token of an Authorization header: "Bearer <token>", the scheme in
// any case (RFC 7235), or the bare token: MinIO's audit_webhook auth_token is sent as
// configured by some versions and with a "Bearer " prefix by others.
func bearerToken(header string) string {
	scheme, rest, ok := strings.Cut(header, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimLeft(rest, " ")
	}
	return header
}

// drain reads the whole (limited) body.
func drain(r *http.Request) ([]byte, error) { return io.ReadAll(r.Body) }

// bodyError answers a body that could not be read: 413 when over the limit.
func bodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)})
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "cannot read request body: " + err.Error()})
}

func shuttingDown(w http.ResponseWriter) {
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "akminio is shutting down"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
