package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// TestRunsNeverOverlapAndTriggersCoalesce: while the start run blocks, two POST /reconcile
// at once make exactly one follow-up run, never concurrent with the first.
func TestRunsNeverOverlapAndTriggersCoalesce(t *testing.T) {
	var calls, active, maxActive atomic.Int32
	release := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(ctx context.Context) (*reconcile.Result, error) {
		n := active.Add(1)
		defer active.Add(-1)
		if n > maxActive.Load() {
			maxActive.Store(n)
		}
		if calls.Add(1) == 1 {
			<-release
		} else {
			time.Sleep(20 * time.Millisecond)
		}
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run to begin", func() bool { return calls.Load() == 1 })

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if code, body := h.do(http.MethodPost, "/reconcile", hookToken, ""); code != http.StatusAccepted {
				t.Errorf("POST /reconcile: %d %s", code, body)
			}
		})
	}
	wg.Wait()
	close(release)
	eventually(t, "two runs", func() bool { return h.runs(ResultInSync) == 2 })
	// A third run still pending would start as the second ends, before the loop takes in
	// any job: once a job has run, every run that was pending has started.
	barrier := func() {
		if err := h.d.Exclusive(context.Background(), "barrier", func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	barrier()
	if got := calls.Load(); got != 2 {
		t.Errorf("runs = %d, want 2 (start + one coalesced)", got)
	}
	// Positive control: a pending run is seen by the same barrier.
	h.d.Trigger("control")
	barrier()
	if got := calls.Load(); got != 3 {
		t.Errorf("runs after a trigger and the barrier = %d, want 3", got)
	}
	if got := maxActive.Load(); got != 1 {
		t.Errorf("at most %d runs at once, want 1", got)
	}
}

// TestPanicIsRecoveredAndCounted: a run that panics counts as error, and the loop goes on.
func TestPanicIsRecoveredAndCounted(t *testing.T) {
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the panicking run to be counted", func() bool { return h.runs(ResultError) == 1 })
	code, body := h.do(http.MethodPost, "/reconcile?wait=true", hookToken, "")
	if code != http.StatusOK || !strings.Contains(body, `"result": "in_sync"`) {
		t.Fatalf("POST /reconcile?wait=true after a panic: %d %s", code, body)
	}
	if code, body := h.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after a panic: %d %s", code, body)
	}
}

