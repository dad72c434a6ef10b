package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/pyexpr"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// exampleBindings are the bindings of the spec's example-config.yaml.
var exampleBindings = []config.Binding{
	{Group: "Minio admins", Policies: []string{"consoleAdmin"}},
	{Group: "Minio users", Policies: []string{"readonly", "my-custom-policy"}},
	{Group: "Reporting", Policies: []string{"bucket-reports-reader", "legacy-auditors"}},
}

func TestRenderExpressionGolden(t *testing.T) {
	for _, match := range []string{config.MatchFirst, config.MatchAll} {
		t.Run(match, func(t *testing.T) {
			got := RenderExpression(exampleBindings, match, "policy")
			if again := RenderExpression(exampleBindings, match, "policy"); again != got {
				t.Fatal("two renders of the same input differ")
			}
			path := filepath.Join("testdata", "expression", "example-"+match+".py")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("rendered expression differs from %s:\n%s", path, got)
			}
		})
	}
}

// hostileNames are names that would break or inject code if emitted carelessly.
var hostileNames = []string{
	`x"); import os; os.system("id") #`,
	`'''`,
	`"""`,
	`ends with a backslash \`,
	"new\nline and\r\ncrlf",
	"{name} {0} %s",
	"nul\x00byte",
	"tab\tbell\a del\x7f nel\u0085 ff\f vt\v fs\x1c",
	"line\u2028sep para\u2029sep bidi\u202eevil\u202c nbsp\u00a0",
	"emoji 🎉 Ünïcødé 名前",
	"# not a comment",
	strings.Repeat(`a"b\c'`, 2000) + "é", // over 10k characters
}

func TestPyStrKeepsLiteralsOnOneSafeLine(t *testing.T) {
	for _, s := range hostileNames {
		lit := pyStr(s)
		for _, r := range lit {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && (!unicode.IsGraphic(r) || unicode.Is(unicode.Zs, r))) {
				t.Errorf("pyStr(%q) holds raw %U", s, r)
			}
		}
	}
}

