package daemon

import (
	"bytes"
	"context"
	"errors"
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
