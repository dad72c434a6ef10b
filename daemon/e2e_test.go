package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/miniotest"
)

// TestEndToEnd runs the real `akminio run` binary against the real MinIO and the authentik
// simulator (issue 5's acceptance): a drift made by the test is repaired by the next
// scheduled run, seen in /status, /metrics and the webhook; concurrent triggers never make
// concurrent runs; an authentik fault turns /readyz 503 and it recovers; systemd datagrams
// arrive; a bad config on SIGHUP is rejected; SIGTERM exits 0.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; -short skips it")
	}
	env := newE2EEnv(t)
	mc, sim := env.mc, env.sim
	hook := newReceiver(t)
	t.Cleanup(func() { env.scan.Output("alert payloads", strings.Join(hook.got(), "\n")) })
	good := env.config("@every 2s", fmt.Sprintf("alerts: {webhook_url: %q}\n", hook.srv.URL))
	cfgPath := env.cfgPath
	writeFile(t, cfgPath, good)
	notify := listenNotify(t)
	cmd, exited, h := env.run(t, "NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=1000000")

	notify.want(t, "READY=1")
	waitStatus(t, h, "the first runs to reach in sync", func(st Status) bool {
		return st.LastRun != nil && st.LastRun.Result == ResultInSync && st.Drift.Drift == 0
	})
	notify.want(t, "STATUS=")
	notify.want(t, "WATCHDOG=1")

	// Drift: remove the declared policy behind akminio's back.
	hook.mu.Lock()
	hook.bodies = nil
	hook.mu.Unlock()
	if err := mc.Admin(t).RemoveCannedPolicy(context.Background(), "e2e-readers"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drift_detected then drift_repaired", func() bool {
		got := strings.Join(hook.got(), "\n")
		i, j := strings.Index(got, EventDriftDetected), strings.Index(got, EventDriftRepaired)
		return i >= 0 && j > i && strings.Contains(got, "e2e-readers")
	})
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `akminio_changes_applied_total{action="create",kind="policy",system="minio"} 2`) {
		t.Errorf("/metrics does not count the policy created twice:\n%s", grepLines(metrics, "akminio_changes_applied_total"))
	}
	if !strings.Contains(metrics, `akminio_reconcile_runs_total{result="repaired"}`) || strings.Contains(metrics, `akminio_reconcile_runs_total{result="repaired"} 0`) {
		t.Errorf("/metrics shows no repaired run:\n%s", grepLines(metrics, "akminio_reconcile_runs_total"))
	}

	// Two triggers at once: coalesced or queued, never concurrent (a concurrent run would
	// fail on the state directory's lock and count as an error).
	errorsBefore := metricValue(t, h, `akminio_reconcile_runs_total{result="error"}`)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.do(http.MethodPost, "/reconcile?wait=true", "e2e-hook-token-0123456789abcdef0123", "") })
	}
	wg.Wait()
	if after := metricValue(t, h, `akminio_reconcile_runs_total{result="error"}`); after != errorsBefore {
		t.Errorf("concurrent triggers made failed runs: %s -> %s", errorsBefore, after)
	}

	// An authentik fault: /readyz 503 with a reason, then recovery.
	sim.Fault("/api/v3/", aksim.Fault{Status: http.StatusInternalServerError})
	eventually(t, "/readyz 503", func() bool {
		code, body := h.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "authentik")
	})
	sim.ClearFaults()
	eventually(t, "/readyz 200", func() bool { code, _ := h.get("/readyz"); return code == http.StatusOK })

	// SIGHUP with a bad config: rejected, the daemon goes on.
	writeFile(t, cfgPath, strings.Replace(good, "@every 2s", "every two seconds", 1))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	notify.want(t, "RELOADING=1")
	notify.want(t, "READY=1")
	if v := metricValue(t, h, "akminio_config_last_reload_successful"); v != "0" {
		t.Errorf("akminio_config_last_reload_successful = %s after a bad reload", v)
	}
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Error("/healthz not 200 after a rejected reload")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("akminio run after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("akminio run did not exit within 40s of SIGTERM")
	}
	notify.want(t, "STOPPING=1")
}

// e2eEnv is a real MinIO, the authentik simulator with the group the config binds, and a
// folder for the config and the state of an `akminio run` under test.
type e2eEnv struct {
	mc      *miniotest.Server
	sim     *aksim.Server
	dir     string
	cfgPath string
	listen  string
	// scan is the leak scan of everything the daemon produced: its log, the HTTP bodies
	// the tests read, alert payloads and state files.
	scan *e2eenvtest.LeakScan
}

func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	mc := miniotest.Start(t)
	sim := aksim.New(aksim.Options{Token: "e2e-authentik-token", Logf: t.Logf})
	if err := sim.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.AddGroup("Minio admins"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Created after the simulator's Close is registered, so the scan runs while it answers.
	scan := e2eenvtest.NewLeakScan(t)
	for what, v := range map[string]string{"authentik API token": "e2e-authentik-token", "hook token": "e2e-hook-token",
		"MinIO root password": mc.SecretKey, "MinIO root user": mc.AccessKey} {
		scan.Secret(what, v)
	}
	scan.SecretsAtEnd(func() map[string]string {
		out := map[string]string{}
		for _, v := range sim.ProviderSecrets() {
			out[v] = "provider client secret"
		}
		return out
	})
	scan.Dir(filepath.Join(dir, "state"), e2eenvtest.RotationIntent)
	return &e2eEnv{mc: mc, sim: sim, dir: dir, cfgPath: filepath.Join(dir, "config.yaml"), listen: freeAddr(t), scan: scan}
}

