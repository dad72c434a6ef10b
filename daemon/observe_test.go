package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/logging"
	"github.com/akminio/akminio/reconcile"
)

// TestMetricsExistFromStart: every series of the contract, with every known label value,
// is there before the first run ends, at zero.
func TestMetricsExistFromStart(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { <-block; return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	_, body := h.get("/metrics")
	want := []string{
		`akminio_reconcile_runs_total{result="in_sync"} 0`, `akminio_reconcile_runs_total{result="repaired"} 0`,
		`akminio_reconcile_runs_total{result="drift"} 0`, `akminio_reconcile_runs_total{result="error"} 0`,
		`akminio_reconcile_runs_total{result="transient"} 0`,
		`akminio_reconcile_duration_seconds_count 0`,
		`akminio_drift_items{kind="policy",system="minio"} 0`, `akminio_drift_items{kind="scope_mapping",system="authentik"} 0`,
		`akminio_drift_items{kind="verification",system="authentik"} 0`,
		`akminio_changes_applied_total{action="create",kind="identity_openid",system="minio"} 0`,
		`akminio_changes_applied_total{action="delete",kind="policy_binding",system="authentik"} 0`,
		`akminio_last_success_timestamp_seconds 0`,
		`akminio_backend_up{system="authentik"} 0`, `akminio_backend_up{system="minio"} 0`,
		`akminio_client_secret_rotated_timestamp_seconds 0`,
		`akminio_secret_rotations_total{result="success"} 0`, `akminio_secret_rotations_total{result="failed"} 0`,
		`akminio_secret_rotations_total{result="rolled_back"} 0`,
		`akminio_minio_restart_pending 0`, `akminio_config_last_reload_successful 1`,
		`go_goroutines `, `process_resident_memory_bytes `,
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	promtool := requireTool(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestRunMetrics: a repaired run counts its changes and sets the success timestamp; a
// drift run sets drift items and restart pending.
func TestRunMetrics(t *testing.T) {
	openid := reconcile.Change{System: reconcile.SystemMinIO, Action: reconcile.ActionUpdate, Kind: reconcile.KindOpenID,
		Name: "identity_openid", Fields: []string{"client_secret"}, RestartRequired: true, Pending: true}
	results := []*reconcile.Result{repaired(policyChange), drifted(openid)}
	var n atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return results[min(int(n.Add(1))-1, 1)], nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the repaired run", func() bool { return h.runs(ResultRepaired) == 1 })
	if v := h.metric("akminio_changes_applied_total", map[string]string{"system": "minio", "kind": "policy", "action": "create"}); v != 1 {
		t.Errorf("changes applied = %v, want 1", v)
	}
	if v := h.metric("akminio_last_success_timestamp_seconds", nil); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success timestamp = %v", v)
	}
	h.do(http.MethodPost, "/reconcile?wait=true", hookToken, "")
	if v := h.metric("akminio_drift_items", map[string]string{"system": "minio", "kind": "identity_openid"}); v != 1 {
		t.Errorf("drift items = %v, want 1", v)
	}
	if v := h.metric("akminio_minio_restart_pending", nil); v != 1 {
		t.Errorf("restart pending = %v, want 1", v)
	}
	st := h.status()
	if st.Drift.Drift != 1 || st.Drift.Changes[0].Kind != reconcile.KindOpenID || !st.RestartPending || st.LastRun.Result != ResultDrift {
		t.Errorf("status after a drift run: %+v", st)
	}
}

// receiver records the JSON bodies POSTed to it; fail makes it answer 500 that many times.
type receiver struct {
	mu     sync.Mutex
	bodies []string
	fail   atomic.Int32
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if rc.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, r.URL.Path+" "+string(b))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string{}, rc.bodies...)
}

// TestWebhookGetsDriftDetectedThenRepaired, through one failed delivery (retried).
func TestWebhookGetsDriftDetectedThenRepaired(t *testing.T) {
	rc := newReceiver(t)
	rc.fail.Store(1)
	cfg := testConfig(t)
	cfg.Alerts.WebhookURL = rc.srv.URL + "/hook"
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return repaired(policyChange), nil }}
	start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "two webhook events", func() bool { return len(rc.got()) >= 2 })
	var events []Event
	for _, b := range rc.got()[:2] {
		var e Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(b, "/hook ")), &e); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		events = append(events, e)
	}
	if events[0].Event != EventDriftDetected || events[1].Event != EventDriftRepaired {
		t.Fatalf("events = %s, %s; want drift_detected, drift_repaired", events[0].Event, events[1].Event)
	}
	if len(events[0].Changes) != 1 || events[0].Changes[0].Name != "my-custom-policy" || events[0].Time.IsZero() {
		t.Errorf("drift_detected event: %+v", events[0])
	}
}