func TestRenderExpressionHostileNames(t *testing.T) {
	var bindings []config.Binding
	for i, name := range hostileNames {
		// Policies are hostile too (a repeat checks de-duplication): the group's own name,
		// and the next name.
		next := hostileNames[(i+1)%len(hostileNames)]
		bindings = append(bindings, config.Binding{Group: name, Policies: []string{name, next, name}})
	}
	claim := `pol"icy\`
	for _, match := range []string{config.MatchFirst, config.MatchAll} {
		t.Run(match, func(t *testing.T) {
			src := RenderExpression(bindings, match, claim)
			checkStructure(t, src, bindings, claim, match)
			checkEvaluation(t, src, bindings, claim, match)
		})
	}
}

func TestRenderExpressionExampleEvaluation(t *testing.T) {
	for _, match := range []string{config.MatchFirst, config.MatchAll} {
		t.Run(match, func(t *testing.T) {
			src := RenderExpression(exampleBindings, match, "policy")
			checkStructure(t, src, exampleBindings, "policy", match)
			checkEvaluation(t, src, exampleBindings, "policy", match)
		})
	}
}

func TestRenderExpressionNoBindings(t *testing.T) {
	src := RenderExpression(nil, config.MatchAll, "policy")
	checkStructure(t, src, nil, "policy", config.MatchAll)
	got, err := pyexpr.Evaluate(context.Background(), src, pyexpr.Input{User: &pyexpr.User{PK: 1, Username: "u"}})
	if err != nil || got != nil {
		t.Fatalf("got %#v, %v; want None", got, err)
	}
}

// astCheck parses the rendered expression as authentik wraps it and reports every node,
// call, name or attribute outside the expected vocabulary, the string constants, the
// bindings literal and the handler's top-level statement types. Data arrives on stdin.
const astCheck = `
import ast, json, sys, textwrap
d = json.loads(sys.stdin.buffer.read())
tree = ast.parse("def handler(request):\n" + textwrap.indent(d["source"], "    "))
allowed = {"Module", "FunctionDef", "arguments", "arg", "If", "For", "Assign", "AugAssign",
    "Return", "UnaryOp", "Not", "BoolOp", "Or", "Compare", "Is", "NotIn", "Add", "Attribute",
    "Name", "Load", "Store", "Constant", "List", "Tuple", "Dict", "Call", "keyword",
    "ListComp", "comprehension"}
names = {"request", "ak_is_group_member", "bindings", "group", "policies", "claim", "p"}
problems, strings, bindings = [], [], None
for node in ast.walk(tree):
    kind = type(node).__name__
    if kind not in allowed:
        problems.append("node " + kind)
    if isinstance(node, ast.Call):
        ok = isinstance(node.func, ast.Name) and node.func.id == "ak_is_group_member"
        ok = ok and [k.arg for k in node.keywords] == ["name"] and len(node.args) == 1
        if not ok:
            problems.append("call " + ast.dump(node)[:200])
    if isinstance(node, ast.Name) and node.id not in names:
        problems.append("name " + node.id)
    if isinstance(node, ast.Attribute) and node.attr not in ("user", "is_authenticated", "pk"):
        problems.append("attribute " + node.attr)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            strings.append(node.value)
        elif node.value is not None:
            problems.append("constant " + repr(node.value))
    if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["bindings"]:
        bindings = [[g, list(p)] for g, p in ast.literal_eval(node.value)]
body = [type(s).__name__ for s in tree.body[0].body]
json.dump({"problems": problems, "strings": strings, "bindings": bindings, "body": body}, sys.stdout)
`

type astReport struct {
	Problems []string `json:"problems"`
	Strings  []string `json:"strings"`
	Bindings [][]any  `json:"bindings"`
	Body     []string `json:"body"`
}

func checkStructure(t *testing.T, src string, bindings []config.Binding, claim, match string) {
	t.Helper()
	in, _ := json.Marshal(map[string]string{"source": src})
	cmd := exec.Command("python3", "-I", "-S", "-c", astCheck)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 ast check: %v: %s", err, stderr.String())
	}
	var rep astReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ast check output: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("unexpected structure: %q", rep.Problems)
	}
	wantBody := []string{"If", "Assign", "For", "Return"}
	if match == config.MatchAll {
		wantBody = []string{"If", "Assign", "Assign", "For", "If", "Return"}
	}
	if !reflect.DeepEqual(rep.Body, wantBody) {
		t.Errorf("top-level statements %v, want %v", rep.Body, wantBody)
	}
	wantBindings := [][]any{}
	wantStrings := []string{claim}
	for _, b := range bindings {
		ps := []any{}
		for _, p := range uniqueInOrder(b.Policies) {
			ps = append(ps, p)
			wantStrings = append(wantStrings, p)
		}
		wantBindings = append(wantBindings, []any{b.Group, ps})
		wantStrings = append(wantStrings, b.Group)
	}
	if !reflect.DeepEqual(rep.Bindings, wantBindings) {
		t.Errorf("bindings literal does not evaluate to the bindings")
	}
	sort.Strings(rep.Strings)
	sort.Strings(wantStrings)
	if !reflect.DeepEqual(rep.Strings, wantStrings) {
		t.Errorf("string constants differ from the names: got %d, want %d", len(rep.Strings), len(wantStrings))
	}
}

// checkEvaluation evaluates the expression with pyexpr for a user in each bound group, in a
// child group of each, in none, and anonymous.
func checkEvaluation(t *testing.T, src string, bindings []config.Binding, claim, match string) {
	t.Helper()
	type tc struct {
		name string
		user *pyexpr.User
		want any
	}
	var cases []tc
	for i, b := range bindings {
		direct := &pyexpr.User{PK: 10 + i, Username: "direct", IsActive: true,
			Groups: []pyexpr.Group{{PK: "g", Name: b.Group}}}
		// A child group's member: all_groups() yields the child and its ancestors.
		child := &pyexpr.User{PK: 100 + i, Username: "child", IsActive: true,
			Groups: []pyexpr.Group{{PK: "c", Name: "child of " + b.Group}, {PK: "g", Name: b.Group}}}
		want := expectedClaim(bindings, match, claim, b.Group, "child of "+b.Group)
		cases = append(cases, tc{"member of " + b.Group[:min(len(b.Group), 20)], direct, want},
			tc{"child of " + b.Group[:min(len(b.Group), 20)], child, want})
	}
	cases = append(cases,
		tc{"in no bound group", &pyexpr.User{PK: 2, Username: "none", IsActive: true,
			Groups: []pyexpr.Group{{PK: "x", Name: "Unrelated"}}}, nil},
		tc{"anonymous", nil, nil})
	jobs := make([]pyexpr.Job, len(cases))
	for i, c := range cases {
		jobs[i] = pyexpr.Job{Expression: src, Input: pyexpr.Input{User: c.user}}
	}
	res, err := pyexpr.EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if res[i].Err != nil {
			t.Errorf("%s: %v", c.name, res[i].Err)
		} else if !reflect.DeepEqual(res[i].Value, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, res[i].Value, c.want)
		}
	}
}

// expectedClaim computes, independently of the Python, the claim for a user in groups.
func expectedClaim(bindings []config.Binding, match, claim string, groups ...string) any {
	in := map[string]bool{}
	for _, g := range groups {
		in[g] = true
	}
	var policies []any
	seen := map[string]bool{}
	for _, b := range bindings {
		if !in[b.Group] {
			continue
		}
		for _, p := range b.Policies {
			if !seen[p] {
				seen[p] = true
				policies = append(policies, p)
			}
		}
		if match == config.MatchFirst {
			break
		}
	}
	if policies == nil {
		return nil
	}
	return map[string]any{claim: policies}
}
