// Package minio is akminio's MinIO adapter: it observes and changes MinIO's canned policies
// and its identity_openid target through madmin-go, and restarts MinIO when a static setting
// changed. It is the only code that writes to MinIO.
//
// Facts of the MinIO server this package is built on (checked against its source and a real
// server in the tests):
//
//   - The full config export (GetConfig) is the server's config as loaded at start: writes to
//     identity_openid (not dynamic) read back stale until a restart. It is the only read that
//     carries client_secret.
//   - In the export, a target whose stored config has no config_url is written as a comment
//     line ("# identity_openid ..."); `enable` is omitted when "on"; keys set through
//     MINIO_IDENTITY_OPENID_* environment variables appear as "# MINIO_...=value" lines right
//     before their target's line.
//   - A restarting MinIO serves admin calls before its config is loaded (the export then
//     shows every target unconfigured). IAM-backed calls answer 503 "server not initialized"
//     until IAM is initialised, which happens only after the config is loaded (and after the
//     OpenID provider at config_url answered). Observe therefore lists policies first: once
//     that succeeds, the export that follows is the loaded one.
//   - madmin retries network errors (but not "connection refused"), 408, 429, 502, 503 and
//     throttling codes itself; this package adds a few attempts for the rest of 5xx, refused
//     connections and per-request timeouts, without repeating madmin's own retries.
package minio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	madmin "github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

var _ reconcile.MinIOAdapter = (*Adapter)(nil)

// ErrNotReady reports a MinIO that answers but has not finished starting (IAM not
// initialised, or a read that is transiently empty). It is transient: try again later.
var ErrNotReady = errors.New("minio is not ready yet (still starting)")

// Defaults of the options.
const (
	DefaultAttempts     = 3
	DefaultBackoff      = 250 * time.Millisecond
	DefaultPollInterval = 100 * time.Millisecond

	// MaxResponseBytes caps one response body from MinIO (the policy list of an estate
	// with thousands of policies is a few MiB; the config export is KiBs).
	MaxResponseBytes = 32 << 20
)

// Adapter implements reconcile.MinIOAdapter over madmin-go. Build it with New.
type Adapter struct {
	adm       *madmin.AdminClient
	transport *http.Transport // the admin client's own, for CloseIdleConnections
	status    *statusRecorder // the last HTTP status MinIO answered
	tlsConfig *tls.Config     // nil for http://
	healthURL string          // unauthenticated liveness endpoint, for Restart
	timeout   time.Duration   // per request; 0: none
	attempts  int
	backoff   time.Duration
	poll      time.Duration
}

// Option changes how New builds the Adapter.
type Option func(*options)

type options struct {
	version  string
	wrap     func(http.RoundTripper) http.RoundTripper
	attempts int
	backoff  time.Duration
	poll     time.Duration
}

// WithVersion sets the version in the User-Agent mark every request carries
// (reconcile.UserAgent; default: the module version). MinIO's audit log records it, so the
// daemon's /hooks/minio knows akminio's own writes (by the reconcile.OwnUserAgent prefix).
// SigV4 does not sign the User-Agent.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithRoundTripper wraps the transport of the admin client (to count or trace requests).
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithRetry sets how many times a call is attempted (at least 1) and the first backoff,
// doubled after each attempt.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(o *options) { o.attempts, o.backoff = max(attempts, 1), backoff }
}

// WithPollInterval sets how often Restart checks whether MinIO is back.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) { o.poll = d }
}

// New builds an Adapter for the MinIO at cfg.Endpoint ("http://host:port" or
// "https://host:port"), authenticated with cfg.AccessKey and cfg.SecretKey. ca_file and
// insecure_skip_verify shape the TLS client; cfg.Timeout bounds each request.
func New(cfg config.MinIO, opts ...Option) (*Adapter, error) {
	o := options{attempts: DefaultAttempts, backoff: DefaultBackoff, poll: DefaultPollInterval}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("minio: endpoint %q: want http://host:port or https://host:port: %w", cfg.Endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("minio: endpoint %q: want http://host:port or https://host:port", cfg.Endpoint)
	}
	secure := u.Scheme == "https"
	a := &Adapter{
		healthURL: u.Scheme + "://" + u.Host + "/minio/health/live",
		timeout:   cfg.Timeout,
		attempts:  o.attempts,
		backoff:   o.backoff,
		poll:      o.poll,
	}
	if secure {
		if a.tlsConfig, err = cfg.TLSConfig(); err != nil {
			return nil, fmt.Errorf("minio: ca_file: %w", err)
		}
	}
	a.transport = newTransport(secure, a.tlsConfig)
	a.status = &statusRecorder{next: a.transport}
	rt := httplimit.Transport(a.status, MaxResponseBytes)
	if o.wrap != nil {
		rt = o.wrap(rt)
	}
	rt = markUserAgent(rt, reconcile.UserAgent(o.version)) // outermost: wrappers see it too
	a.adm, err = madmin.NewWithOptions(u.Host, &madmin.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey.Reveal(), cfg.SecretKey.Reveal(), ""),
		Secure:    secure,
		Transport: rt,
	})
	if err != nil {
		return nil, fmt.Errorf("minio: admin client for %s: %w", u.Host, err)
	}
	return a, nil
}