// TestAlertmanagerAlertResolves: drift fires AkminioDrift, a later in-sync run resolves it
// with endsAt not after now.
func TestAlertmanagerAlertResolves(t *testing.T) {
	rc := newReceiver(t)
	cfg := testConfig(t)
	cfg.Alerts.AlertmanagerURL = rc.srv.URL + "/"
	var n atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		if n.Add(1) == 1 {
			return drifted(policyChange), nil
		}
		return inSync(), nil
	}}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the firing alert", func() bool { return len(rc.got()) >= 1 })
	h.do(http.MethodPost, "/reconcile?wait=true", hookToken, "")
	eventually(t, "the resolution", func() bool { return len(rc.got()) >= 2 })
	decode := func(b string) amAlert {
		if !strings.HasPrefix(b, "/api/v2/alerts ") {
			t.Fatalf("posted to the wrong path: %s", b)
		}
		var as []amAlert
		if err := json.Unmarshal([]byte(strings.TrimPrefix(b, "/api/v2/alerts ")), &as); err != nil || len(as) != 1 {
			t.Fatalf("%v: %s", err, b)
		}
		return as[0]
	}
	firing, resolved := decode(rc.got()[0]), decode(rc.got()[1])
	if firing.Labels["alertname"] != AlertDrift || firing.Labels["severity"] == "" || firing.Labels["instance"] == "" ||
		firing.Annotations["summary"] == "" || !firing.EndsAt.After(time.Now()) {
		t.Errorf("firing alert: %+v", firing)
	}
	if resolved.Labels["alertname"] != AlertDrift || resolved.EndsAt.After(time.Now()) || !resolved.StartsAt.Equal(firing.StartsAt) {
		t.Errorf("resolved alert: %+v", resolved)
	}
}

// TestAlertReceiverNeverBlocksRuns: a receiver that hangs does not slow runs down.
func TestAlertReceiverNeverBlocksRuns(t *testing.T) {
	h := startFailingWithHangingReceiver(t, 100*time.Millisecond, time.Second)
	begin := time.Now()
	for range 5 {
		h.do(http.MethodPost, "/reconcile?wait=true", hookToken, "")
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("5 runs took %s with a hanging alert receiver", took)
	}
}

// TestNoSecretInOutput runs with known secret strings, a failing run whose error carries
// one, and checks every HTTP body.
func TestNoSecretInOutput(t *testing.T) {
	secrets := []string{"ak-token-SECRET-1", "minio-access-SECRET-2", "minio-secret-SECRET-3", hookToken}
	cfg := testConfig(t)
	cfg.Authentik.Token = config.Secret(secrets[0])
	cfg.MinIO.AccessKey = config.Secret(secrets[1])
	cfg.MinIO.SecretKey = config.Secret(secrets[2])
	rc := newReceiver(t)
	cfg.Alerts.WebhookURL = rc.srv.URL
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		return nil, &reconcile.ObserveError{Failed: map[reconcile.System]error{
			reconcile.SystemMinIO: fmt.Errorf("minio: signature for %s/%s refused", secrets[1], secrets[2])}}
	}}
	var logs syncBuffer
	scrubber := logging.NewScrubber() // the daemon sets the config's secrets on it
	log, err := logging.New(config.Log{Level: "debug", Format: "json"}, &logs, scrubber)
	if err != nil {
		t.Fatal(err)
	}
	scan := e2eenvtest.NewLeakScan(t)
	for i, s := range secrets {
		scan.Secret(fmt.Sprintf("secret %d", i+1), s)
	}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }, Scrubber: scrubber, Logger: log})
	h.scan = scan
	eventually(t, "the failed run", func() bool { return h.runs(ResultError) == 1 })
	eventually(t, "the failure alert", func() bool { return len(rc.got()) > 0 })
	for _, p := range []string{"/status", "/readyz", "/healthz", "/metrics"} {
		h.get(p)
	}
	h.do(http.MethodPost, "/reconcile?wait=true", hookToken, "")
	scan.Output("alert payloads", strings.Join(rc.got(), "\n"))
	scan.Output("the daemon's log", logs.String())
	if _, status := h.get("/status"); !strings.Contains(status, "signature for") {
		t.Fatal("the error text is not shown at all")
	}
	scan.CheckNow(t)
}

