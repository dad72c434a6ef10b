package adopt

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/pyexpr"
	"github.com/akminio/akminio/reconcile"
)

// The two expressions of authentik's MinIO integration guide, verbatim (kept once, in e2eenv).
const (
	GuidePlain  = e2eenv.GuidePlainExpression
	GuideGroups = e2eenv.GuideGroupsExpression
)

func b(group string, policies ...string) config.Binding {
	if group == "" {
		return config.Binding{Everyone: true, Policies: policies}
	}
	return config.Binding{Group: group, Policies: policies}
}

// readable are expressions import must read; each is also checked for equivalence with
// python3 below.
var readable = []struct {
	name  string
	expr  string
	want  []config.Binding
	match string
}{
	{"guide: plain return", GuidePlain, []config.Binding{b("", "readwrite")}, config.MatchFirst},
	{"guide: if/elif", GuideGroups, []config.Binding{b("Minio admins", "consoleAdmin"), b("Minio users", "readonly", "my-custom-policy")}, config.MatchFirst},
	{"forum: names of ak_groups, else a default", `
if "Minio admins" in [group.name for group in request.user.ak_groups.all()]:
    return {"policy": ["consoleAdmin"]}
else:
    return {'policy': 'readonly'}
`, []config.Binding{b("Minio admins", "consoleAdmin"), b("", "readonly")}, config.MatchFirst},
	{"forum: groups.filter().exists(), comma-separated claim", `# MinIO policies
if request.user.groups.filter(name="Minio users").exists():
    return {"policy": "readonly, diagnostics"}
return None`, []config.Binding{b("Minio users", "readonly", "diagnostics")}, config.MatchFirst},
	{"accumulated union", `policies = []
if ak_is_group_member(request.user, name="Minio admins"):
    policies.append("consoleAdmin")
if ak_is_group_member(request.user, name="Reporting"):
    policies += ["reports-reader"]
if user.ak_groups.filter(name="Minio users").count() > 0:
    policies.extend(["readonly"])
return {"policy": policies} if policies else None
`, []config.Binding{b("Minio admins", "consoleAdmin"), b("Reporting", "reports-reader"), b("Minio users", "readonly")}, config.MatchAll},
	{"guard, or, escapes, elif chain", `if not request.user.is_authenticated or request.user.pk is None:
    return None
if ak_is_group_member(request.user, name="Ops") or ak_is_group_member(request.user, name='Dev\x41\u00e9'):
    return {"policy": ["readwrite"]}
elif any(g.name == "Audit \"team\"" for g in request.user.ak_groups.all()):
    return {"policy": ["readonly"]}
`, []config.Binding{b("Ops", "readwrite"), b("DevAé", "readwrite"), b(`Audit "team"`, "readonly")}, config.MatchFirst},
	{"a list of names bound to a variable", `groups = request.user.ak_groups.values_list("name", flat=True)
ak_logger.info("minio mapping", user=request.user.username if False else "x")
if "Ops" in groups:
    return {"policy": "consoleAdmin"}
if "Staff" not in groups:
    return {}
return {"policy": ["readonly"]}
`, []config.Binding{b("Ops", "consoleAdmin"), b("Staff", "readonly")}, config.MatchFirst},
	{"nobody gets anything", "return None", nil, config.MatchFirst},
}

func TestReadExpression(t *testing.T) {
	for _, tc := range readable {
		t.Run(tc.name, func(t *testing.T) {
			r := ReadExpression(tc.expr, "policy")
			if len(r.Problems) > 0 {
				t.Fatalf("problems: %v", r.Problems)
			}
			if !reflect.DeepEqual(r.Bindings, tc.want) || r.Match != tc.match {
				t.Errorf("got %+v (match %s), want %+v (match %s)", r.Bindings, r.Match, tc.want, tc.match)
			}
		})
	}
}

