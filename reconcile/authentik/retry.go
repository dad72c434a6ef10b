package authentik

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryPolicy says how often and how long the Adapter retries a request that failed with
// 429, a 5xx or a network error. Other statuses are never retried.
type RetryPolicy struct {
	Max     int           // retries after the first attempt
	WaitMin time.Duration // first backoff; doubles each retry
	WaitMax time.Duration // cap on one wait, Retry-After included
}

// DefaultRetryPolicy: 3 retries, 250ms, 500ms, 1s (or what Retry-After says, at most 5s).
var DefaultRetryPolicy = RetryPolicy{Max: 3, WaitMin: 250 * time.Millisecond, WaitMax: 5 * time.Second}

// newRetryTransport returns a RoundTripper that sends each request through attempt (which
// carries TLS and the per-attempt timeout), retrying with backoff per p.
//
// What is retried:
//
//	method            429   5xx (not 501)       network error
//	GET/PATCH/DELETE  yes   yes                 yes
//	POST              yes   503 only            only when the connection was never made
//
// A POST creates an object; a lost answer (a reset connection, a proxy's 502/504) may hide
// a create that happened, and a second POST would duplicate it (authentik refuses a second
// mapping, provider, application or group of the same name, but happily makes a duplicate
// policy binding). 429 and 503 are answers that the request was not processed, and a failed
// dial never reached the server. PATCH writes the same full set of fields each time and
// DELETE of a gone object is a 404 that the caller sees, so both are safe to repeat.
func newRetryTransport(attempt *http.Client, p RetryPolicy) http.RoundTripper {
	mk := func(check retryablehttp.CheckRetry) *retryablehttp.Client {
		return &retryablehttp.Client{
			HTTPClient:   attempt,
			Logger:       nil, // errors are returned, never logged here
			RetryWaitMin: p.WaitMin,
			RetryWaitMax: p.WaitMax,
			RetryMax:     p.Max,
			CheckRetry:   check,
			Backoff:      cappedBackoff,
			ErrorHandler: lastAnswer,
		}
	}
	return &retryTransport{
		idempotent: &retryablehttp.RoundTripper{Client: mk(retryIdempotent)},
		post:       &retryablehttp.RoundTripper{Client: mk(retryPost)},
	}
}

type retryTransport struct {
	idempotent, post http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		return t.post.RoundTrip(r)
	}
	return t.idempotent.RoundTrip(r)
}

// retryIdempotent retries 429, 5xx other than 501, and network errors other than TLS
// verification and malformed requests (retryablehttp's default policy), never after the
// context ended.
func retryIdempotent(ctx context.Context, resp *http.Response, err error) (bool, error) {
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// retryPost retries 429, 503 and failed dials only; see newRetryTransport.
func retryPost(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial", nil
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable, nil
}

// lastAnswer hands back the last response when retries are used up, so the generated
// client turns a final 429/5xx into an error with its status and body; when the last
// attempt ended in an error (a network error, the context ending), that error alone.
func lastAnswer(resp *http.Response, err error, _ int) (*http.Response, error) {
	if err == nil {
		return resp, nil
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
	return nil, err
}

// cappedBackoff is retryablehttp's exponential backoff, honouring Retry-After on 429/503
// but never waiting longer than max.
func cappedBackoff(lo, hi time.Duration, n int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(lo, hi, n, resp), hi)
}
