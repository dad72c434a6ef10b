package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/internal/miniotest"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/access"
)

// accessPlan is `plan --access --output json`.
type accessPlan struct {
	Changes []reconcile.Change `json:"changes"`
	Drift   int                `json:"drift"`
	Access  access.Table       `json:"access"`
}

// login is what one demo user gets from MinIO: read/write access, or a refusal.
type login struct {
	Access  miniotest.Access
	Refused bool
}

func logins(t *testing.T, env *e2eenv.Env) map[string]login {
	t.Helper()
	out := map[string]login{}
	for _, u := range e2eenv.Users {
		a, err := env.Login(context.Background(), u)
		out[u] = login{Access: a, Refused: err != nil}
		if err != nil {
			t.Logf("%s: refused: %v", u, err)
		}
	}
	return out
}

// importSuite is an environment set up by hand as authentik's MinIO guide describes, then
// imported: env.ConfigPath holds the config import wrote.
func importGuide(t *testing.T, expression string) (*suite, map[string]login) {
	t.Helper()
	env := e2eenvtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.SetupGuide(ctx, expression); err != nil {
		t.Fatal(err)
	}
	adm, err := env.MinIO.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{env: env, ak: aksimtest.Client(env.AK), adm: adm}
	before := logins(t, env)
	// The minimal config: only how to reach both sides.
	s.write(t, env.ConnectionConfig())
	out, stderr, code := s.run(t, "import", "--output-dir", env.Dir, "--force")
	if code != 0 {
		t.Fatalf("import: exit %d, want 0\n%s%s", code, out, stderr)
	}
	if _, _, code := s.run(t, "check-config"); code != 0 {
		t.Fatalf("check-config of the imported config: exit %d", code)
	}
	raw, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{env.AK.Token(), env.MinIO.SecretKey} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("the imported config holds a secret")
		}
	}
	t.Logf("the imported config:\n%s", raw)
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	return s, before
}

// requireOnlyRendering asserts that plan shows exactly one change: the scope mapping's
// expression (and akminio's description on it), nothing else.
func requireOnlyRendering(t *testing.T, s *suite) {
	t.Helper()
	p, code := s.planJSON(t)
	if code != 2 || len(p.Changes) != 1 {
		t.Fatalf("plan: exit %d, %d changes %+v; want exit 2 and only the scope mapping's rendering", code, len(p.Changes), p.Changes)
	}
	c := p.Changes[0]
	if c.Kind != reconcile.KindScopeMapping || c.Action != reconcile.ActionUpdate || !slices.Contains(c.Fields, "expression") ||
		slices.ContainsFunc(c.Fields, func(f string) bool { return f != "expression" && f != "description" }) {
		t.Fatalf("plan: %+v; want an update of the scope mapping's expression (and description) only", c)
	}
}

func (s *suite) accessJSON(t *testing.T, args ...string) (accessPlan, int) {
	t.Helper()
	out, _, code := s.run(t, append([]string{"plan", "--access", "--output", "json"}, args...)...)
	var p accessPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan --access --output json: %v\n%s", err, out)
	}
	return p, code
}

