package minio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

// Restart restarts MinIO (ServiceRestartV2) and waits, bounded by ctx, until the new
// process answers with its config and IAM loaded.
//
// MinIO answers the restart call first, then stops listening and re-executes itself with
// the same PID; connections already open keep being served by the old process until that
// exec closes them, and a new process serves admin calls before its config is loaded. So:
//
//  1. before the call, a keep-alive connection is opened to the liveness endpoint;
//  2. after it, that connection is polled until it breaks: the old process is gone;
//  3. then an IAM query that waits for MinIO's first IAM load (policy entities) is retried
//     on fresh connections until it succeeds. IAM is initialised only after the config is
//     loaded and the OpenID provider at config_url answered; a MinIO that cannot reach it
//     never gets ready, and Restart fails when ctx ends, saying so;
//  4. in a distributed MinIO the restart is of every node (MinIO signals its peers): then
//     ServerInfo must show every node that was online before the call online again and
//     started since the call (uptime no longer than the time since), so that every node has
//     loaded the config from the drives and none answers with the old one. A node that was
//     already down is not waited for: it loads the new config whenever it starts.
func (a *Adapter) Restart(ctx context.Context) error {
	nodes := a.onlineNodes(ctx)
	called := time.Now()
	s := a.newSentinel()
	defer s.close()
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("minio: restart: MinIO does not answer before the restart: %w", err)
	}
	// Not retried: a restart whose answer was lost must not be asked for again.
	if err := a.once(ctx, a.adm.ServiceRestartV2); err != nil {
		return fmt.Errorf("minio: restart: %w", err)
	}
	if err := a.waitGone(ctx, s); err != nil {
		return fmt.Errorf("minio: restart: the old MinIO process did not stop: %w", err)
	}
	a.transport.CloseIdleConnections() // never ask the old process again
	if err := a.waitReady(ctx); err != nil {
		return reconcile.Transient(fmt.Errorf("minio: restart: MinIO did not get ready again (it waits for the OpenID provider at config_url to answer before it loads IAM): %w", err))
	}
	if err := a.waitAllNodes(ctx, called, nodes); err != nil {
		return fmt.Errorf("minio: restart: %w", err)
	}
	return nil
}

// onlineNodes lists the endpoints of the nodes online now (none if ServerInfo fails: then
// only the node akminio talks to is waited for, as on a single server).
func (a *Adapter) onlineNodes(ctx context.Context) map[string]bool {
	var info madmin.InfoMessage
	if err := a.once(ctx, func(ctx context.Context) (err error) {
		info, err = a.adm.ServerInfo(ctx)
		return err
	}); err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, s := range info.Servers {
		if s.State == string(madmin.ItemOnline) {
			out[s.Endpoint] = true
		}
	}
	return out
}

// waitAllNodes waits until ServerInfo lists every node of nodes online with an uptime no
// longer than the time since called (plus a second: MinIO reports whole seconds).
func (a *Adapter) waitAllNodes(ctx context.Context, called time.Time, nodes map[string]bool) error {
	if len(nodes) == 0 {
		return nil
	}
	var last error
	for {
		var info madmin.InfoMessage
		last = a.once(ctx, func(ctx context.Context) (err error) {
			info, err = a.adm.ServerInfo(ctx)
			return err
		})
		if last == nil {
			last = restartedNodes(info, nodes, time.Since(called)+time.Second)
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every MinIO node came back: %w (last: %w)", ctx.Err(), last)
		case <-time.After(a.poll):
		}
	}
}

// restartedNodes checks that every node of info in nodes is online and up for at most since.
func restartedNodes(info madmin.InfoMessage, nodes map[string]bool, since time.Duration) error {
	var waiting []string
	seen := 0
	for _, s := range info.Servers {
		if !nodes[s.Endpoint] {
			continue
		}
		seen++
		switch {
		case s.State != string(madmin.ItemOnline):
			waiting = append(waiting, s.Endpoint+" is "+s.State)
		case time.Duration(s.Uptime)*time.Second > since:
			waiting = append(waiting, fmt.Sprintf("%s has not restarted (up %ds)", s.Endpoint, s.Uptime))
		}
	}
	if seen < len(nodes) {
		waiting = append(waiting, fmt.Sprintf("ServerInfo lists %d of the %d nodes", seen, len(nodes)))
	}
	if len(waiting) > 0 {
		return fmt.Errorf("%d of %d nodes not back: %s", len(waiting), len(nodes), strings.Join(waiting, "; "))
	}
	return nil
}

// waitGone polls the sentinel until its connection to the old process breaks.
func (a *Adapter) waitGone(ctx context.Context, s *sentinel) error {
	for {
		if err := s.check(ctx); err != nil || s.dials.Load() > 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.poll):
		}
	}
}

// waitReady retries an IAM query until MinIO has loaded IAM (and therefore its config).
func (a *Adapter) waitReady(ctx context.Context) error {
	var last error
	for {
		last = a.once(ctx, func(ctx context.Context) error {
			// The query blocks until IAM's first load ended; MinIO answers 503 before IAM
			// is initialised. The policy name is one nobody has, to keep the answer small.
			_, err := a.adm.GetPolicyEntities(ctx, madmin.PolicyEntitiesQuery{Policy: []string{"akminio-readiness-probe"}})
			return notReady(err)
		})
		if last == nil {
			return nil
		}
		if !retryable(last) {
			return last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(a.poll):
		}
	}
}

// sentinel is an HTTP client held to one keep-alive connection, to see when the process
// that accepted it is gone.
type sentinel struct {
	client *http.Client
	url    string
	dials  atomic.Int32
}

func (a *Adapter) newSentinel() *sentinel {
	s := &sentinel{url: a.healthURL}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Hour,
		// HTTP/1.1 only, one request per connection at a time.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			s.dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	if a.tlsConfig != nil {
		tr.TLSClientConfig = a.tlsConfig.Clone()
	}
	tr.MaxResponseHeaderBytes = httplimit.MaxResponseHeaderBytes
	// The liveness answer is empty; a body cap keeps the drain below bounded.
	s.client = &http.Client{Transport: httplimit.Transport(tr, 64<<10), Timeout: 5 * time.Second}
	return s
}

// check sends one liveness request; any answer at all means the connection still works.
func (s *sentinel) check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.Close {
		return errors.New("the server closes the connection")
	}
	return nil
}

func (s *sentinel) close() { s.client.CloseIdleConnections() }
