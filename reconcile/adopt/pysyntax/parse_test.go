package pysyntax

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/akminio/akminio/internal/pyexpr"
)

// TestStringLiterals decodes literals with every prefix and escape and checks each value
// against python3's own reading of the same literal (ast.literal_eval), indented as
// authentik indents an expression: a literal spanning lines gets four spaces too.
func TestStringLiterals(t *testing.T) {
	lits := []string{
		`"plain"`, `'single'`, `"with \"quotes\""`, `'it\'s'`, `"back\\slash"`,
		`"\n\t\r\a\b\f\v"`, `"\x41\x7e"`, `"\101\0\7\777"`, `"\u00e9\u2028"`, `"\U0001F600"`,
		`"unknown \d escape"`, `r"raw \n \x41"`, `R'raw\''`, `u"unicode prefix"`, `"""triple "q" """`,
		`'''triple 'q' '''`, `"a" "b" 'c'`, `"line\
continued"`, `"""two
lines"""`, `"Minio admins"`, `"x\"); import os; os.system(\"id\") #"`, `"é ü 中"`, `"\\\\"`,
		`"tab	inside"`, `rb"x"`,
	}
	var want []string
	{
		// authentik indents the whole expression, inside multi-line literals too.
		src := "import ast, json, sys, textwrap\nout = []\nfor s in json.load(sys.stdin):\n    v = ast.literal_eval(textwrap.indent(s, '    '))\n    out.append(v.decode('latin-1') if isinstance(v, bytes) else v)\nprint(json.dumps(out))\n"
		in, _ := json.Marshal(lits)
		cmd := exec.Command("python3", "-c", src)
		cmd.Stdin = strings.NewReader(string(in))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python3: %v", err)
		}
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
	}
	for i, lit := range lits {
		body, err := Parse("return " + lit)
		if err != nil {
			t.Errorf("%s: %v", lit, err)
			continue
		}
		s, ok := body[0].(*Return).Value.(*Str)
		if !ok {
			t.Errorf("%s: not a string: %#v", lit, body[0].(*Return).Value)
			continue
		}
		if s.Lit.Value != want[i] {
			t.Errorf("%s: got %q, python3 reads %q", lit, s.Lit.Value, want[i])
		}
	}
}

// TestSyntaxAgreesWithPython parses sources that Python accepts and sources it rejects,
// as authentik wraps them, and checks that Parse fails exactly when python3 does.
func TestSyntaxAgreesWithPython(t *testing.T) {
	sources := []string{
		"return None",
		"  return None", // indented first line: fine inside the wrapper
		"if x:\n  return 1\nelif y:\n    return 2\nelse:\n\treturn 3",
		"if x:\n    return 1\n  return 2", // unindent to no known level
		"if x:\nreturn 1",                 // missing block
		"return {\n  'a': [1,\n 2],\n}",   // brackets join lines
		"return (1 +\n2)",
		"x = 1 \\\n + 2\nreturn x",
		"return [",                           // unclosed bracket
		"return 'abc",                        // unterminated
		"return \"\"\"abc",                   // unterminated triple
		"for g in x:\n    pass\nreturn None", // valid, outside the subset
		"try:\n    x = 1\nexcept Exception:\n    pass\nfinally:\n    pass",
		"def f():\n    return 1\nreturn f()",
		"@dec\ndef f():\n    pass",
		"return lambda: 1",
		"if (n := 1):\n    pass",
		"return x if y else z",
		"return not a and b or c",
		"return a < b <= c != d is not e not in f",
		"return [g.name for g in request.user.ak_groups.all() if g]",
		"return any(g.name == 'x' for g in user.groups.all())",
		"return {k: v for k, v in x}",
		"return {1, 2}",
		"x: int = 1",
		"if x: return 1\nreturn 2",
		"if x: a = 1; b = 2\nreturn a",
		"return f(*a, **k)",
		"return a[1:2]",
		"return -a ** 2",
		"return ...",
		"match = 1\nreturn match",
		"return )",
		"return 1 +",
		"if x\n    return 1",
		"   # just a comment\nreturn 1  # trailing",
		"\n\n\nreturn 1\n\n",
		"return f'x{y}'",
		"return 'a' b'b'",                  // mixing bytes and str
		"if x:\n\tif y:\n        return 1", // tab vs 8 spaces: Python says inconsistent
		"return '\u2028'",                  // a raw line separator inside a string: indentation inserted
	}
	jobs := make([]pyexpr.Job, len(sources))
	for i, src := range sources {
		jobs[i] = pyexpr.Job{Expression: src}
	}
	res, err := pyexpr.EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, src := range sources {
		pyErr := res[i].Err
		if !errors.Is(pyErr, pyexpr.ErrSyntax) {
			pyErr = nil // it compiled; what it does when run does not matter here
		}
		_, err := Parse(src)
		if (err == nil) != (pyErr == nil) {
			t.Errorf("%q: Parse error %v, python3 error %v", src, err, pyErr)
		}
	}
}