// TestReadyz: 503 before the first run ends, 503 with the reason after an observation
// error (backend down in /status), 200 after a success.
func TestReadyz(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	gate := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		<-gate
		if fail.Load() {
			return nil, &reconcile.ObserveError{Failed: map[reconcile.System]error{
				reconcile.SystemAuthentik: errors.New("authentik: GET /api/v3/providers/oauth2/: connection refused")}}
		}
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	code, body := h.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no run has finished yet") {
		t.Fatalf("/readyz before the first run: %d %s", code, body)
	}
	close(gate)
	eventually(t, "the failed run", func() bool { return h.runs(ResultError) == 1 })
	code, body = h.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"ready": false`) || !strings.Contains(body, "connection refused") {
		t.Fatalf("/readyz after a failed run: %d %s", code, body)
	}
	st := h.status()
	if st.Backends["authentik"].Status != "down" || !strings.Contains(st.Backends["authentik"].LastError, "connection refused") {
		t.Errorf("status backends after authentik failed: %+v", st.Backends)
	}
	if h.metric("akminio_backend_up", map[string]string{"system": "authentik"}) != 0 {
		t.Error("akminio_backend_up{system=authentik} should be 0")
	}
	if st.Backends["minio"].Status != "up" || h.metric("akminio_backend_up", map[string]string{"system": "minio"}) != 1 {
		t.Errorf("minio answered during the failed run but shows %+v", st.Backends["minio"])
	}
	fail.Store(false)
	if code, body := h.do(http.MethodPost, "/reconcile?wait=true", hookToken, ""); code != http.StatusOK {
		t.Fatalf("POST /reconcile?wait=true: %d %s", code, body)
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after a good run: %d %s", code, body)
	}
	if st := h.status(); st.Backends["authentik"].Status != "up" || st.Backends["minio"].Status != "up" {
		t.Errorf("status backends after a good run: %+v", st.Backends)
	}
	if h.metric("akminio_backend_up", map[string]string{"system": "authentik"}) != 1 {
		t.Error("akminio_backend_up{system=authentik} should be 1")
	}
}

// TestBearerAuthAndBodyLimits covers every POST endpoint.
func TestBearerAuthAndBodyLimits(t *testing.T) {
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	for _, path := range []string{"/reconcile", "/hooks/authentik", "/hooks/minio"} {
		if code, _ := h.do(http.MethodPost, path, "", "{}"); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a token: %d, want 401", path, code)
		}
		if code, _ := h.do(http.MethodPost, path, hookToken+"x", "{}"); code != http.StatusUnauthorized {
			t.Errorf("POST %s with a wrong token: %d, want 401", path, code)
		}
		if code, _ := h.do(http.MethodGet, path, hookToken, ""); code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, code)
		}
	}
	big := strings.Repeat(" ", maxHookBody+1)
	if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /hooks/minio over the limit: %d %s", code, body)
	}
	if code, body := h.do(http.MethodPost, "/reconcile", hookToken, strings.Repeat("x", maxReconcileBody+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /reconcile over the limit: %d %s", code, body)
	}
	if code, body := h.do(http.MethodPost, "/hooks/authentik", hookToken, "not json"); code != http.StatusBadRequest {
		t.Errorf("POST /hooks/authentik with a bad body: %d %s", code, body)
	}
}

// TestPostRefusedWithoutToken: no http.hook_token configured disables the POST endpoints.
func TestPostRefusedWithoutToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.HookToken = ""
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	code, body := h.do(http.MethodPost, "/reconcile", "anything", "")
	if code != http.StatusForbidden || !strings.Contains(body, "no http.hook_token is configured") {
		t.Errorf("POST /reconcile with no token configured: %d %s", code, body)
	}
}

// TestHooksTriggerDebouncedRuns: a burst of relevant hook calls makes one run; MinIO audit
// entries of other calls, or of akminio's own writes, make none.
func TestHooksTriggerDebouncedRuns(t *testing.T) {
	var calls atomic.Int32
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { calls.Add(1); return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return h.runs(ResultInSync) == 1 })

	ignored := `{"api":{"name":"PutObject"},"userAgent":"mc"}` + "\n" +
		`{"api":{"name":"AddCannedPolicy"},"userAgent":"akminio/1 MinIO (linux; amd64) madmin-go/3"}`
	if code, body := h.do(http.MethodPost, "/hooks/minio", hookToken, ignored); code != http.StatusOK || !strings.Contains(body, `"triggered": false`) {
		t.Fatalf("irrelevant audit entries: %d %s", code, body)
	}
	time.Sleep(150 * time.Millisecond)
	if got := calls.Load(); got != 1 {
		t.Fatalf("irrelevant audit entries caused runs: %d runs, want 1", got)
	}
	for range 3 {
		h.do(http.MethodPost, "/hooks/minio", hookToken, `[{"api":{"name":"SetConfigKV"},"userAgent":"mc"}]`)
		h.do(http.MethodPost, "/hooks/authentik", hookToken, `{"body":"model_updated: {}","severity":"notice"}`)
	}
	eventually(t, "the debounced run", func() bool { return calls.Load() == 2 })
	time.Sleep(150 * time.Millisecond)
	if got := calls.Load(); got != 2 {
		t.Errorf("a burst of hooks made %d runs, want 1", got-1)
	}
}

// TestExclusiveNeverOverlapsRuns: a job queued during a run starts after it.
func TestExclusiveNeverOverlapsRuns(t *testing.T) {
	var active atomic.Int32
	var overlap atomic.Bool
	release := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		if active.Add(1) > 1 {
			overlap.Store(true)
		}
		defer active.Add(-1)
		<-release
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return active.Load() == 1 })
	errc := make(chan error, 1)
	go func() {
		errc <- h.d.Exclusive(context.Background(), "job", func(context.Context) error {
			if active.Add(1) > 1 {
				overlap.Store(true)
			}
			defer active.Add(-1)
			return nil
		})
	}()
	eventually(t, "the job queued behind the run", func() bool { return h.d.jobsQueued.Load() == 1 })
	if active.Load() != 1 {
		t.Fatal("the job was not queued during the run")
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if overlap.Load() {
		t.Error("an exclusive job ran during a reconcile run")
	}
	if err := h.d.Exclusive(context.Background(), "panicky", func(context.Context) error { panic("x") }); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("a panicking job: err = %v", err)
	}
}

// TestStuckRunTurnsHealthzUnhealthy: a run that ignores its context past RunTimeout and the
// grace makes /healthz 503.
func TestStuckRunTurnsHealthzUnhealthy(t *testing.T) {
	release := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { <-release; return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		RunTimeout: 50 * time.Millisecond, StuckGrace: 50 * time.Millisecond, ShutdownTimeout: time.Second})
	// No check of 200 before the run is stuck: on a loaded machine 100 ms pass quickly.
	// TestPanicIsRecoveredAndCounted covers a healthy loop; here the point is the turn to
	// 503 and back.
	eventually(t, "/healthz 503 for the stuck run", func() bool {
		code, body := h.get("/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stuck")
	})
	close(release)
	eventually(t, "/healthz 200 again", func() bool { code, _ := h.get("/healthz"); return code == http.StatusOK })
	// The run ended after its deadline: it counts as what it returned, the loop goes on.
}

// TestShutdownWaitsForRun: cancelling Run while a run is going lets it finish, refuses new
// triggers, and returns nil.
func TestShutdownWaitsForRun(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		close(started)
		<-release // the run cannot end before the shutdown has begun
		finished.Store(true)
		return inSync(), nil
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	<-started
	errc := make(chan error, 1)
	go func() { errc <- h.stop() }()
	eventually(t, "triggers refused", func() bool { return !h.d.Trigger("test") })
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if !finished.Load() {
		t.Error("Run returned before the run in progress finished")
	}
}

// TestShutdownCancelsOverlongRun: a run still going at ShutdownTimeout is cancelled.
func TestShutdownCancelsOverlongRun(t *testing.T) {
	started := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(ctx context.Context) (*reconcile.Result, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }, ShutdownTimeout: 200 * time.Millisecond})
	<-started
	begin := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("shutdown took %s", took)
	}
}

// TestShutdownDuringScheduledRun: SIGTERM while a scheduled run is going waits for it and
// returns nil (the cron job waiting for its run must not hold the shutdown up).
func TestShutdownDuringScheduledRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.Schedule.Reconcile = "@every 1s"
	var calls atomic.Int32
	scheduled := make(chan struct{})
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		if calls.Add(1) == 2 {
			close(scheduled)
			time.Sleep(500 * time.Millisecond)
		}
		return inSync(), nil
	}}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }, ShutdownTimeout: 5 * time.Second})
	select {
	case <-scheduled:
	case <-time.After(5 * time.Second):
		t.Fatal("no scheduled run")
	}
	begin := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("shutdown took %s", took)
	}
}

// TestShutdownDuringJitter: a scheduled job sleeping its jitter does not delay shutdown.
func TestShutdownDuringJitter(t *testing.T) {
	cfg := testConfig(t)
	cfg.Schedule.Reconcile = "@every 1s"
	cfg.Schedule.Jitter = time.Hour
	sleeping := make(chan struct{}, 10)
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		ShutdownTimeout: 3 * time.Second,
		Jitter:          func(time.Duration) time.Duration { sleeping <- struct{}{}; return time.Hour }})
	select {
	case <-sleeping:
	case <-time.After(5 * time.Second):
		t.Fatal("no scheduled job")
	}
	begin := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("shutdown took %s while a job slept its jitter", took)
	}
}

// TestShutdownDuringScheduledRotation: SIGTERM while a scheduled rotation is going lets it
// finish and counts what it did (success), never a failure for the scheduler giving up
// waiting on it, and sends no secret_rotation_failed.
func TestShutdownDuringScheduledRotation(t *testing.T) {
	rc := newReceiver(t)
	cfg := testConfig(t)
	cfg.Schedule.RotateSecret = "@every 1s"
	cfg.Alerts.WebhookURL = rc.srv.URL
	started := make(chan struct{})
	var rotations atomic.Int32
	rotateFn := func(context.Context, *config.Config) error {
		if rotations.Add(1) == 1 {
			close(started)
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	}
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil },
		Rotate: rotateFn, ShutdownTimeout: 5 * time.Second})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no scheduled rotation")
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if v := h.metric("akminio_secret_rotations_total", map[string]string{"result": RotationFailed}); v != 0 {
		t.Errorf("a rotation that succeeded during shutdown counted %v failure(s)", v)
	}
	if v := h.metric("akminio_secret_rotations_total", map[string]string{"result": RotationSuccess}); v != 1 {
		t.Errorf("successful rotations = %v, want 1", v)
	}
	if got := strings.Join(rc.got(), "\n"); strings.Contains(got, EventSecretRotationFailed) {
		t.Errorf("secret_rotation_failed sent for a rotation that succeeded:\n%s", got)
	}
}

// TestShutdownWithHangingAlertReceiver: alerts still queued at SIGTERM get a short last
// chance, not the whole shutdown budget, and a receiver that never answers does not turn a
// clean shutdown into an error (exit status 1).
func TestShutdownWithHangingAlertReceiver(t *testing.T) {
	h := startFailingWithHangingReceiver(t, time.Minute, 4*time.Second)
	eventually(t, "the failed run", func() bool { return h.runs(ResultError) == 1 })
	begin := time.Now()
	if err := h.stop(); err != nil {
		t.Errorf("Run returned %v with a hanging alert receiver, want nil (exit 0)", err)
	}
	if took := time.Since(begin); took > 2500*time.Millisecond {
		t.Errorf("shutdown took %s waiting for a hanging alert receiver", took)
	}
}

// TestHookBodies: the bodies authentik and MinIO really send. MinIO's audit entries
// (madmin-go's logger/audit.Entry) name the admin handler in api.name, as MinIO's router
// names it (AttachDetachPolicyBuiltin, not AttachDetachPolicy); authentik's webhook body
// mapping may return any JSON, not only an object.
func TestHookBodies(t *testing.T) {
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) { return inSync(), nil }}
	h := start(t, Options{NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	audit := func(api, ua string) string {
		return `{"version":"1","deploymentid":"d3e1","time":"2026-01-02T03:04:05Z","event":"","trigger":"incoming",` +
			`"api":{"name":"` + api + `","status":"OK","statusCode":200,"rx":120,"tx":0},"remotehost":"127.0.0.1",` +
			`"requestID":"1822","userAgent":"` + ua + `","requestPath":"/minio/admin/v3/idp/builtin/policy/attach",` +
			`"requestHost":"127.0.0.1:9000","accessKey":"minioadmin"}`
	}
	const mc = "MinIO (linux; amd64) madmin-go/v3.0.109 mc/RELEASE.2025"
	for _, tc := range []struct {
		path, body string
		want       int
		triggered  bool
	}{
		{"/hooks/minio", audit("AttachDetachPolicyBuiltin", mc), http.StatusOK, true},
		{"/hooks/minio", audit("AddCannedPolicy", mc), http.StatusOK, true},
		{"/hooks/minio", audit("AddCannedPolicy", "akminio/v1.2.3 MinIO (linux; amd64) madmin-go/v3.0.109"), http.StatusOK, false},
		{"/hooks/minio", audit("ListCannedPolicies", mc), http.StatusOK, false},
		{"/hooks/authentik", `{"body":"model_updated: {'model': {'app': 'authentik_providers_oauth2'}}","severity":"notice",` +
			`"user_email":"ops@example.com","user_username":"ops","event_user_email":null,"event_user_username":null}`, http.StatusAccepted, true},
		{"/hooks/authentik", `"a body mapping's string"`, http.StatusBadRequest, false},
		{"/hooks/authentik", `{"severity":"notice"}`, http.StatusBadRequest, false},
		{"/hooks/authentik", akNotification("model_updated", "authentik_core", "group", "Mozilla/5.0"), http.StatusAccepted, true},
		{"/hooks/authentik", akNotification("model_deleted", "authentik_policies", "policybinding", "Mozilla/5.0"), http.StatusAccepted, true},
		{"/hooks/authentik", akNotification("model_updated", "authentik_core", "user", "Mozilla/5.0"), http.StatusOK, false},
		{"/hooks/authentik", akNotification("model_updated", "authentik_core", "group", "akminio/v1.2.3"), http.StatusOK, false},
		{"/hooks/authentik", `{"body":"login: {'auth_method': 'password'}","severity":"notice"}`, http.StatusOK, false},
		{"/hooks/authentik", `{"body": `, http.StatusBadRequest, false},
	} {
		code, body := h.do(http.MethodPost, tc.path, hookToken, tc.body)
		if code != tc.want || (code < 300 && strings.Contains(body, `"triggered": true`) != tc.triggered) {
			t.Errorf("POST %s %.60s...: %d %s; want %d, triggered %v", tc.path, tc.body, code, body, tc.want, tc.triggered)
		}
	}
}

// akNotification is authentik's default webhook body for a model event, the summary as
// authentik prints it.
func akNotification(action, app, model, ua string) string {
	body := action + ": {'model': {'app': '" + app + "', 'model_name': '" + model + "', 'pk': 'a1b2', 'name': 'x'}, " +
		"'http_request': {'path': '/api/v3/x/', 'method': 'PATCH', 'args': {}, 'user_agent': '" + ua + "', 'request_id': 'f00'}}"
	raw, _ := json.Marshal(map[string]any{"body": body, "severity": "notice", "user_email": "ops@example.com",
		"user_username": "ops", "event_user_email": "ops@example.com", "event_user_username": "ops"})
	return string(raw)
}
