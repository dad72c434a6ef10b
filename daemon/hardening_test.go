package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/logging"
	"github.com/akminio/akminio/reconcile"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The credentials the alert URLs of TestAlertURLCredentialsNeverShown carry.
var alertURLSecrets = []string{
	"hookpass-5d1e", "hook-query-secret-91ab", "T0K3NPATH-abcdef0123456789",
	"ampass-77c2", "am-query-secret-3f0e",
}

// TestAlertURLCredentialsNeverShown: both alert URLs carry credentials (userinfo, a query
// token, a token in the path) and both receivers refuse the alerts. The log (at debug, as
// the binary writes it, scrubber included), /status and /metrics name the receivers by
// scheme and host only.
func TestAlertURLCredentialsNeverShown(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		http.Error(w, "no", http.StatusForbidden) // not retried: logged at once
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg := testConfig(t)
	cfg.Alerts.WebhookURL = "http://hookuser:hookpass-5d1e@" + host + "/hook/T0K3NPATH-abcdef0123456789?token=hook-query-secret-91ab"
	cfg.Alerts.AlertmanagerURL = "http://amuser:ampass-77c2@" + host + "/am?token=am-query-secret-3f0e"

	var out syncBuffer
	scrubber := logging.NewScrubber()
	log, err := logging.New(config.Log{Level: "debug", Format: "json"}, &out, scrubber)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return nil, errors.New("minio: boom") }}
	h := start(t, Options{Config: cfg, Logger: log, Scrubber: scrubber,
		NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "both receivers refused and it was logged", func() bool {
		return got.Load() >= 2 && strings.Count(out.String(), "alert not delivered") >= 2
	})
	_, status := h.get("/status")
	_, metrics := h.get("/metrics")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	logs := out.String()
	if !strings.Contains(logs, `POST `+srv.URL+`: 403 Forbidden`) {
		t.Errorf("the log does not name the receiver by scheme and host:\n%s", logs)
	}
	for name, text := range map[string]string{"log": logs, "/status": status, "/metrics": metrics} {
		for _, s := range append(alertURLSecrets, "hookuser:", "amuser:") {
			if strings.Contains(text, s) {
				t.Errorf("%s shows %q:\n%s", name, s, text)
			}
		}
	}
}

// TestAlertTransportErrorHidesURL: a receiver that cannot be reached gives an error that
// names scheme and host only (net/http's own error quotes the whole URL, query included).
func TestAlertTransportErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	host := strings.TrimPrefix(srv.URL, "http://")
	a := newAlerter(&http.Client{Timeout: 5 * time.Second}, zap.NewNop(), "test", time.Hour, time.Now)
	_, err := a.post(context.Background(), delivery{what: "x", url: "http://u:hookpass-5d1e@" + host + "/hook/T0K3NPATH-abcdef0123456789?token=hook-query-secret-91ab"})
	if err == nil || !strings.HasPrefix(err.Error(), "POST "+srv.URL+": ") {
		t.Fatalf("post to a closed port: %v, want an error naming %s", err, srv.URL)
	}
	for _, s := range alertURLSecrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q: %v", s, err)
		}
	}
}

// TestStatusShowsSecurityWarnings: /status lists the security warnings of the config in
// force ([] when none), and a reload replaces them.
func TestStatusShowsSecurityWarnings(t *testing.T) {
	cfg := testConfig(t)
	cfg.Authentik.URL = "http://authentik.example"
	cfg.MinIO.Endpoint = "https://minio.example:9000"
	cfg.MinIO.InsecureSkipVerify = true
	next := testConfig(t)
	next.Authentik.URL, next.MinIO.Endpoint = "https://authentik.example", "https://minio.example:9000"
	hup := make(chan os.Signal, 1)
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		Reload: func() (*config.Config, error) { return next, nil }, Hangup: hup})
	got := h.status().Config.Warnings
	if len(got) != 2 || !strings.HasPrefix(got[0], "authentik.url: plain http:// to authentik.example") ||
		!strings.HasPrefix(got[1], "minio.insecure_skip_verify: true") {
		t.Fatalf("/status config.warnings = %q", got)
	}
	hup <- syscall.SIGHUP
	eventually(t, "the reloaded config's warnings", func() bool {
		w := h.status().Config.Warnings
		return w != nil && len(w) == 0
	})
	if _, body := h.get("/status"); !strings.Contains(body, `"warnings": []`) {
		t.Errorf("/status without warnings does not say []: %s", body)
	}
}

