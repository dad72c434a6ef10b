// Package authentik implements reconcile.AuthentikAdapter over goauthentik.io/api/v3. It is
// the only code in akminio that writes to authentik.
//
// Requests per in-sync Observe (P = pages of groups, 100 groups a page, the server's cap):
//
//	groups (all pages, pages 2..P concurrently)   P
//	built-in scope mappings (managed filter)      1
//	our scope mapping (name filter)               1
//	provider (name filter)                        1
//	application (retrieve by slug)                1
//	policy bindings of the application            1 per 100 bindings
//	keypair (name filter)                         1 (0 without a signing key)
//	flows (slug filter, one per distinct slug)    2
//
// so 18 for an estate of 1,000 groups.
package authentik

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

// Defaults of an Adapter; Options change them.
const (
	DefaultTimeout     = 10 * time.Second // per request, when the config sets none
	DefaultPageSize    = 100              // authentik's default cap on page_size
	DefaultConcurrency = 4                // requests in flight at once during Observe

	// MaxResponseBytes caps one response body (a page of 100 groups is ~25 KiB from the
	// simulator).
	MaxResponseBytes = 8 << 20
	// MaxObserveBytes caps the response bodies of one Observe together (1,000 groups read
	// ~0.3 MiB), so that what an observation holds in memory is bounded whatever the
	// server answers.
	MaxObserveBytes = 128 << 20
)

var _ reconcile.AuthentikAdapter = (*Adapter)(nil)

// Adapter talks to one authentik instance.
type Adapter struct {
	api      *api.APIClient
	pageSize int32
	sem      chan struct{} // bounds concurrent requests during Observe
}

// Option changes how New builds an Adapter.
type Option func(*options)

type options struct {
	httpClient  *http.Client
	retry       RetryPolicy
	pageSize    int32
	concurrency int
	userAgent   string
	wrap        func(http.RoundTripper) http.RoundTripper
}

// WithHTTPClient makes the Adapter send every request through c: no TLS settings, timeout
// or retries are added, only the caps on response sizes (MaxResponseBytes,
// MaxObserveBytes). For tests, and for callers that build their own transport.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRetry replaces DefaultRetryPolicy (tests use short waits).
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

// WithPageSize sets the page_size of list calls (default 100; authentik caps it at 100
// unless its configuration says otherwise).
func WithPageSize(n int32) Option { return func(o *options) { o.pageSize = n } }

// WithVersion sets the version in the User-Agent of every request (reconcile.UserAgent,
// "akminio/<version>"; default: the module version). authentik records it in the events the
// requests cause, which is how the daemon knows its own writes.
func WithVersion(v string) Option { return func(o *options) { o.userAgent = reconcile.UserAgent(v) } }

// WithConcurrency bounds how many requests Observe has in flight at once (default 4).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithRoundTripper wraps the transport of each attempt (below the retries), for example to
// refuse writes (lease.Fence); ignored with WithHTTPClient.
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.wrap = wrap }
}

// New returns an Adapter for the authentik instance of cfg. It does not contact authentik;
// Ping does.
func New(cfg config.Authentik, opts ...Option) (*Adapter, error) {
	o := options{retry: DefaultRetryPolicy, pageSize: DefaultPageSize, concurrency: DefaultConcurrency, userAgent: reconcile.UserAgent("")}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.URL == "" {
		return nil, errors.New("authentik: url is empty")
	}
	if !cfg.Token.IsSet() {
		return nil, errors.New("authentik: token is empty")
	}
	if o.pageSize < 1 || o.concurrency < 1 {
		return nil, errors.New("authentik: page size and concurrency must be positive")
	}
	hc := o.httpClient
	if hc == nil {
		var err error
		if hc, err = newHTTPClient(cfg, o.retry, o.wrap); err != nil {
			return nil, err
		}
	}
	c := api.NewConfiguration()
	c.Servers = api.ServerConfigurations{{URL: strings.TrimRight(cfg.URL, "/") + "/api/v3"}}
	c.AddDefaultHeader("Authorization", "Bearer "+cfg.Token.Reveal())
	c.UserAgent = o.userAgent
	c.HTTPClient = httplimit.Client(hc, MaxResponseBytes)
	// c.Debug stays false: the client would log every request with its token.
	return &Adapter{api: api.NewAPIClient(c), pageSize: o.pageSize, sem: make(chan struct{}, o.concurrency)}, nil
}

// newHTTPClient builds the client for cfg: TLS from ca_file and insecure_skip_verify, the
// per-request timeout, and retries (see retry.go).
func newHTTPClient(cfg config.Authentik, p RetryPolicy, wrap func(http.RoundTripper) http.RoundTripper) (*http.Client, error) {
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("authentik: ca_file: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxResponseHeaderBytes = httplimit.MaxResponseHeaderBytes
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The timeout bounds each attempt; the retrying transport sits above it, and the
	// caller's context bounds the whole call.
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(rt)
	}
	attempt := &http.Client{Transport: rt, Timeout: timeout}
	return &http.Client{Transport: newRetryTransport(attempt, p)}, nil
}

// Ping checks that authentik answers and accepts the token (GET core/users/me/).
func (a *Adapter) Ping(ctx context.Context) error {
	_, err := a.Whoami(ctx)
	return err
}

// Whoami returns the username the API token belongs to (GET core/users/me/).
func (a *Adapter) Whoami(ctx context.Context) (string, error) {
	me, resp, err := a.api.CoreAPI.CoreUsersMeRetrieve(ctx).Execute()
	if err != nil {
		return "", callError("authentik: ping (core/users/me/)", resp, err, bodyExcerpt)
	}
	return me.User.Username, nil
}

// acquire takes one of the Observe concurrency slots; release gives it back.
func (a *Adapter) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Adapter) release() { <-a.sem }
