package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
	"github.com/akminio/akminio/reconcile"
)

// reconcileFailedEvents decodes the reconcile_failed webhook events rc received, once every
// alert the daemon queued has been delivered: what has not arrived then was never sent.
func reconcileFailedEvents(t *testing.T, h *harness, rc *receiver) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !h.d.alerts.drain(ctx) {
		t.Fatal("the alert queue did not drain")
	}
	var out []Event
	for _, b := range rc.got() {
		var e Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(b, "/hook ")), &e); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if e.Event == EventReconcileFailed {
			out = append(out, e)
		}
	}
	return out
}

// TestLockHeldIsTransient: a run that finds the run lock held by another run (a real engine
// over a state_dir whose lock the test holds) is counted as transient and sends no alert;
// the third in a row (DefaultTransientAlertAfter) sends one, and the fourth no second one.
func TestLockHeldIsTransient(t *testing.T) {
	rc := newReceiver(t)
	cfg := testConfig(t)
	cfg.Alerts.WebhookURL = rc.srv.URL + "/hook"
	lock, err := statedir.TryLock(cfg.StateDir, reconcile.RunLock)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	eng := &reconcile.Engine{StateDir: cfg.StateDir} // the lock is taken before anything else
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return eng, nil }})

	eventually(t, "the start run", func() bool { return h.runs(ResultTransient) == 1 })
	for run := 2; run <= 4; run++ {
		if code, body := h.do(http.MethodPost, "/reconcile?wait=true", hookToken, ""); code != http.StatusOK {
			t.Fatalf("run %d: %d %s", run, code, body)
		}
		events := reconcileFailedEvents(t, h, rc)
		want := 0
		if run >= DefaultTransientAlertAfter {
			want = 1
		}
		if len(events) != want {
			t.Fatalf("after %d lock-held runs: %d reconcile_failed events, want %d", run, len(events), want)
		}
		if want == 1 && !strings.Contains(events[0].Error, "another akminio apply is running") {
			t.Errorf("event: %+v", events[0])
		}
	}
	if got, errs := h.runs(ResultTransient), h.runs(ResultError); got != 4 || errs != 0 {
		t.Errorf("runs: transient %v, error %v; want 4 and 0", got, errs)
	}
	if st := h.status(); st.LastRun == nil || st.LastRun.Result != ResultTransient {
		t.Errorf("status last run: %+v", st.LastRun)
	}
}

// TestTerminalFailureAlertsAtOnce: the first terminal failure sends reconcile_failed.
func TestTerminalFailureAlertsAtOnce(t *testing.T) {
	rc := newReceiver(t)
	cfg := testConfig(t)
	cfg.Alerts.WebhookURL = rc.srv.URL + "/hook"
	r := &fakeRunner{ApplyFunc: func(context.Context) (*reconcile.Result, error) {
		return nil, errorString("authentik: list providers: HTTP 403 Forbidden: the token was refused (check authentik.token)")
	}}
	h := start(t, Options{Config: cfg, NewRunner: func(*config.Config) (Runner, error) { return r, nil }})
	eventually(t, "the start run", func() bool { return h.runs(ResultError) == 1 })
	if code, _ := h.do(http.MethodPost, "/reconcile?wait=true", hookToken, ""); code != http.StatusOK {
		t.Fatalf("POST /reconcile: %d", code)
	}
	if events := reconcileFailedEvents(t, h, rc); len(events) != 1 {
		t.Errorf("%d reconcile_failed events after two terminal failures, want 1", len(events))
	}
	if got := h.runs(ResultError); got != 2 {
		t.Errorf("error runs = %v, want 2", got)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