// TestScheduledRunsWithJitter: the cron schedule triggers runs, each after a jitter drawn
// up to schedule.jitter.
func TestScheduledRunsWithJitter(t *testing.T) {
	cfg := testConfig(t)
	cfg.Schedule.Reconcile = "@every 1s"
	cfg.Schedule.Jitter = 30 * time.Second
	var jitters atomic.Int32
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { calls.Add(1); return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		Jitter: func(max time.Duration) time.Duration {
			if max != 30*time.Second {
				t.Errorf("jitter max = %s", max)
			}
			jitters.Add(1)
			return 10 * time.Millisecond
		}})
	eventually(t, "a scheduled run", func() bool { return calls.Load() >= 2 })
	if jitters.Load() == 0 {
		t.Error("a scheduled run had no jitter")
	}
	if st := h.status(); st.NextRuns.Reconcile == nil || st.NextRuns.RotateSecret != nil {
		t.Errorf("next runs without a rotator: %+v", st.NextRuns)
	}
}

// TestNotifySocket reads the sd_notify datagrams: READY=1, STATUS= after the first run,
// WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC then READY=1 on
// SIGHUP; a bad config on SIGHUP is rejected and the daemon goes on with the old one.
func TestNotifySocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: a ping every 100 ms
	t.Setenv("WATCHDOG_PID", "")

	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string, match func(string) bool) (string, time.Time) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case m := <-msgs:
				if match(m) {
					return m, time.Now()
				}
			case <-timeout:
				t.Fatalf("no %s datagram", what)
			}
		}
	}
	hup := make(chan os.Signal, 1)
	var reloadErr atomic.Pointer[error]
	var builds atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{
		NewRunner: func(*config.Config) (Runner, error) { builds.Add(1); return r, nil },
		Hangup:    hup,
		Reload: func() (*config.Config, error) {
			if e := reloadErr.Load(); e != nil {
				return nil, *e
			}
			return testConfig(t), nil
		},
	})
	next("READY=1", func(m string) bool { return strings.HasPrefix(m, "READY=1") })
	next("STATUS= after the first run", func(m string) bool { return m == "STATUS=last run: in sync" })
	_, t0 := next("WATCHDOG=1", func(m string) bool { return m == "WATCHDOG=1" })
	for range 5 {
		next("WATCHDOG=1", func(m string) bool { return m == "WATCHDOG=1" })
	}
	if per := time.Since(t0) / 5; per < 50*time.Millisecond || per > 300*time.Millisecond {
		t.Errorf("watchdog pings every %s, want about 100ms", per)
	}

	hup <- os.Interrupt // any value: the channel stands for SIGHUP
	m, _ := next("RELOADING=1", func(m string) bool { return strings.HasPrefix(m, "RELOADING=1") })
	if !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING datagram without MONOTONIC_USEC: %q", m)
	}
	next("READY=1 after the reload", func(m string) bool { return strings.HasPrefix(m, "READY=1") })
	if builds.Load() != 2 || h.metric("akminio_config_last_reload_successful", nil) != 1 {
		t.Errorf("a good reload: %d engines built, gauge %v", builds.Load(), h.metric("akminio_config_last_reload_successful", nil))
	}

	bad := error(&config.Error{Problems: []string{"schedule.reconcile: not a cron spec"}})
	reloadErr.Store(&bad)
	hup <- os.Interrupt
	next("RELOADING=1", func(m string) bool { return strings.HasPrefix(m, "RELOADING=1") })
	next("READY=1 after the rejected reload", func(m string) bool { return strings.HasPrefix(m, "READY=1") })
	if v := h.metric("akminio_config_last_reload_successful", nil); v != 0 {
		t.Errorf("akminio_config_last_reload_successful = %v after a bad reload, want 0", v)
	}
	if code, body := h.do(http.MethodPost, "/reconcile?wait=true", hookToken, ""); code != http.StatusOK {
		t.Errorf("the daemon does not run on the old config after a bad reload: %d %s", code, body)
	}
	if st := h.status(); st.Config.LastReloadSuccessful {
		t.Error("status says the last reload succeeded")
	}
	h.stop()
	next("STOPPING=1", func(m string) bool { return m == "STOPPING=1" })
}