// TestReadingIsEquivalent proves "no access change": for every combination of the groups
// an expression names (and one group it does not), python3 evaluates the original and the
// expression akminio renders from the bindings read from it, the way authentik runs them;
// MinIO must read the same policies from both claims. The anonymous user of authentik's
// discovery endpoint is checked too.
func TestReadingIsEquivalent(t *testing.T) {
	type check struct {
		name   string
		groups []string
	}
	var jobs []pyexpr.Job
	var checks []check
	for _, tc := range readable {
		r := ReadExpression(tc.expr, "policy")
		if len(r.Problems) > 0 {
			t.Fatalf("%s: problems: %v", tc.name, r.Problems)
		}
		rendered := reconcile.RenderExpression(r.Bindings, r.Match, "policy")
		names := append(slices.Clone(r.Groups), "Unrelated")
		for mask := 0; mask < 1<<len(names); mask++ {
			var in []string
			for i, g := range names {
				if mask&(1<<i) != 0 {
					in = append(in, g)
				}
			}
			u := &pyexpr.User{PK: 42, Username: "u", IsActive: true}
			for i, g := range in {
				u.Groups = append(u.Groups, pyexpr.Group{PK: fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1), Name: g, Direct: true})
			}
			for _, e := range []string{tc.expr, rendered} {
				jobs = append(jobs, pyexpr.Job{Expression: e, Input: pyexpr.Input{User: u}})
			}
			checks = append(checks, check{tc.name, in})
		}
		jobs = append(jobs, pyexpr.Job{Expression: tc.expr}, pyexpr.Job{Expression: rendered})
		checks = append(checks, check{tc.name + " (anonymous)", nil})
	}
	res, err := pyexpr.EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range checks {
		orig, rend := res[2*i], res[2*i+1]
		if orig.Err != nil || rend.Err != nil {
			t.Errorf("%s, member of %v: original: %v; rendered: %v", c.name, c.groups, orig.Err, rend.Err)
			continue
		}
		if o, r := claimed(orig.Value), claimed(rend.Value); !sameSet(o, r) {
			t.Errorf("%s, member of %v: the original gives %v, the bindings give %v", c.name, c.groups, o, r)
		}
	}
	t.Logf("%d evaluations, all equal", len(jobs))
}

// claimed is what MinIO reads from an expression's result.
func claimed(v any) []string {
	m, _ := v.(map[string]any)
	p, _ := reconcile.ClaimPolicies(m, "policy")
	return p
}

// notReadable are expressions import must refuse, naming the lines.
var notReadable = []struct {
	name  string
	expr  string
	lines []int // the lines reported, in order
	why   string
}{
	{"a test of the email", `if ak_is_group_member(request.user, name="Minio admins"):
    return {"policy": "consoleAdmin"}
if request.user.email.endswith("@example.com"):
    return {"policy": "readonly"}
return None
`, []int{3}, "email"},
	{"a loop over an attribute", `policies = []
for group in request.user.ak_groups.all():
    policies.extend(group.attributes.get("minio_policies", []))
return {"policy": policies}
`, []int{2}, "for statement"},
	{"a deny rule first", `if ak_is_group_member(request.user, name="Suspended"):
    return None
return {"policy": "readwrite"}
`, []int{1}, "no bindings reproduce it"},
	{"another claim too", `return {"policy": "readonly", "groups": ["x"]}`, []int{1}, `the claim "groups"`},
	{"a syntax error", "if ak_is_group_member(request.user, name=\"A\")\n    return None\n", []int{1}, "would not compile"},
	{"a lookup other than an exact name", `if ak_is_group_member(request.user, name__iexact="minio admins"):
    return {"policy": "consoleAdmin"}
`, []int{1}, "name__iexact="},
	{"an f-string policy", `if ak_is_group_member(request.user, name="Ops"):
    return {"policy": f"team-{request.user.username}"}
`, []int{2}, "f-string"},
	{"the names are the policies", `return {"policy": [g.name for g in request.user.ak_groups.all()]}`, []int{1}, "claim is neither"},
}

func TestReadExpressionRefuses(t *testing.T) {
	for _, tc := range notReadable {
		t.Run(tc.name, func(t *testing.T) {
			r := ReadExpression(tc.expr, "policy")
			if r.Bindings != nil {
				t.Errorf("bindings %+v for an expression that is not read", r.Bindings)
			}
			var lines []int
			var text []string
			for _, p := range r.Problems {
				lines = append(lines, p.Line)
				text = append(text, p.String())
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("lines %v, want %v: %s", lines, tc.lines, strings.Join(text, "\n"))
			}
			if !strings.Contains(strings.Join(text, "\n"), tc.why) {
				t.Errorf("problems do not say %q: %s", tc.why, strings.Join(text, "\n"))
			}
		})
	}
}

func TestReadExpressionDirectGroups(t *testing.T) {
	r := ReadExpression(`if request.user.groups.filter(name="Minio users").exists():
    return {"policy": "readonly"}
if ak_is_group_member(request.user, name="Minio admins"):
    return {"policy": "consoleAdmin"}
`, "policy")
	if !slices.Equal(r.DirectGroups, []string{"Minio users"}) {
		t.Errorf("direct groups %v, want [Minio users]", r.DirectGroups)
	}
	if !slices.Equal(r.Groups, []string{"Minio users", "Minio admins"}) {
		t.Errorf("groups %v", r.Groups)
	}
}

