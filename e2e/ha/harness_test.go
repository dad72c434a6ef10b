// Package ha tests akminio on every host of a distributed MinIO: several real `akminio run`
// processes, each talking to its own node of a real 4-node cluster, the authentik simulator
// shared, and ha on. What each side was asked to write is counted from the simulator's
// request log and from MinIO's audit webhook (requestHost tells which node, so which
// instance, sent it).
package ha

import (
	"context"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/akminio/akminio/daemon"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/miniotest"
)

// timing is an instance's lease and request timeouts. The lease must exceed the renew
// interval plus the requests' timeout (the longest write step).
type timing struct {
	lease, renew, timeout time.Duration
}

var (
	// writing is for tests that repair and rotate: requests get 8 s, as the simulator
	// compiles expressions with python3 and MinIO validates config_url on every write, which
	// take seconds on 2 busy cores; shorter timeouts make the clients retry writes that went
	// through.
	writing = timing{lease: 12 * time.Second, renew: 2 * time.Second, timeout: 8 * time.Second}
	// failover is for the kill -9 rounds, where nothing is repaired: short leases.
	failover = timing{lease: 4 * time.Second, renew: time.Second, timeout: 2500 * time.Millisecond}
)

const schedule = "@every 5s"

var (
	env        *e2eenv.Env
	akminioBin string // built by TestMain into its own folder
	audit      = &auditLog{}
	violations struct {
		mu  sync.Mutex
		err []error
	}
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	bin := miniotest.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "no MinIO binary at %s: run `make minio` or set %s\n", bin, miniotest.BinaryEnv)
		return 1
	}
	dir, err := os.MkdirTemp("", "akminio-ha-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// A binary of this tree in a folder of this process (not e2eenvtest's shared one, which
	// another checkout's tests may replace while these run).
	akminioBin = filepath.Join(dir, "akminio")
	// With the test hooks (AKMINIO_TEST_CRASH_AFTER): inert unless an instance sets them.
	build := exec.Command("go", "build", "-tags", "akminio_testhooks", "-o", akminioBin, "./cmd/akminio")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/akminio: %v\n%s", err, out)
		return 1
	}
	srv := httptest.NewServer(audit)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err = e2eenv.Setup(ctx, e2eenv.Options{
		Dir: dir, MinIOBin: bin,
		Cluster: &e2eenv.ClusterSize{Nodes: 4, Drives: 2},
		MinIOEnv: []string{
			"MINIO_AUDIT_WEBHOOK_ENABLE_count=on",
			"MINIO_AUDIT_WEBHOOK_ENDPOINT_count=" + srv.URL + "/audit",
		},
		OnViolation: func(err error) {
			violations.mu.Lock()
			defer violations.mu.Unlock()
			violations.err = append(violations.err, err)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Close()
	code := m.Run()
	violations.mu.Lock()
	defer violations.mu.Unlock()
	for _, err := range violations.err {
		fmt.Fprintln(os.Stderr, "authentik simulator contract violation:", err)
		code = 1
	}
	return code
}

// auditLog collects MinIO's audit entries of admin writes.
type auditLog struct {
	mu      sync.Mutex
	entries []auditEntry
}

type auditEntry struct {
	API struct {
		Name       string `json:"name"`
		StatusCode int    `json:"statusCode"`
	} `json:"api"`
	RequestHost string `json:"requestHost"`
	UserAgent   string `json:"userAgent"`
	Time        time.Time
}

// adminWrites are the audited admin calls that change what akminio manages, and restarts.
var adminWrites = map[string]bool{
	"AddCannedPolicy": true, "RemoveCannedPolicy": true, "SetConfigKV": true, "DelConfigKV": true,
	"SetConfig": true, "AddIdentityProviderCfg": true, "UpdateIdentityProviderCfg": true,
	"ServiceV2": true, "Service": true,
}

func (a *auditLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(strings.NewReader(string(body)))
	a.mu.Lock()
	defer a.mu.Unlock()
	for dec.More() {
		var e auditEntry
		if dec.Decode(&e) != nil {
			break
		}
		if adminWrites[e.API.Name] && strings.Contains(e.UserAgent, daemon.OwnUserAgent) {
			e.Time = time.Now()
			a.entries = append(a.entries, e)
		}
	}
}

// since returns akminio's audited admin writes since t, as "Name@host".
func (a *auditLog) since(t time.Time) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		if !e.Time.Before(t) {
			out = append(out, e.API.Name+"@"+e.RequestHost)
		}
	}
	return out
}