func TestParseShapes(t *testing.T) {
	guide := `if ak_is_group_member(request.user, name="Minio admins"):
  return {
      "policy": "consoleAdmin",
}
elif ak_is_group_member(request.user, name="Minio users"):
  return {
      "policy": ["readonly", "my-custom-policy"]
}
return None
`
	body, err := Parse(guide)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 {
		t.Fatalf("want if and return, got %d statements", len(body))
	}
	s := body[0].(*If)
	if s.Line != 1 || s.EndLine != 8 {
		t.Errorf("if spans lines %d-%d, want 1-8", s.Line, s.EndLine)
	}
	call := s.Cond.(*Call)
	if call.Fn.(*Name).ID != "ak_is_group_member" || call.Kwargs[0].Name != "name" || call.Kwargs[0].Value.(*Str).Lit.Value != "Minio admins" {
		t.Errorf("condition: %#v", call)
	}
	elif := s.Else[0].(*If)
	ret := elif.Body[0].(*Return).Value.(*Dict)
	if ret.Keys[0].(*Str).Lit.Value != "policy" || len(ret.Values[0].(*List).Elts) != 2 {
		t.Errorf("elif return: %#v", ret)
	}
	if r := body[1].(*Return); r.Line != 9 || r.Value.(*Const).Value != "None" {
		t.Errorf("last return: %#v", r)
	}

	// Unsupported statements keep their whole span, so a reader can name the lines.
	body, err = Parse("x = []\nfor g in groups:\n    x.append(g)\n\n    y = 1\nreturn x\n")
	if err != nil {
		t.Fatal(err)
	}
	u, ok := body[1].(*Unsupported)
	if !ok || u.Keyword != "for" || u.Line != 2 || u.EndLine != 5 {
		t.Errorf("for statement: %#v", body[1])
	}
	if r, ok := body[2].(*Return); !ok || r.Line != 6 {
		t.Errorf("statement after the loop: %#v", body[2])
	}
}

// TestParseNeverPanics feeds truncations and splices of real expressions: each must parse
// or fail with a *SyntaxError, never panic or loop.
func TestParseNeverPanics(t *testing.T) {
	seeds := []string{
		"if ak_is_group_member(request.user, name=\"A\"):\n    return {\"policy\": [\"a\", 'b']}\nelif \"B\" in [g.name for g in request.user.ak_groups.all()]:\n    return {'policy': 'x,y'}\nelse:\n    return None\n",
		"policies = []\nif request.user.groups.filter(name=\"C\").exists():\n    policies += [\"c\"]\nreturn {\"policy\": policies} if policies else None\n",
		"try:\n  x = {1: (2, [3, {4}])}\nexcept:\n  pass\n",
	}
	for _, seed := range seeds {
		for i := 0; i <= len(seed); i++ {
			for _, src := range []string{seed[:i], seed[i:], seed[:i] + "\n" + seed[:i], seed[:i] + "(" + seed[i:], seed[:i] + "\t" + seed[i:]} {
				_, err := Parse(src)
				if err != nil {
					if _, ok := err.(*SyntaxError); !ok {
						t.Fatalf("%q: error of type %T: %v", src, err, err)
					}
				}
			}
		}
	}
}