// hookRuns starts a daemon whose runs are counted, waits for the start run and returns
// the harness and the count of runs with a reason starting "hook".
func hookRuns(t *testing.T, edit func(*Options)) (*harness, func() int) {
	t.Helper()
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	opts := Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }}
	if edit != nil {
		edit(&opts)
	}
	h := start(t, opts)
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })
	return h, func() int {
		n := 0
		for _, run := range h.status().RecentRuns {
			if strings.HasPrefix(run.Reason, "hook") {
				n++
			}
		}
		return n
	}
}

// TestSpoofedOwnUserAgentTriggers: only a user agent that starts with "akminio/" is
// akminio's own write. "xakminio/1", or "akminio/" further inside, is somebody else's and
// triggers a run, on both hooks.
func TestSpoofedOwnUserAgentTriggers(t *testing.T) {
	h, runs := hookRuns(t, nil)
	own := `{"api":{"name":"AddCannedPolicy"},"userAgent":"akminio/1 MinIO (linux; amd64) madmin-go/3"}`
	if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, own); code != http.StatusOK || !strings.Contains(body, `"triggered": false`) {
		t.Fatalf("akminio's own audit entry: %d %s", code, body)
	}
	if code, body := h.do(http.MethodPost, "/hooks/authentik", hookToken, akNotification("model_updated", "authentik_core", "group", "akminio/1")); code != http.StatusOK || !strings.Contains(body, "akminio's own write") {
		t.Fatalf("akminio's own authentik event: %d %s", code, body)
	}
	for _, ua := range []string{"xakminio/1", "MinIO (linux; amd64) madmin-go/3 akminio/1"} {
		entry := `{"api":{"name":"AddCannedPolicy"},"userAgent":"` + ua + `"}`
		if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, entry); code != http.StatusOK || !strings.Contains(body, `"triggered": true`) {
			t.Errorf("audit entry with user agent %q: %d %s, want it to trigger", ua, code, body)
		}
		if code, body := h.do(http.MethodPost, "/hooks/authentik", hookToken, akNotification("model_updated", "authentik_core", "group", ua)); code != http.StatusAccepted {
			t.Errorf("authentik event with user agent %q: %d %s, want it to trigger", ua, code, body)
		}
	}
	eventually(t, "the run the spoofed user agents trigger", func() bool { return runs() == 1 })
}

// TestBearerSchemeIsCaseInsensitive: the auth scheme is matched case-insensitively (RFC
// 7235); another scheme with the right token, or the wrong token, is refused.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	h, _ := hookRuns(t, nil)
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/reconcile", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, auth := range []string{"Bearer " + hookToken, "bearer " + hookToken, "BEARER " + hookToken, "bEaReR  " + hookToken, hookToken} {
		if code := post(auth); code != http.StatusAccepted {
			t.Errorf("Authorization %q: %d, want 202", strings.Replace(auth, hookToken, "<token>", 1), code)
		}
	}
	for _, auth := range []string{"Basic " + hookToken, "Bearer " + hookToken + "x", "bearer", "Bearer "} {
		if code := post(auth); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", strings.Replace(auth, hookToken, "<token>", 1), code)
		}
	}
}