func requireNoAccessChange(t *testing.T, p accessPlan, users []string) {
	t.Helper()
	var got []string
	for _, r := range p.Access.Users {
		got = append(got, r.Username)
		if len(r.Gains) > 0 || len(r.Losses) > 0 {
			t.Errorf("%s: now %v, after %v: gains %v, loses %v; want no change", r.Username, r.Now, r.After, r.Gains, r.Losses)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, users) {
		t.Errorf("access lists %v, want %v", got, users)
	}
}

// TestImportGuide is the guide's groups expression from start to end: import, plan shows
// only the rendering, plan --access shows nobody gaining or losing, apply, and the four
// demo users log in with exactly the access they had before.
func TestImportGuide(t *testing.T) {
	s, before := importGuide(t, e2eenv.GuideGroupsExpression)
	if b := s.cfg["bindings"].([]any); len(b) != 2 || s.cfg["match"] != "first" {
		t.Fatalf("imported bindings %v, match %v", b, s.cfg["match"])
	}
	requireOnlyRendering(t, s)
	p, code := s.accessJSON(t)
	if code != 2 {
		t.Errorf("plan --access: exit %d, want 2 (the exit status does not change)", code)
	}
	requireNoAccessChange(t, p, []string{"alice", "bob"})
	p, _ = s.accessJSON(t, "--access-users", "all")
	requireNoAccessChange(t, p, []string{"alice", "bob", "dave"}) // carol is in no group
	s.requireApply(t, 0)
	s.requireInSync(t)
	if after := logins(t, s.env); !maps.Equal(before, after) {
		t.Errorf("logins before import %v, after apply %v", before, after)
	}
	if before["carol"].Refused != true || !before["alice"].Access.CanWrite || before["bob"].Access.CanWrite || !before["dave"].Access.CanRead {
		t.Errorf("the guide's setup does not give what it says: %v", before)
	}

	t.Run("dropping a binding is a loss, and apply --refuse-access-loss changes nothing", func(t *testing.T) {
		s.withConfig(t, func(cfg map[string]any) {
			cfg["bindings"] = cfg["bindings"].([]any)[:1] // only Minio admins
		})
		p, code := s.accessJSON(t, "--access-users", "all")
		if code != 2 {
			t.Errorf("plan --access: exit %d, want 2", code)
		}
		losing := map[string][]string{}
		for _, r := range p.Access.Users {
			if len(r.Losses) > 0 {
				losing[r.Username] = r.Losses
			}
		}
		want := map[string][]string{"bob": {"readonly", e2eenv.CustomPolicy}, "dave": {"readonly", e2eenv.CustomPolicy}}
		if !maps.EqualFunc(losing, want, slices.Equal) {
			t.Errorf("losing %v, want %v", losing, want)
		}
		text, _, _ := s.run(t, "plan", "--access")
		if !strings.Contains(text, "LOSES readonly, my-custom-policy") {
			t.Errorf("plan --access text does not show the loss:\n%s", text)
		}

		snap := s.snapshotMinIO(t)
		mapping := must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeRetrieve(context.Background(), s.mappingPK(t, e2eenv.MappingName)).Execute())(t)
		s.env.AK.ResetCounts()
		_, stderr, code := s.run(t, "apply", "--refuse-access-loss", "--access-users", "all")
		if code != 1 || !strings.Contains(stderr, "bob would lose readonly, my-custom-policy") {
			t.Errorf("apply --refuse-access-loss: exit %d, want 1 naming bob's loss:\n%s", code, stderr)
		}
		if w := writes(s.env); len(w) != 0 {
			t.Errorf("authentik was written to: %v", w)
		}
		if after := s.snapshotMinIO(t); !snap.equal(after) {
			t.Errorf("MinIO changed: %s", snap.diff(after))
		}
		now := must(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeRetrieve(context.Background(), s.mappingPK(t, e2eenv.MappingName)).Execute())(t)
		if now.Expression != mapping.Expression {
			t.Errorf("the scope mapping changed")
		}
		if after := logins(t, s.env); !maps.Equal(before, after) {
			t.Errorf("logins changed: before %v, after %v", before, after)
		}
	})
}

// TestImportGuidePlain is the guide's first expression: every user gets readwrite.
func TestImportGuidePlain(t *testing.T) {
	s, before := importGuide(t, e2eenv.GuidePlainExpression)
	b := s.cfg["bindings"].([]any)
	if len(b) != 1 || b[0].(map[string]any)["everyone"] != true {
		t.Fatalf("imported bindings %v, want one everyone binding", b)
	}
	requireOnlyRendering(t, s)
	p, _ := s.accessJSON(t)
	requireNoAccessChange(t, p, []string{"alice", "bob"})
	s.requireApply(t, 0)
	s.requireInSync(t)
	if after := logins(t, s.env); !maps.Equal(before, after) {
		t.Errorf("logins before import %v, after apply %v", before, after)
	}
	for u, l := range before {
		if l.Refused || !l.Access.CanWrite {
			t.Errorf("%s: %+v; the guide's plain expression gives everyone readwrite", u, l)
		}
	}
}

// TestImportUnreadable: an expression import cannot read is kept verbatim in the written
// config, the lines are named, the config is in report mode, and import exits 2.
func TestImportUnreadable(t *testing.T) {
	expr := e2eenv.GuideGroupsExpression + "# and a rule of our own\nif request.user.email.endswith(\"@example.com\"):\n    return {\"policy\": \"readonly\"}\n"
	expr = strings.Replace(expr, "return None\n", "", 1)
	env := e2eenvtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.SetupGuide(ctx, expr); err != nil {
		t.Fatal(err)
	}
	if err := env.WriteConfig(env.ConnectionConfig()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(env.Dir, "imported")
	_, stderr, code := e2eenvtest.Akminio(t, env, "import", "--output-dir", dir)
	if code != 2 || !strings.Contains(stderr, "line 10: it reads the user's email") {
		t.Fatalf("import: exit %d, want 2 naming line 10:\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, want := range []string{`#    10 | if request.user.email.endswith("@example.com"):`, "bindings: []", `mode: "report"`} {
		if !strings.Contains(text, want) {
			t.Errorf("written config lacks %q:\n%s", want, text)
		}
	}
}