// authentikWrites counts the simulator's non-GET API requests, by "METHOD path".
func authentikWrites() map[string]int {
	out := map[string]int{}
	for k, v := range env.AK.Counts() {
		m, p, _ := strings.Cut(k, " ")
		if m != http.MethodGet && m != http.MethodHead && strings.HasPrefix(p, "/api/v3/") {
			out[k] = v
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// instance is one `akminio run` on the host of node Node.
type instance struct {
	ID     string
	Node   int
	dir    string
	cfg    string
	log    string
	listen string
	tm     timing
	base   func(map[string]any) // newInstance's edit

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newInstance writes the config of instance id on node (each instance its own state_dir,
// listener and identity); edit changes it further.
func newInstance(t *testing.T, id string, node int, tm timing, edit func(map[string]any)) *instance {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	in := &instance{ID: id, Node: node, dir: dir, cfg: filepath.Join(dir, "config.yaml"),
		log: filepath.Join(dir, "akminio.log"), listen: freeAddr(t)}
	in.base = func(c map[string]any) {
		if edit != nil {
			edit(c)
		}
	}
	in.write(t, tm, nil)
	t.Cleanup(func() {
		in.kill()
		if t.Failed() {
			t.Logf("--- log of %s (last lines)\n%s", id, tail(in.log, 40))
		}
	})
	return in
}

// rewrite writes the instance's config again with edit applied last (then SIGHUP reloads it).
func (in *instance) rewrite(t *testing.T, edit func(map[string]any)) {
	t.Helper()
	in.write(t, in.tm, edit)
}

func (in *instance) write(t *testing.T, tm timing, edit func(map[string]any)) {
	t.Helper()
	in.tm = tm
	c := env.DefaultConfig()
	c["minio"].(map[string]any)["endpoint"] = env.Cluster.Nodes[in.Node].Endpoint
	c["minio"].(map[string]any)["timeout"] = tm.timeout.String()
	c["authentik"].(map[string]any)["timeout"] = tm.timeout.String()
	c["state_dir"] = filepath.Join(in.dir, "state")
	c["http"] = map[string]any{"listen": in.listen}
	c["schedule"] = map[string]any{"reconcile": schedule, "rotate_secret": "", "jitter": "0s"}
	c["ha"] = map[string]any{"enabled": true, "identity": in.ID,
		"lease_duration": tm.lease.String(), "renew_interval": tm.renew.String()}
	in.base(c)
	if edit != nil {
		edit(c)
	}
	raw, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in.cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the real binary; it does not wait. env is added to its environment.
func (in *instance) start(t *testing.T, env ...string) {
	t.Helper()
	logFile, err := os.OpenFile(in.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(akminioBin, "run", "--config", in.cfg)
	cmd.Env = append(cleanEnv(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	in.mu.Lock()
	in.cmd, in.exited = cmd, exited
	in.mu.Unlock()
}

func (in *instance) signal(sig syscall.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		_ = in.cmd.Process.Signal(sig)
	}
}

// exitedNow reports whether the process has exited (by itself or killed).
func (in *instance) exitedNow() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.exited == nil {
		return false
	}
	select {
	case <-in.exited:
		return true
	default:
		return false
	}
}

// kill is kill -9, and waits for the process to be gone.
func (in *instance) kill() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-exited
}

// stop is SIGTERM, waiting for a clean exit.
func (in *instance) stop(t *testing.T) {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", in.ID)
		_ = cmd.Process.Kill()
		<-exited
	}
}

var statusClient = &http.Client{Timeout: time.Second}

// status is the instance's /status, or an error when it does not answer.
func (in *instance) status() (daemon.Status, error) {
	var st daemon.Status
	resp, err := statusClient.Get("http://" + in.listen + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// get fetches a path of the instance's HTTP API: status code and body.
func (in *instance) get(path string) (int, string, error) {
	resp, err := statusClient.Get("http://" + in.listen + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric returns the value of an unlabelled series on /metrics ("" when absent).
func (in *instance) metric(name string) string {
	_, body, err := in.get("/metrics")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// logged reports whether the instance's log has a line with msg.
func (in *instance) logged(msg string) bool {
	b, _ := os.ReadFile(in.log)
	return strings.Contains(string(b), `"msg":"`+msg+`"`)
}

// appliedLines counts the "applied" log lines of the instance (one per change written).
func (in *instance) appliedLines() int {
	b, _ := os.ReadFile(in.log)
	return strings.Count(string(b), `"msg":"applied"`)
}

// waitFor polls cond every 50 ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaders returns the instances whose /status says they lead, and whether every answering
// instance agrees on the holder.
func leaders(ins []*instance) (lead []*instance, agree bool) {
	holder := ""
	agree = true
	for _, in := range ins {
		st, err := in.status()
		if err != nil {
			continue
		}
		if st.HA.Role == "leader" {
			lead = append(lead, in)
		}
		if holder == "" {
			holder = st.HA.Holder
		}
		agree = agree && st.HA.Holder == holder
	}
	return lead, agree
}

// waitOneLeader waits until exactly one of ins leads and all agree, and returns it; two
// leaders at any moment fail the test.
func waitOneLeader(t *testing.T, ins []*instance, timeout time.Duration) *instance {
	t.Helper()
	var got *instance
	waitFor(t, timeout, "exactly one leader", func() bool {
		lead, agree := leaders(ins)
		if len(lead) > 1 {
			t.Fatalf("%d instances lead at once", len(lead))
		}
		if len(lead) == 1 && agree {
			got = lead[0]
			return true
		}
		return false
	})
	return got
}

// waitInSync waits until every instance's last run saw no drift (each observes on its
// schedule) after since.
func waitInSync(t *testing.T, ins []*instance, since time.Time, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "every instance in sync", func() bool {
		for _, in := range ins {
			st, err := in.status()
			if err != nil || st.LastRun == nil || st.LastRun.Start.Before(since) || st.LastRun.Error != "" || st.Drift.Drift != 0 {
				return false
			}
		}
		return true
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func cleanEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			out = append(out, kv)
		}
	}
	return out
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
