package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/akminio/akminio/config"
)

// repoFile is a path relative to the repository root (the daemon package's parent).
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return p
}

// unitWithBinary copies systemd/akminio.service into a temp folder with ExecStart's binary
// replaced by an executable that exists (the test binary), since verify checks it.
func unitWithBinary(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoFile(t, "systemd/akminio.service"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ExecStart=/usr/bin/akminio run --config /etc/akminio/config.yaml\n") {
		t.Fatal("akminio.service: ExecStart is not /usr/bin/akminio run --config /etc/akminio/config.yaml")
	}
	unit := strings.Replace(string(data), "ExecStart=/usr/bin/akminio", "ExecStart="+exe, 1)
	p := filepath.Join(t.TempDir(), "akminio.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit.
func TestSystemdUnitVerifies(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	out, err := exec.Command(tool, "verify", unitWithBinary(t)).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(repoFile(t, "systemd/akminio.service"))
	for _, want := range []string{"Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
		"RestartPreventExitStatus=78", "StateDirectory=akminio", "User=akminio", "ExecReload=/bin/kill -HUP $MAINPID",
		"LoadCredential=authentik-token:", "LoadCredential=minio-access-key:", "LoadCredential=minio-secret-key:", "LoadCredential=hook-token:",
		"LimitCORE=0"} { // no core file can hold a secret
		if !strings.Contains(string(data), want) {
			t.Errorf("akminio.service lacks %q", want)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdUnitExposure asserts systemd-analyze security rates the unit 1.1 or lower
// (what it rates now: only the network access akminio needs is left open).
func TestSystemdUnitExposure(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	out, err := exec.Command(tool, "security", "--offline=true", "--no-pager", unitWithBinary(t)).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v: no overall exposure in\n%s", err, out)
	}
	exposure, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: overall exposure %.1f", exposure)
	os.Stdout.WriteString("akminio.service exposure (systemd-analyze security): " + string(m[1]) + "\n")
	if exposure > 1.1 {
		t.Errorf("exposure %.1f > 1.1\n%s", exposure, out)
	}
}

// TestPrometheusRules checks deploy/prometheus/akminio-alerts.yml with promtool and that it
// covers the conditions issue 5 names.
func TestPrometheusRules(t *testing.T) {
	rules := repoFile(t, "deploy/prometheus/akminio-alerts.yml")
	tool := requireTool(t, "promtool", "prometheus")
	if out, err := exec.Command(tool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(rules)
	for _, metric := range []string{"akminio_drift_items", `akminio_reconcile_runs_total{result=~"error|transient"}`,
		"akminio_last_success_timestamp_seconds", "akminio_minio_restart_pending", "akminio_backend_up",
		"akminio_client_secret_rotated_timestamp_seconds", "akminio_leader"} {
		if !strings.Contains(string(data), metric) {
			t.Errorf("no alert rule uses %s", metric)
		}
	}
}

// TestDockerfile parses the Dockerfile with buildkit's parser and checks the final stage
// runs as a non-root user with a HEALTHCHECK, nothing is ADDed from a URL, and the build
// stage builds a static binary (CGO_ENABLED=0, -trimpath).
func TestDockerfile(t *testing.T) {
	f, err := os.Open(repoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	type stage struct {
		from, user, healthcheck, volume string
		cgoOff, builds, trimpath        bool
	}
	var stages []*stage
	for _, n := range res.AST.Children {
		args := nodeArgs(n)
		kw := strings.ToLower(n.Value)
		if kw == "from" {
			stages = append(stages, &stage{from: args[0]})
			continue
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		st := stages[len(stages)-1]
		switch kw {
		case "user":
			st.user = args[0]
		case "healthcheck":
			st.healthcheck = n.Original
		case "volume":
			st.volume = strings.Join(args, " ")
		case "add":
			for _, a := range args {
				if strings.Contains(a, "://") || strings.HasPrefix(a, "git@") {
					t.Errorf("line %d: ADD from a URL: %s", n.StartLine, n.Original)
				}
			}
		case "env", "run":
			st.cgoOff = st.cgoOff || strings.Contains(n.Original, "CGO_ENABLED=0")
			st.builds = st.builds || strings.Contains(n.Original, "go build")
			st.trimpath = st.trimpath || strings.Contains(n.Original, "-trimpath")
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final.from)
	}
	if u := strings.Split(final.user, ":")[0]; u == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER = %q, want a non-root user", final.user)
	}
	if !strings.Contains(final.healthcheck, `"healthcheck"`) {
		t.Errorf("final stage HEALTHCHECK = %q, want one through the binary's healthcheck command", final.healthcheck)
	}
	if !strings.Contains(final.volume, "/var/lib/akminio") {
		t.Errorf("final stage VOLUME = %q, want /var/lib/akminio", final.volume)
	}
	builds := 0
	for _, st := range stages {
		if !st.builds {
			continue
		}
		builds++
		if !st.cgoOff || !st.trimpath {
			t.Errorf("stage FROM %s runs go build with CGO_ENABLED=0 %v, -trimpath %v; want a static, trimmed build", st.from, st.cgoOff, st.trimpath)
		}
	}
	if builds == 0 {
		t.Error("no stage runs go build")
	}
}

// nodeArgs returns an instruction's arguments (the linked list after the keyword).
func nodeArgs(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// TestKubernetesExample checks the sidecar examples (one MinIO, and a distributed MinIO as a
// StatefulSet with ha on): each config is accepted by config.Load, and the akminio container
// is locked down and probed on /healthz and /readyz.
func TestKubernetesExample(t *testing.T) {
	checkKubernetesExample(t, "deploy/kubernetes/minio-akminio.yaml", false)
	checkKubernetesExample(t, "deploy/kubernetes/minio-cluster-akminio.yaml", true)
}

func checkKubernetesExample(t *testing.T, file string, ha bool) {
	t.Helper()
	f, err := os.Open(repoFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var cfgText string
	var container map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		switch doc["kind"] {
		case "ConfigMap":
			cfgText, _ = doc["data"].(map[string]any)["config.yaml"].(string)
		case "Deployment", "StatefulSet":
			spec := dig(doc, "spec", "template", "spec")
			for _, c := range spec["containers"].([]any) {
				if c := c.(map[string]any); c["name"] == "akminio" {
					container = c
				}
			}
		}
	}
	if cfgText == "" || container == nil {
		t.Fatal("no akminio ConfigMap or container in the example")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, nil)
	if err != nil {
		t.Errorf("%s: the example's config.yaml is rejected:\n%v", file, err)
	} else if cfg.HA.Enabled != ha {
		t.Errorf("%s: ha.enabled is %v, want %v", file, cfg.HA.Enabled, ha)
	}
	sc := dig(container, "securityContext")
	if sc["readOnlyRootFilesystem"] != true || sc["runAsNonRoot"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("akminio container securityContext: %v", sc)
	}
	if p := dig(container, "livenessProbe", "httpGet"); p["path"] != "/healthz" {
		t.Errorf("liveness probe: %v", p)
	}
	if p := dig(container, "readinessProbe", "httpGet"); p["path"] != "/readyz" {
		t.Errorf("readiness probe: %v", p)
	}
}

// dig walks nested YAML mappings; a missing key gives an empty map.
func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

// TestSystemdHADropIn: the ha drop-in's Environment= lines are keys akminio knows, and turn
// ha on for the config of every host.
func TestSystemdHADropIn(t *testing.T) {
	data, err := os.ReadFile(repoFile(t, "systemd/akminio.service.d/ha.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, line := range strings.Split(string(data), "\n") {
		if kv, ok := strings.CutPrefix(line, "Environment="); ok {
			environ = append(environ, kv)
		}
	}
	cfg, _, err := config.Load(repoFile(t, "testdata/example-config.yaml"), environ)
	if err != nil {
		t.Fatalf("the example config with the drop-in's environment %v: %v", environ, err)
	}
	if !cfg.HA.Enabled || cfg.HA.LeaseDuration <= cfg.HA.RenewInterval {
		t.Errorf("ha with the drop-in: %+v", cfg.HA)
	}
}