// markUserAgent puts mark in front of the User-Agent of every request (madmin's own follows).
func markUserAgent(next http.RoundTripper, mark string) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", strings.TrimSpace(mark+" "+r.Header.Get("User-Agent")))
		return next.RoundTrip(r)
	})
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newTransport is madmin's default transport with our TLS settings.
func newTransport(secure bool, tc *tls.Config) *http.Transport {
	tr, ok := madmin.DefaultTransport(secure).(*http.Transport)
	if !ok {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
	}
	if tc != nil {
		tr.TLSClientConfig = tc.Clone()
	}
	tr.MaxResponseHeaderBytes = httplimit.MaxResponseHeaderBytes
	return tr
}

// do runs one admin call with the per-request timeout, and tries again (with backoff)
// when it failed in a way worth retrying, at most a.attempts times, bounded by ctx.
func (a *Adapter) do(ctx context.Context, call func(context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = a.once(ctx, call); err == nil {
			return nil
		}
		if attempt+1 >= a.attempts || !retryable(err) || ctx.Err() != nil || stillStarting(err) {
			if busy(err) {
				return reconcile.Transient(err)
			}
			return err
		}
		wait := a.backoff << attempt
		wait = wait/2 + rand.N(wait/2+1) // jitter over the upper half
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// once runs call under the per-request timeout.
func (a *Adapter) once(ctx context.Context, call func(context.Context) error) error {
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	err := call(ctx)
	if errors.Is(err, context.DeadlineExceeded) && a.status.last.Load() == http.StatusServiceUnavailable {
		// madmin retries 503 by itself until the request's time is up.
		return fmt.Errorf("%w: it answered 503 Service Unavailable until the request timed out: %w", ErrNotReady, err)
	}
	return err
}

// stillStarting reports an attempt that madmin already spent retrying a starting MinIO.
func stillStarting(err error) bool {
	return errors.Is(err, ErrNotReady) && errors.Is(err, context.DeadlineExceeded)
}

// statusRecorder remembers the HTTP status of the last answer, for error messages.
type statusRecorder struct {
	next http.RoundTripper
	last atomic.Int32
}

// RoundTrip implements http.RoundTripper.
func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err != nil {
		s.last.Store(0)
		return nil, err
	}
	s.last.Store(int32(resp.StatusCode))
	return resp, nil
}

// retryable reports whether err is worth another attempt: MinIO not ready, a 5xx, a
// refused connection (MinIO restarting), a network error or a per-request timeout. The
// caller checks its own context separately.
func retryable(err error) bool {
	if busy(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var resp madmin.ErrorResponse
	if errors.As(err, &resp) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// busy reports an answer that says MinIO cannot serve the request now (not ready, 429,
// 5xx): after the retries, a transient error (see reconcile.Transient). A network error
// is not: a MinIO that does not answer at all alerts at once.
func busy(err error) bool {
	if errors.Is(err, ErrNotReady) {
		return true
	}
	var resp madmin.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "InternalError", "XMinioServerNotInitialized", "ServiceUnavailable", "SlowDown",
			"XMinioAdminRPCErr", "RequestTimeout", "Throttling":
			return true
		}
		// Non-JSON answers (a proxy in front of MinIO) carry the HTTP status as Code.
		return strings.HasPrefix(resp.Code, "5") || strings.HasPrefix(resp.Code, "429")
	}
	return false
}

// notReady turns MinIO's "not initialized" answers into ErrNotReady, keeping the cause.
func notReady(err error) error {
	var resp madmin.ErrorResponse
	if errors.As(err, &resp) && resp.Code == "XMinioServerNotInitialized" {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return err
}

// ServerInfo asks MinIO for its server info with the admin credentials and returns a
// one-line summary; `check-config --online` uses it to prove the credentials work.
func (a *Adapter) ServerInfo(ctx context.Context) (string, error) {
	var info madmin.InfoMessage
	err := a.do(ctx, func(ctx context.Context) (err error) {
		info, err = a.adm.ServerInfo(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("minio: server info: %w", err)
	}
	return fmt.Sprintf("%d server(s), mode %s", len(info.Servers), info.Mode), nil
}
