package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
)

// feedHookToken is the hook token of the events tests (at least 32 characters).
const feedHookToken = "e2e-hook-token-0123456789abcdefghijklmnop"

// eventsConfig is the environment's config with the feeds installed, pointing at the
// daemon's own listener, and a schedule of once a day: only events cause runs.
func eventsConfig(env *e2eenv.Env, install bool) map[string]any {
	cfg := env.DefaultConfig()
	listen := section(cfg, "http")["listen"].(string)
	cfg["http"] = map[string]any{"listen": listen, "hook_token": feedHookToken, "debounce": "300ms"}
	cfg["events"] = map[string]any{"install": install, "public_url": "http://" + listen}
	cfg["schedule"] = map[string]any{"reconcile": "@daily", "rotate_secret": "", "jitter": "0s"}
	return cfg
}

// TestEventFeeds is issue 10's acceptance with the real binary, the simulator and a real
// MinIO: one apply creates the feeds and plan is clean; a hand edit of the transport URL is
// drift that apply repairs; `akminio run` repairs a scope mapping edited through the API and
// a managed policy changed with madmin through the real audit webhook, with no scheduled run
// (the run reasons in /status say so); turning install off removes the feeds.
func TestEventFeeds(t *testing.T) {
	env := e2eenvtest.Start(t)
	ctx := context.Background()
	ak := aksimtest.Client(env.AK)
	if err := env.WriteConfig(eventsConfig(env, true)); err != nil {
		t.Fatal(err)
	}
	out, _, code := e2eenvtest.Akminio(t, env, "apply")
	if code != 0 || !strings.Contains(out, `notification transport "akminio"`) || !strings.Contains(out, reconcile.AuditTarget) {
		t.Fatalf("first apply: exit %d, want 0 with the feeds created", code)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "plan"); code != 0 {
		t.Fatalf("plan after apply: exit %d, want 0", code)
	}

	// A hand edit of the transport's URL is drift; apply repairs it.
	tl, _, err := ak.EventsAPI.EventsTransportsList(ctx).Name(reconcile.FeedName).Execute()
	if err != nil || len(tl.Results) != 1 {
		t.Fatalf("transports: %v %v", tl, err)
	}
	_, _, err = ak.EventsAPI.EventsTransportsPartialUpdate(ctx, tl.Results[0].Pk).PatchedNotificationTransportRequest(
		api.PatchedNotificationTransportRequest{WebhookUrl: api.PtrString("http://elsewhere.example/hook")}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = e2eenvtest.Akminio(t, env, "plan", "--output", "json")
	var p jsonPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 2 {
		t.Fatalf("plan after the hand edit: exit %d, %v", code, err)
	}
	if c, ok := findChange(p, reconcile.KindTransport, reconcile.FeedName); !ok || c.Action != reconcile.ActionUpdate || !slices.Equal(c.Fields, []string{"webhook_url"}) || len(p.Changes) != 1 {
		t.Fatalf("plan after the hand edit: %+v", p.Changes)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "apply"); code != 0 {
		t.Fatalf("apply after the hand edit: exit %d", code)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "plan"); code != 0 {
		t.Fatalf("plan after the repair: exit %d, want 0", code)
	}

	// The daemon, with events only.
	d := startDaemon(t, env)
	st := d.waitStatus(t, "the start run in sync", func(st daemonStatus) bool {
		return st.LastRun != nil && st.LastRun.Result == "in_sync"
	})
	if !st.Events["authentik"].Installed || !st.Events["minio"].Installed {
		t.Fatalf("feeds not installed: %+v", st.Events)
	}
	if m := d.get(t, "/metrics"); !strings.Contains(m, `akminio_events_received_total{source="authentik"}`) || !strings.Contains(m, `akminio_events_received_total{source="minio"}`) {
		t.Fatal("akminio_events_received_total is not exported for both sources")
	}

	// A person edits the scope mapping through authentik's API.
	alice, err := env.AK.AddAPIToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	person := clientWithToken(env, alice)
	ml, _, err := ak.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Name(e2eenv.MappingName).Execute()
	if err != nil || len(ml.Results) != 1 {
		t.Fatalf("scope mapping: %v %v", ml, err)
	}
	want := ml.Results[0].Expression
	_, _, err = person.PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(ctx, ml.Results[0].Pk).
		PatchedScopeMappingRequest(api.PatchedScopeMappingRequest{Expression: api.PtrString("return {\"policy\": \"consoleAdmin\"}")}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	d.waitStatus(t, "a hook:authentik run that repairs the scope mapping", func(st daemonStatus) bool {
		return st.hasRun("hook:authentik", "repaired")
	})
	m, _, err := ak.PropertymappingsAPI.PropertymappingsProviderScopeRetrieve(ctx, ml.Results[0].Pk).Execute()
	if err != nil || m.Expression != want {
		t.Fatalf("scope mapping after the repair: %v, %v", m, err)
	}

	// An admin changes a managed policy with madmin: MinIO's audit webhook calls the hook.
	adm, err := env.MinIO.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.AddCannedPolicy(ctx, e2eenv.CustomPolicy, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}`)); err != nil {
		t.Fatal(err)
	}
	st = d.waitStatus(t, "a hook:minio run that repairs the policy", func(st daemonStatus) bool {
		return st.hasRun("hook:minio", "repaired")
	})
	// Exactly the start run and one run per outside change: neither the schedule nor
	// akminio's own repairs (which authentik and MinIO report too) caused a run.
	var reasons []string
	for _, r := range st.RecentRuns {
		reasons = append(reasons, r.Reason)
	}
	if !slices.Equal(reasons, []string{"hook:minio", "hook:authentik", "start"}) {
		t.Errorf("runs, newest first: %v; want one per outside change after the start run", reasons)
	}
	if st.Events["authentik"].LastDelivered == nil || st.Events["minio"].LastDelivered == nil {
		t.Errorf("last delivered: %+v", st.Events)
	}
	d.stop(t)
	if _, _, code := e2eenvtest.Akminio(t, env, "plan"); code != 0 {
		t.Fatalf("plan after the event runs: exit %d, want 0", code)
	}

	// Install off: the feeds akminio created go, and nothing else.
	if _, _, err := ak.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(api.NotificationTransportRequest{Name: "ops-chat"}).Execute(); err != nil {
		t.Fatal(err)
	}
	if err := env.WriteConfig(eventsConfig(env, false)); err != nil {
		t.Fatal(err)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "apply"); code != 0 {
		t.Fatalf("apply with install off: exit %d", code)
	}
	tl, _, err = ak.EventsAPI.EventsTransportsList(ctx).Execute()
	if err != nil || len(tl.Results) != 1 || tl.Results[0].Name != "ops-chat" {
		t.Fatalf("transports after install off: %+v %v", tl, err)
	}
	exp, err := adm.GetConfig(ctx)
	if err != nil || bytes.Contains(exp, []byte(reconcile.AuditTarget)) {
		t.Fatalf("MinIO config still has %s (%v)", reconcile.AuditTarget, err)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "plan"); code != 0 {
		t.Fatalf("plan after removal: exit %d, want 0", code)
	}
}

// TestEventFeedsReportMode: in report mode the missing feeds are drift that is reported and
// never written.
func TestEventFeedsReportMode(t *testing.T) {
	env := e2eenvtest.Start(t)
	cfg := eventsConfig(env, true)
	if err := env.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "apply"); code != 0 {
		t.Fatal("first apply failed")
	}
	ctx := context.Background()
	ak := aksimtest.Client(env.AK)
	rl, _, err := ak.EventsAPI.EventsRulesList(ctx).Name(reconcile.FeedName).Execute()
	if err != nil || len(rl.Results) != 1 {
		t.Fatal(err)
	}
	if _, err := ak.EventsAPI.EventsRulesDestroy(ctx, rl.Results[0].Pk).Execute(); err != nil {
		t.Fatal(err)
	}
	cfg["mode"] = "report"
	if err := env.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, code := e2eenvtest.Akminio(t, env, "apply"); code != 2 {
		t.Fatalf("apply in report mode: exit %d, want 2 (drift left)", code)
	}
	if rl, _, err = ak.EventsAPI.EventsRulesList(ctx).Name(reconcile.FeedName).Execute(); err != nil || len(rl.Results) != 0 {
		t.Fatalf("report mode wrote the rule: %+v %v", rl, err)
	}
}

func clientWithToken(env *e2eenv.Env, token string) *api.APIClient {
	cfg := api.NewConfiguration()
	cfg.Servers = api.ServerConfigurations{{URL: env.AK.URL() + "/api/v3"}}
	cfg.AddDefaultHeader("Authorization", "Bearer "+token)
	return api.NewAPIClient(cfg)
}

// daemonStatus is the part of /status these tests read.
type daemonStatus struct {
	LastRun *struct {
		Result string `json:"result"`
		Reason string `json:"reason"`
	} `json:"last_run"`
	RecentRuns []struct {
		Reason string `json:"reason"`
		Result string `json:"result"`
	} `json:"recent_runs"`
	Events map[string]struct {
		Installed     bool       `json:"installed"`
		LastDelivered *time.Time `json:"last_delivered"`
	} `json:"events"`
}

func (s daemonStatus) hasRun(reason, result string) bool {
	for _, r := range s.RecentRuns {
		if r.Reason == reason && r.Result == result {
			return true
		}
	}
	return false
}

// daemon is `akminio run` started by a test.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
	logs   *bytes.Buffer
	scan   *e2eenvtest.LeakScan // the environment's: every body get reads and the log
}

func startDaemon(t testing.TB, env *e2eenv.Env) *daemon {
	t.Helper()
	cfg := env.DefaultConfig()
	listen := section(cfg, "http")["listen"].(string)
	cmd := exec.Command(e2eenvtest.Binary(t), "run", "--config", env.ConfigPath)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	d := &daemon{cmd: cmd, url: "http://" + listen, exited: make(chan error, 1), logs: &bytes.Buffer{}, scan: e2eenvtest.Scan(env)}
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.stop(t)
		}
		if scan := e2eenvtest.Scan(env); scan != nil {
			scan.Output("the log of akminio run", d.logs.String())
		}
	})
	return d
}

func (d *daemon) stop(t testing.TB) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("akminio run: %v\n%s", err, d.logs.String())
		}
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		t.Errorf("akminio run did not stop on SIGTERM\n%s", d.logs.String())
	}
}

func (d *daemon) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get(d.url + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if scan := d.scan; scan != nil {
		scan.Output("GET "+path, string(b))
	}
	return string(b)
}

// waitStatus polls /status until cond holds (up to two minutes).
func (d *daemon) waitStatus(t *testing.T, what string, cond func(daemonStatus) bool) daemonStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var st daemonStatus
	for time.Now().Before(deadline) {
		select {
		case err := <-d.exited:
			t.Fatalf("akminio run exited while waiting for %s: %v\n%s", what, err, d.logs.String())
		default:
		}
		st = daemonStatus{}
		if body := d.get(t, "/status"); body != "" && json.Unmarshal([]byte(body), &st) == nil && cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last status %+v\n%s", what, st, d.logs.String())
	return st
}
