package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
)

// hookToken is the bearer token of test configs.
const hookToken = "hook-token-7f3a9c-0123456789abcdef"

// fakeRunner is a hand-written Runner: ApplyFunc decides what each run returns.
type fakeRunner struct {
	ApplyFunc func(ctx context.Context) (*reconcile.Result, error)
}

func (f *fakeRunner) Apply(ctx context.Context) (*reconcile.Result, error) { return f.ApplyFunc(ctx) }

// testConfig is a valid-looking config for the daemon: it reads only schedule, mode,
// state_dir, http and alerts.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	return &config.Config{
		Path:     "/etc/akminio/config.yaml",
		Mode:     config.ModeRepair,
		StateDir: t.TempDir(),
		Schedule: config.Schedule{Reconcile: "@every 1h", RotateSecret: "0 3 1 * *"},
		HTTP:     config.HTTP{Listen: "127.0.0.1:0", HookToken: hookToken, Debounce: 50 * time.Millisecond},
	}
}

// harness is a daemon running in the test on 127.0.0.1:0.
type harness struct {
	t    *testing.T
	d    *Daemon
	reg  *prometheus.Registry
	url  string
	stop func() error // cancels Run and returns its error
	// scan, when set, records every body the harness reads, for the leak scan.
	scan *e2eenvtest.LeakScan
}

// start runs a daemon with opts completed by test defaults (a fresh registry, a test
// logger, a loopback listener). It stops it at the end of the test.
func start(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Config == nil {
		opts.Config = testConfig(t)
	}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	opts.Version = "v-test"
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 20 * time.Millisecond
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	h := &harness{t: t, d: d, reg: reg, url: "http://" + ln.Addr().String()}
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(20 * time.Second):
				t.Error("Run did not return within 20s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// do sends a request and returns status and body.
func (h *harness) do(method, path, token, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if h.scan != nil {
		h.scan.Output(method+" "+path, string(b))
	}
	return resp.StatusCode, string(b)
}

// get is a GET that returns status and body.
func (h *harness) get(path string) (int, string) { return h.do(http.MethodGet, path, "", "") }

// status decodes /status.
func (h *harness) status() Status {
	h.t.Helper()
	code, body := h.get("/status")
	if code != http.StatusOK {
		h.t.Fatalf("/status: %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		h.t.Fatalf("/status: %v\n%s", err, body)
	}
	return st
}

// metric returns the value of one series from the registry (-1 when absent).
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

// runs is akminio_reconcile_runs_total{result}.
func (h *harness) runs(result string) float64 {
	return h.metric("akminio_reconcile_runs_total", map[string]string{"result": result})
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inSync, repaired and drifted are Results of the three non-error kinds.
func inSync() *reconcile.Result { return &reconcile.Result{} }

func repaired(cs ...reconcile.Change) *reconcile.Result {
	return &reconcile.Result{Plan: reconcile.Plan{Changes: cs}, Applied: cs}
}

func drifted(cs ...reconcile.Change) *reconcile.Result {
	return &reconcile.Result{Plan: reconcile.Plan{Changes: cs}, Remaining: reconcile.Plan{Changes: cs}}
}

var policyChange = reconcile.Change{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate,
	Kind: reconcile.KindPolicy, Name: "my-custom-policy"}

// requireTool returns the path of a command, skipping when it is missing outside CI and
// failing in CI (CI=true), where .ci/run must have installed it.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := lookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package %s); .ci/run must install it", name, debianPackage)
	}
	t.Skipf("%s is not installed (Debian package %s)", name, debianPackage)
	return ""
}

var lookPath = exec.LookPath

// startFailingWithHangingReceiver starts a daemon whose runs fail (so every run alerts) and
// whose webhook receiver never answers; alerts are sent with clientTimeout per attempt.
func startFailingWithHangingReceiver(t *testing.T, clientTimeout, shutdown time.Duration) *harness {
	t.Helper()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	cfg := testConfig(t)
	cfg.Alerts.WebhookURL = srv.URL
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return nil, errors.New("minio: boom") }}
	return start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		HTTPClient: &http.Client{Timeout: clientTimeout}, ShutdownTimeout: shutdown})
}