// TestDebounceHasAMaximumWait: a steady stream of hook events, each within http.debounce
// of the last, still gets its run (MaxDebounceFactor x debounce after the first event)
// while the stream goes on.
func TestDebounceHasAMaximumWait(t *testing.T) {
	const debounce = 100 * time.Millisecond
	cfg := testConfig(t)
	cfg.HTTP.Debounce = debounce
	h, runs := hookRuns(t, func(o *Options) { o.Config = cfg })
	event := `{"api":{"name":"SetConfigKV"},"userAgent":"mc"}`
	// Give up after 5x the maximum wait: without one, the stream postpones the run forever.
	giveUp := time.Now().Add(5 * MaxDebounceFactor * debounce)
	sent := 0
	for runs() == 0 && time.Now().Before(giveUp) {
		if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, event); code != http.StatusOK {
			t.Fatalf("hook: %d %s", code, body)
		}
		sent++
		time.Sleep(debounce / 5)
	}
	if runs() == 0 {
		t.Fatalf("%d events %v apart over %v made no run", sent, debounce/5, 5*MaxDebounceFactor*debounce)
	}
	t.Logf("the run started after %d events of a steady stream", sent)
}

// TestHookReceiptsAreNotLoggedAtInfo: a flood of hook deliveries leaves no info line per
// delivery (they are counted in /status and metrics; the lines are at debug).
func TestHookReceiptsAreNotLoggedAtInfo(t *testing.T) {
	var out syncBuffer
	log, err := logging.New(config.Log{Level: "info", Format: "json"}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hookRuns(t, func(o *Options) { o.Logger = log })
	before := strings.Count(out.String(), "\n")
	for range 50 {
		h.do(http.MethodPost, "/hooks/minio", hookToken, `{"api":{"name":"SetConfigKV"},"userAgent":"mc"}`)
		h.do(http.MethodPost, "/hooks/authentik", hookToken, akNotification("model_updated", "authentik_core", "group", "Mozilla/5.0"))
	}
	if st := h.status(); st.Events[SourceMinIO].Received != 50 || st.Events[SourceAuthentik].Received != 50 {
		t.Fatalf("events received: %+v", st.Events)
	}
	if lines := strings.Count(out.String(), "\n") - before; lines > 10 {
		t.Errorf("100 hook deliveries logged %d info lines:\n%s", lines, out.String())
	}
}

// TestWaitingReconcileHasItsOwnDeadline: POST /reconcile?wait=true waits for the run up to
// waitBudget (two runs' worth of RunTimeout + StuckGrace), then answers 504 and says where
// to look; it does not hang with a run that never ends.
func TestWaitingReconcileHasItsOwnDeadline(t *testing.T) {
	release := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		<-release // a run that ignores its deadline
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		RunTimeout: 100 * time.Millisecond, StuckGrace: 100 * time.Millisecond})
	t.Cleanup(func() { close(release) }) // before the harness stops the daemon
	c := &http.Client{Timeout: 20 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/reconcile?wait=true", nil)
	req.Header.Set("Authorization", "Bearer "+hookToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST /reconcile?wait=true with a run that never ends: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "the run did not finish within 400ms; it goes on: see /status") {
		t.Errorf("answer %d %s, want 504 naming the wait budget", resp.StatusCode, body)
	}
}

// TestWriteTimeoutCutsASlowAnswer: writeTimeout bounds the writing of an answer.
func TestWriteTimeoutCutsASlowAnswer(t *testing.T) {
	srv := httptest.NewServer(writeTimeout(50*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("too late"))
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("an answer written after its write deadline arrived: %d %q", resp.StatusCode, body)
		}
	}
}

// TestHeaderSizeIsLimited: request headers over maxHeaderBytes are refused with 431.
func TestHeaderSizeIsLimited(t *testing.T) {
	h, _ := hookRuns(t, nil)
	req, _ := http.NewRequest(http.MethodGet, h.url+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a %d KiB header: %d, want 431", 2*maxHeaderBytes>>10, resp.StatusCode)
	}
}

// TestConnectionsAreLimited: with MaxConnections held open by a client that sends
// nothing, another client is not served until one of them closes.
func TestConnectionsAreLimited(t *testing.T) {
	const limit = 4
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }, MaxConnections: limit})
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })
	get := func(timeout time.Duration) error {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(h.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(10 * time.Second); err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	var held []net.Conn
	for range limit {
		c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if err := get(500 * time.Millisecond); err == nil {
		t.Errorf("served with %d connections held open", limit)
	}
	held[0].Close()
	if err := get(10 * time.Second); err != nil {
		t.Errorf("GET /healthz once a held connection closed: %v", err)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}