// TestReadRendered: an expression akminio rendered reads back as its bindings, exactly;
// one edited by hand after rendering does not take that path.
func TestReadRendered(t *testing.T) {
	for _, match := range []string{config.MatchFirst, config.MatchAll} {
		want := []config.Binding{b("Minio admins", "consoleAdmin"), b(`x"); import os #`, "readonly", "diagnostics"), b("", "readwrite")}
		if match == config.MatchFirst {
			want = want[:2]
		}
		expr := reconcile.RenderExpression(want, match, "policy")
		r := ReadExpression(expr, "policy")
		if len(r.Problems) > 0 || !reflect.DeepEqual(r.Bindings, want) || r.Match != match {
			t.Errorf("match %s: got %+v %s %v", match, r.Bindings, r.Match, r.Problems)
		}
		if !slices.Equal(r.Groups, []string{"Minio admins", `x"); import os #`}) {
			t.Errorf("groups %v", r.Groups)
		}
		edited := strings.Replace(expr, "return None\n", "return {\"policy\": \"readwrite\"}\n", 1)
		if r := ReadExpression(edited, "policy"); len(r.Problems) == 0 {
			t.Errorf("match %s: an edited rendering read as %+v", match, r.Bindings)
		}
	}
}

// TestRandomChainsAreEquivalent generates if/elif chains in the styles of the guide and of
// forum answers (seeded, so a failure repeats), reads each, and checks with python3 that the
// bindings give every combination of memberships the same policies as the original.
func TestRandomChainsAreEquivalent(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2026))
	groups := []string{"A", "B", "C", `D "q"`, "E\\e"}
	pols := []string{"consoleAdmin", "readonly", "readwrite", "diagnostics", "p-1"}
	tests := []func(g string) string{
		func(g string) string { return fmt.Sprintf("ak_is_group_member(request.user, name=%s)", pyLit(g)) },
		func(g string) string {
			return fmt.Sprintf("request.user.all_groups().filter(name=%s).exists()", pyLit(g))
		},
		func(g string) string { return fmt.Sprintf("ak_is_group_member(user, name=%s)", pyLit(g)) },
	}
	result := func() string {
		n := 1 + rng.IntN(2)
		var ps []string
		for range n {
			ps = append(ps, pols[rng.IntN(len(pols))])
		}
		if n == 1 && rng.IntN(2) == 0 {
			return fmt.Sprintf(`{"policy": %s}`, pyLit(ps[0]))
		}
		if rng.IntN(3) == 0 {
			return fmt.Sprintf(`{"policy": %s}`, pyLit(strings.Join(ps, ",")))
		}
		return fmt.Sprintf(`{"policy": [%s]}`, strings.Join(mapStr(ps, pyLit), ", "))
	}
	var exprs []string
	for range 24 {
		var b strings.Builder
		n := 1 + rng.IntN(4)
		perm := rng.Perm(len(groups))[:n]
		for i, gi := range perm {
			kw := "elif"
			if i == 0 || rng.IntN(4) == 0 {
				kw = "if"
			}
			cond := tests[rng.IntN(len(tests))](groups[gi])
			if rng.IntN(4) == 0 && gi+1 < len(groups) {
				cond += " or " + tests[0](groups[(gi+1)%len(groups)])
			}
			fmt.Fprintf(&b, "%s %s:\n    return %s\n", kw, cond, result())
		}
		switch rng.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "return %s\n", result())
		case 1:
			b.WriteString("return None\n")
		}
		exprs = append(exprs, b.String())
	}
	var jobs []pyexpr.Job
	type check struct {
		expr   string
		groups []string
	}
	var checks []check
	for _, e := range exprs {
		r := ReadExpression(e, "policy")
		if len(r.Problems) > 0 {
			t.Fatalf("%s\nproblems: %v", e, r.Problems)
		}
		rendered := reconcile.RenderExpression(r.Bindings, r.Match, "policy")
		for mask := 0; mask < 1<<len(groups); mask++ {
			u := &pyexpr.User{PK: 3, Username: "u", IsActive: true}
			var in []string
			for i, g := range groups {
				if mask&(1<<i) != 0 {
					in = append(in, g)
					u.Groups = append(u.Groups, pyexpr.Group{PK: fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1), Name: g, Direct: true})
				}
			}
			jobs = append(jobs, pyexpr.Job{Expression: e, Input: pyexpr.Input{User: u}}, pyexpr.Job{Expression: rendered, Input: pyexpr.Input{User: u}})
			checks = append(checks, check{e, in})
		}
	}
	res, err := pyexpr.EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range checks {
		o, r := res[2*i], res[2*i+1]
		if o.Err != nil || r.Err != nil {
			t.Fatalf("%s: %v / %v", c.expr, o.Err, r.Err)
		}
		if !sameSet(claimed(o.Value), claimed(r.Value)) {
			t.Errorf("member of %v: original %v, bindings %v\n%s", c.groups, claimed(o.Value), claimed(r.Value), c.expr)
		}
	}
	t.Logf("%d expressions, %d evaluations", len(exprs), len(jobs))
}

// pyLit is s as a Python string literal (JSON's escapes are Python's for these strings).
func pyLit(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func mapStr(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}