// rolledBack is an error a rotation returns after putting the old secret back.
type rolledBack struct{}

func (rolledBack) Error() string    { return "rotation failed and was rolled back" }
func (rolledBack) RolledBack() bool { return true }

// TestScheduledRotation: schedule.rotate_secret runs Options.Rotate with the config in
// force; results are counted, the secret's age comes from state.json, and alerts go out.
func TestScheduledRotation(t *testing.T) {
	rc := newReceiver(t)
	cfg := testConfig(t)
	cfg.Schedule.RotateSecret = "@every 1s"
	cfg.Alerts.WebhookURL = rc.srv.URL
	var n atomic.Int32
	rotatedAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rotate := func(_ context.Context, c *config.Config) error {
		if c != cfg {
			t.Error("rotation did not get the config in force")
		}
		if n.Add(1) == 1 {
			return fmt.Errorf("minio: restart: %w", rolledBack{})
		}
		return reconcile.SaveState(c.StateDir, reconcile.State{SecretRotatedAt: rotatedAt})
	}
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }, Rotate: rotate})
	eventually(t, "a rolled back and a successful rotation", func() bool {
		return h.metric("akminio_secret_rotations_total", map[string]string{"result": RotationSuccess}) >= 1
	})
	if v := h.metric("akminio_secret_rotations_total", map[string]string{"result": RotationRolledBack}); v != 1 {
		t.Errorf("rolled_back rotations = %v, want 1", v)
	}
	if v := h.metric("akminio_client_secret_rotated_timestamp_seconds", nil); v != float64(rotatedAt.Unix()) {
		t.Errorf("rotated timestamp = %v, want %d", v, rotatedAt.Unix())
	}
	st := h.status()
	if st.Secret.AgeSeconds == nil || *st.Secret.AgeSeconds < 3500 || st.NextRuns.RotateSecret == nil {
		t.Errorf("status secret %+v, next runs %+v", st.Secret, st.NextRuns)
	}
	eventually(t, "rotation events", func() bool {
		got := strings.Join(rc.got(), "\n")
		return strings.Contains(got, EventSecretRotationFailed) && strings.Contains(got, EventSecretRotated)
	})
}

// TestStartRecoversThenRuns: an interrupted rotation is settled before the first reconcile
// run, and its result is counted.
func TestStartRecoversThenRuns(t *testing.T) {
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	recoverFn := func(context.Context, *config.Config) (string, error) {
		note("recover")
		return RotationRolledBack, errors.New("a rotation interrupted by a crash was rolled back")
	}
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { note("run"); return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }, Recover: recoverFn})
	eventually(t, "the first run", func() bool { return h.runs(ResultInSync) >= 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 2 || order[0] != "recover" || order[1] != "run" {
		t.Errorf("order at start = %v, want recover before the first run", order)
	}
	if v := h.metric("akminio_secret_rotations_total", map[string]string{"result": RotationRolledBack}); v != 1 {
		t.Errorf("rolled_back rotations = %v, want 1", v)
	}
}

// TestMissedRotationRunsAtStart: a scheduled rotation time that passed while the daemon was
// down (the last rotation is older than the schedule's next time after it) rotates at start;
// a recent one does not.
func TestMissedRotationRunsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  time.Duration
		want bool
	}{
		{"missed", 48 * time.Hour, true},
		{"not due", time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Schedule.RotateSecret = "@every 24h"
			if err := reconcile.SaveState(cfg.StateDir, reconcile.State{SecretRotatedAt: time.Now().Add(-tc.age)}); err != nil {
				t.Fatal(err)
			}
			var rotations atomic.Int32
			rotateFn := func(context.Context, *config.Config) error { rotations.Add(1); return nil }
			r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
			h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }, Rotate: rotateFn})
			eventually(t, "the first run", func() bool { return h.runs(ResultInSync) >= 1 })
			if tc.want {
				eventually(t, "the missed rotation", func() bool { return rotations.Load() == 1 })
				return
			}
			time.Sleep(200 * time.Millisecond)
			if n := rotations.Load(); n != 0 {
				t.Errorf("%d rotations at start, want none (the secret is a minute old)", n)
			}
		})
	}
}