// config is the YAML of a config for the environment, reconciling on schedule; extra is
// appended (top-level keys).
func (e *e2eEnv) config(schedule, extra string) string {
	return fmt.Sprintf(`authentik:
  url: %s
  token: e2e-authentik-token
  application: {slug: minio}
  provider: {name: MinIO, redirect_uris: ["%s/oauth_callback"]}
minio:
  endpoint: %s
  access_key: %s
  secret_key: %s
policies:
  e2e-readers:
    document:
      Version: "2012-10-17"
      Statement: [{Effect: Allow, Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::e2e/*"]}]
bindings:
  - group: Minio admins
    policies: [consoleAdmin, e2e-readers]
state_dir: %s
schedule: {reconcile: "%s", jitter: 0s}
http: {listen: "%s", hook_token: e2e-hook-token-0123456789abcdef0123, debounce: 100ms}
`, e.sim.URL(), e.mc.Endpoint, e.mc.Endpoint, e.mc.AccessKey, e.mc.SecretKey, filepath.Join(e.dir, "state"),
		schedule, e.listen) + extra
}

// run starts the real binary on cfgPath with env added to the environment and waits until
// it listens; its log is shown when the test fails. exited receives cmd.Wait's result.
func (e *e2eEnv) run(t *testing.T, env ...string) (cmd *exec.Cmd, exited chan error, h *harness) {
	t.Helper()
	cmd = exec.Command(e2eenvtest.Binary(t), "run", "--config", e.cfgPath)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.Create(filepath.Join(e.dir, "akminio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Not waiting on exited: a test may have taken its value already (SIGTERM then exit).
		_ = cmd.Process.Kill()
		b, _ := os.ReadFile(logFile.Name())
		e.scan.Output("the log of akminio run", string(b))
		if t.Failed() {
			t.Logf("akminio log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", e.listen)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("akminio run exited before listening on %s: %v", e.listen, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("akminio run does not listen on %s after 30s", e.listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, exited, &harness{t: t, url: "http://" + e.listen, scan: e.scan}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, h *harness, what string, cond func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := h.get("/status")
		var st Status
		if code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last /status: %d %s", what, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricValue returns the value of one exposition line that starts with series.
func metricValue(t *testing.T, h *harness, series string) string {
	t.Helper()
	_, body := h.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return ""
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// notifySocket collects sd_notify datagrams sent to a unixgram socket of the test.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 10000)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// want waits for a datagram that starts with prefix (earlier others are dropped).
func (n *notifySocket) want(t *testing.T, prefix string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-n.msgs:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s datagram from akminio", prefix)
		}
	}
}

// TestMinIOAuditWebhookTriggersRepair wires the real MinIO's audit_webhook target to a
// running `akminio run`, as an operator would (dynamic config, no restart), with the
// schedule an hour away so that only the hook can cause a run: a policy removed with
// madmin is repaired by the debounced run the audit entry triggers, and akminio's own
// write that repairs it (marked by its User-Agent) triggers no further run.
func TestMinIOAuditWebhookTriggersRepair(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; -short skips it")
	}
	env := newE2EEnv(t)
	writeFile(t, env.cfgPath, env.config("@every 1h", ""))
	_, _, h := env.run(t)
	waitStatus(t, h, "the start run to set everything up", func(st Status) bool {
		return st.LastRun != nil && st.LastRun.Result == ResultRepaired && st.Drift.Drift == 0
	})
	totalRuns := func() int {
		n := 0
		for _, r := range runResults {
			var v int
			fmt.Sscan(metricValue(t, h, `akminio_reconcile_runs_total{result="`+r+`"}`), &v)
			n += v
		}
		return n
	}
	policyCreates := `akminio_changes_applied_total{action="create",kind="policy",system="minio"}`
	if got := metricValue(t, h, policyCreates); got != "1" {
		t.Fatalf("the start run created the policy %s times, want 1", got)
	}

	adm := env.mc.Admin(t)
	ctx := context.Background()
	// The operator's SetConfigKV is itself an audited identity/config call: it triggers a run.
	kv := fmt.Sprintf("audit_webhook:akminio enable=on endpoint=http://%s/hooks/minio auth_token=e2e-hook-token-0123456789abcdef0123", env.listen)
	if _, err := adm.SetConfigKV(ctx, kv); err != nil {
		t.Fatalf("SetConfigKV %s: %v", "audit_webhook:akminio", err)
	}
	eventually(t, "the run the audited SetConfigKV triggers", func() bool { return totalRuns() >= 2 })

	if err := adm.RemoveCannedPolicy(ctx, "e2e-readers"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the hook-triggered run to recreate the policy", func() bool {
		return metricValue(t, h, policyCreates) == "2"
	})
	waitStatus(t, h, "in sync after the repair", func(st Status) bool {
		return st.LastRun != nil && st.LastRun.Result == ResultRepaired && st.Drift.Drift == 0
	})
	if _, err := adm.InfoCannedPolicyV2(ctx, "e2e-readers"); err != nil {
		t.Errorf("the policy is not back in MinIO: %v", err)
	}

	// akminio's own AddCannedPolicy is audited too; it must not start another run.
	after := totalRuns()
	time.Sleep(3 * time.Second) // MinIO delivers audit entries within a second; debounce is 100ms
	if n := totalRuns(); n != after {
		t.Errorf("akminio's own write triggered %d more run(s) through the audit webhook", n-after)
	}
}
