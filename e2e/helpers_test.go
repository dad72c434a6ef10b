package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/pkg/v3/policy"
	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/render"
)

// oddPolicy is a declared policy written the way people write them by hand: keys out of
// order, a single Statement object, a single Action as a string. MinIO stores it in its
// own form; plan must still see no drift.
const oddPolicy = `{
  "Statement": {"Resource": "arn:aws:s3:::shared/*", "Action": "s3:GetObject", "Effect": "Allow"},
     "Version": "2012-10-17"
}`

// suite is an environment brought in sync by a first apply, shared by the subtests of
// one test; each subtest leaves it in sync again.
type suite struct {
	env *e2eenv.Env
	ak  *api.APIClient
	adm *madmin.AdminClient
	cfg map[string]any // the config last written
	// seen is everything the binary printed (stdout and stderr); Akminio also records it in
	// the environment's leak scan.
	seen strings.Builder
}

// run runs the akminio binary against the environment and records its output.
func (s *suite) run(t testing.TB, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	stdout, stderr, exit = e2eenvtest.Akminio(t, s.env, args...)
	s.seen.WriteString(stdout)
	s.seen.WriteString(stderr)
	return stdout, stderr, exit
}

// newSuite starts an environment whose config also declares oddPolicy (from a file) and
// runs the first apply, which must create everything and exit 0.
func newSuite(t *testing.T) *suite {
	t.Helper()
	env := e2eenvtest.Start(t)
	adm, err := env.MinIO.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{env: env, ak: aksimtest.Client(env.AK), adm: adm}
	file := filepath.Join(env.Dir, "odd-policy.json")
	if err := os.WriteFile(file, []byte(oddPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := env.DefaultConfig()
	cfg["policies"].(map[string]any)["odd-format"] = map[string]any{"file": file}
	s.write(t, cfg)
	if _, _, code := s.run(t, "apply"); code != 0 {
		t.Fatalf("first apply: exit %d, want 0", code)
	}
	return s
}

// write writes cfg as the config and remembers it.
func (s *suite) write(t testing.TB, cfg map[string]any) {
	t.Helper()
	if err := s.env.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
}

// withConfig writes the config changed by edit for the rest of the test, and the
// previous one back when it ends.
func (s *suite) withConfig(t testing.TB, edit func(cfg map[string]any)) {
	t.Helper()
	prev := s.cfg
	next := deepCopy(prev)
	edit(next)
	s.write(t, next)
	t.Cleanup(func() { s.write(t, prev) })
}

// section returns cfg[key] as a map, for edits.
func section(cfg map[string]any, key string) map[string]any { return cfg[key].(map[string]any) }

// deepCopy copies a YAML-able map through JSON.
func deepCopy(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// jsonPlan is `akminio plan --output json`.
type jsonPlan struct {
	Changes        []reconcile.Change `json:"changes"`
	Drift          int                `json:"drift"`
	RestartPending bool               `json:"restart_pending"`
	Unmanaged      []string           `json:"unmanaged"`
}

// planJSON runs `plan --output json` and decodes its output.
func (s *suite) planJSON(t testing.TB) (jsonPlan, int) {
	t.Helper()
	out, _, code := s.run(t, "plan", "--output", "json")
	var p jsonPlan
	if code == 0 || code == 2 {
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("plan --output json: %v\n%s", err, out)
		}
	}
	return p, code
}

// requireInSync asserts that plan exits 0 and prints "no drift".
func (s *suite) requireInSync(t testing.TB) {
	t.Helper()
	out, _, code := s.run(t, "plan")
	if code != 0 || !strings.Contains(out, render.NoDrift) {
		t.Fatalf("plan: exit %d, want 0 and %q:\n%s", code, render.NoDrift, out)
	}
}

// requireApply asserts that apply exits with want.
func (s *suite) requireApply(t testing.TB, want int) string {
	t.Helper()
	out, _, code := s.run(t, "apply")
	if code != want {
		t.Fatalf("apply: exit %d, want %d:\n%s", code, want, out)
	}
	return out
}

// findChange returns the change of kind and name in p, if any.
func findChange(p jsonPlan, kind reconcile.Kind, name string) (reconcile.Change, bool) {
	for _, c := range p.Changes {
		if c.Kind == kind && c.Name == name {
			return c, true
		}
	}
	return reconcile.Change{}, false
}

// writes counts the simulator's requests that change something.
func writes(env *e2eenv.Env) map[string]int {
	out := map[string]int{}
	for k, v := range env.AK.Counts() {
		m, _, _ := strings.Cut(k, " ")
		if m != "GET" && m != "HEAD" && m != "OPTIONS" {
			out[k] = v
		}
	}
	return out
}

// minioSnapshot is what the MinIO side looks like to an operator: every policy document
// and the identity_openid target's key values.
type minioSnapshot struct {
	Policies map[string]string
	OpenID   string
}

func (s *suite) snapshotMinIO(t testing.TB) minioSnapshot {
	t.Helper()
	ctx := context.Background()
	list, err := s.adm.ListCannedPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := minioSnapshot{Policies: map[string]string{}}
	for name, doc := range list {
		snap.Policies[name] = string(doc)
	}
	raw, err := s.adm.GetConfigKV(ctx, "identity_openid")
	if err != nil {
		t.Fatal(err)
	}
	snap.OpenID = string(raw)
	return snap
}

func (a minioSnapshot) equal(b minioSnapshot) bool {
	return a.OpenID == b.OpenID && maps.EqualFunc(a.Policies, b.Policies, samePolicy)
}

// samePolicy compares two documents as MinIO does (its own policy package): MinIO lists
// the actions of a document in no fixed order.
func samePolicy(a, b string) bool {
	pa, errA := policy.ParseConfig(strings.NewReader(a))
	pb, errB := policy.ParseConfig(strings.NewReader(b))
	if errA != nil || errB != nil {
		return a == b
	}
	return pa.Equals(*pb)
}

// diff describes how b differs from a, for failure messages.
func (a minioSnapshot) diff(b minioSnapshot) string {
	var out []string
	if a.OpenID != b.OpenID {
		out = append(out, fmt.Sprintf("identity_openid %q -> %q", a.OpenID, b.OpenID))
	}
	for _, name := range slices.Sorted(maps.Keys(a.Policies)) {
		if bv, ok := b.Policies[name]; !ok {
			out = append(out, fmt.Sprintf("policy %q deleted", name))
		} else if !samePolicy(bv, a.Policies[name]) {
			out = append(out, fmt.Sprintf("policy %q: %s -> %s", name, a.Policies[name], bv))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.Policies)) {
		if _, ok := a.Policies[name]; !ok {
			out = append(out, fmt.Sprintf("policy %q created", name))
		}
	}
	return strings.Join(out, "; ")
}

func (a minioSnapshot) names() []string { return slices.Sorted(maps.Keys(a.Policies)) }

// openIDKey returns one key's value of the identity_openid target as MinIO reads it back
// (GetConfigKV; client_secret is never there).
func (s *suite) openIDKey(t testing.TB, key string) string {
	t.Helper()
	raw, err := s.adm.GetConfigKV(context.Background(), "identity_openid")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.Fields(string(raw)) {
		if k, v, ok := strings.Cut(field, "="); ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// setOpenID changes identity_openid keys in MinIO as an operator would with `mc admin
// config set`, and restarts MinIO so that the change reads back.
func (s *suite) setOpenID(t testing.TB, kvs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.adm.SetConfigKV(ctx, "identity_openid "+kvs); err != nil {
		t.Fatalf("SetConfigKV identity_openid %s: %v", kvs, err)
	}
	if err := s.env.MinIO.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}

// wantLogins asserts what each demo user may do after logging in through STS.
func wantLogins(t testing.TB, env *e2eenv.Env) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		user        string
		read, write bool
		refused     bool
	}{
		{user: "alice", read: true, write: true},
		{user: "bob", read: true},
		{user: "carol", refused: true},
		{user: "dave", read: true},
	} {
		a, err := env.Login(ctx, tc.user)
		switch {
		case tc.refused && err == nil:
			t.Errorf("%s: logged in with %+v; want an STS refusal", tc.user, a)
		case tc.refused:
			t.Logf("%s refused as expected: %v", tc.user, err)
		case err != nil:
			t.Errorf("%s: %v", tc.user, err)
		case a.CanRead != tc.read || a.CanWrite != tc.write:
			t.Errorf("%s: read %v write %v; want read %v write %v", tc.user, a.CanRead, a.CanWrite, tc.read, tc.write)
		}
	}
}
