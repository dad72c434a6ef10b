package pyexpr

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// guideExpression is the scope mapping from authentik's MinIO integration guide.
const guideExpression = `if ak_is_group_member(request.user, name="Minio admins"):
    return {
        "policy": "consoleAdmin",
    }
elif ak_is_group_member(request.user, name="Minio users"):
    return {
        "policy": ["readonly", "my-custom-policy"]
    }
return None
`

func userIn(groups ...string) *User {
	u := &User{PK: 7, Username: "alice", Name: "Alice", Email: "alice@example.com", IsActive: true}
	for i, g := range groups {
		u.Groups = append(u.Groups, Group{PK: "00000000-0000-0000-0000-00000000000" + string(rune('1'+i)), Name: g})
	}
	return u
}

func TestGuideExpression(t *testing.T) {
	cases := []struct {
		name string
		user *User
		want any
	}{
		{"admin", userIn("Minio admins"), map[string]any{"policy": "consoleAdmin"}},
		{"user", userIn("Minio users"), map[string]any{"policy": []any{"readonly", "my-custom-policy"}}},
		{"both, first wins", userIn("Minio users", "Minio admins"), map[string]any{"policy": "consoleAdmin"}},
		// A member of a child group: the caller passes the ancestors too, as all_groups() does.
		{"child of admins", userIn("Ops", "Minio admins"), map[string]any{"policy": "consoleAdmin"}},
		{"no group", userIn("Staff"), nil},
		{"no groups at all", userIn(), nil},
		{"anonymous", nil, nil},
	}
	jobs := make([]Job, len(cases))
	for i, tc := range cases {
		jobs[i] = Job{Expression: guideExpression, Input: Input{User: tc.user}}
	}
	res, err := EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		if res[i].Err != nil {
			t.Errorf("%s: %v", tc.name, res[i].Err)
		} else if !reflect.DeepEqual(res[i].Value, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, res[i].Value, tc.want)
		}
	}
	// The single-expression path gives the same answer.
	got, err := Evaluate(context.Background(), guideExpression, Input{User: userIn("Minio users")})
	if err != nil || !reflect.DeepEqual(got, cases[1].want) {
		t.Errorf("Evaluate: got %#v, %v", got, err)
	}
}

func TestEvaluateMany(t *testing.T) {
	jobs := []Job{
		{guideExpression, Input{User: userIn("Minio admins")}},
		{guideExpression, Input{User: nil}},
		{"return token.scope", Input{User: nil}},
		{"return user.username", Input{User: userIn()}},
	}
	res, err := EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res[0].Value, map[string]any{"policy": "consoleAdmin"}) || res[0].Err != nil {
		t.Errorf("job 0: %#v", res[0])
	}
	if res[1].Value != nil || res[1].Err != nil {
		t.Errorf("job 1: %#v", res[1])
	}
	// The discovery endpoint passes no token: naming it fails there, as in authentik.
	var e *Error
	if !errors.As(res[2].Err, &e) || e.Type != "NameError" || !errors.Is(res[2].Err, ErrRuntime) {
		t.Errorf("job 2: want NameError, got %v", res[2].Err)
	}
	if res[3].Value != "alice" || res[3].Err != nil {
		t.Errorf("job 3: %#v", res[3])
	}
}

func TestAnonymousIsGuardianUser(t *testing.T) {
	got, err := Evaluate(context.Background(),
		`return [request.user.username, request.user.is_authenticated, request.http_request.user.is_authenticated]`,
		Input{})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"AnonymousUser", true, false}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestGroupFilters(t *testing.T) {
	u := userIn("Minio admins")
	u.Groups[0].Attributes = map[string]any{"tier": "gold", "nested": map[string]any{"k": 1.0}}
	cases := map[string]any{
		`return ak_is_group_member(request.user, name__iexact="minio ADMINS")`:                   true,
		`return ak_is_group_member(request.user, pk="00000000-0000-0000-0000-000000000001")`:     true,
		`return ak_is_group_member(request.user, group_uuid="00000000000000000000000000000001")`: true,
		`return ak_is_group_member(request.user, attributes__tier="gold")`:                       true,
		`return ak_is_group_member(request.user, attributes__nested__k=1)`:                       true,
		`return ak_is_group_member(request.user, name="Minio admins", attributes__tier="x")`:     false,
		`return [g.name for g in request.user.all_groups()]`:                                     []any{"Minio admins"},
		`return request.user.group_attributes()["tier"]`:                                         "gold",
		`return regex_replace(list_flatten(["a-b"]), "-", "_") + slugify(" Hé llo ")`:            "a_bhe-llo",
	}
	var jobs []Job
	var wants []any
	for expr, want := range cases {
		jobs = append(jobs, Job{Expression: expr, Input: Input{User: u}})
		wants = append(wants, want)
	}
	res, err := EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", jobs[i].Expression, r.Err)
		} else if !reflect.DeepEqual(r.Value, wants[i]) {
			t.Errorf("%s: got %#v, want %#v", jobs[i].Expression, r.Value, wants[i])
		}
	}
	_, err = Evaluate(context.Background(), `return ak_is_group_member(request.user, nme="x")`, Input{User: u})
	var e *Error
	if !errors.As(err, &e) || e.Type != "FieldError" || !strings.Contains(e.Message, "Cannot resolve keyword 'nme'") {
		t.Errorf("unknown filter field: got %v", err)
	}
}

func TestCompile(t *testing.T) {
	if err := Compile(context.Background(), guideExpression); err != nil {
		t.Fatalf("guide expression: %v", err)
	}
	err := Compile(context.Background(), "if True\n    return 1")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) {
		t.Fatalf("want syntax error, got %v", err)
	}
	if e.Line != 1 || !strings.HasPrefix(err.Error(), "Expression Syntax Error: ") {
		t.Errorf("got line %d, text %q", e.Line, err.Error())
	}
	// Evaluate reports the same syntax error rather than running anything.
	if _, err := Evaluate(context.Background(), "return (", Input{}); !errors.Is(err, ErrSyntax) {
		t.Errorf("Evaluate of bad syntax: got %v", err)
	}
}

func TestRuntimeError(t *testing.T) {
	_, err := Evaluate(context.Background(), "x = 1\nreturn {}['missing']", Input{User: userIn()})
	var e *Error
	if !errors.As(err, &e) || e.Type != "KeyError" || e.Line != 2 || !errors.Is(err, ErrRuntime) {
		t.Fatalf("got %#v (%v)", e, err)
	}
	if !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "KeyError") {
		t.Errorf("error text %q", err.Error())
	}
}

func TestResultNotSerialisable(t *testing.T) {
	var jobs []Job
	for _, expr := range []string{"return {1, 2}", "return request.user", `return float("nan")`} {
		jobs = append(jobs, Job{Expression: expr, Input: Input{User: userIn()}})
	}
	res, err := EvaluateMany(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, ErrResult) {
			t.Errorf("%s: want ErrResult, got %v", jobs[i].Expression, r.Err)
		}
	}
	got, err := Evaluate(context.Background(), "return (1, 'a')", Input{})
	if err != nil || !reflect.DeepEqual(got, []any{1.0, "a"}) {
		t.Errorf("tuple: %#v %v", got, err)
	}
}

func TestDataPassesIntact(t *testing.T) {
	hostile := "it's \"quoted\"\n\\ back\x01 {x} # ünïcødé 🎉 '''\"\"\""
	u := userIn(hostile)
	u.Username = hostile
	u.Attributes = map[string]any{hostile: hostile}
	expr := `print("stdout must not corrupt the reply")
ak_logger.info("logged", user=request.user.username)
return {"u": request.user.username, "g": [g.name for g in request.user.all_groups()],
        "a": request.user.attributes, "m": ak_is_group_member(request.user, name=request.user.username),
        "p": provider.name}`
	got, err := Evaluate(context.Background(), expr, Input{User: u, Provider: map[string]any{"name": hostile}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"u": hostile, "g": []any{hostile}, "a": map[string]any{hostile: hostile}, "m": true, "p": hostile}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Evaluate(ctx, "while True:\n    pass", Input{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
}

// TestDirectGroupsOnly: user.ak_groups is the membership relation (direct groups, as the
// built-in profile mapping's "groups" claim lists them), while ak_is_group_member also sees
// ancestor groups through all_groups().
func TestDirectGroupsOnly(t *testing.T) {
	u := &User{PK: 7, Username: "dave", IsActive: true, Groups: []Group{
		{PK: "g1", Name: "Minio interns", Direct: true},
		{PK: "g2", Name: "Minio users"}, // the parent of Minio interns
	}}
	const expr = `return {"groups": [g.name for g in request.user.ak_groups.all()],
        "member": ak_is_group_member(request.user, name="Minio users")}`
	got, err := Evaluate(context.Background(), expr, Input{User: u})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"groups": []any{"Minio interns"}, "member": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// TestTokenScopeAndRequestUser: token.scope is the token's scopes, and http_request.user
// is the user only when the caller says so (preview_user), Django's AnonymousUser
// otherwise (the token endpoint).
func TestTokenScopeAndRequestUser(t *testing.T) {
	const expr = `return [token.scope, http_request.user.username, http_request.user.is_authenticated]`
	res, err := EvaluateMany(context.Background(), []Job{
		{expr, Input{User: userIn(), Scopes: []string{"openid", "minio"}, RequestUser: true}},
		{expr, Input{User: userIn()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{[]any{"openid", "minio"}, "alice", true}, {[]any{}, "", false}}
	for i, r := range res {
		if r.Err != nil || !reflect.DeepEqual(r.Value, []any(want[i])) {
			t.Errorf("job %d: got %#v, %v; want %#v", i, r.Value, r.Err, want[i])
		}
	}
}

// TestSaveTimeChecks: a syntax error names the file authentik compiles with (the
// mapping's name on update), and regexes are Python's (lookahead compiles, "**" not).
func TestSaveTimeChecks(t *testing.T) {
	err := CompileNamed(context.Background(), "return (", "OIDC-Scope-minio")
	if !errors.Is(err, ErrSyntax) || !strings.HasSuffix(err.Error(), "(OIDC-Scope-minio, line 2)") {
		t.Errorf("CompileNamed: %v, want a syntax error naming OIDC-Scope-minio, line 2", err)
	}
	if err := Compile(context.Background(), "return ("); err == nil || !strings.HasSuffix(err.Error(), "(None, line 2)") {
		t.Errorf("Compile: %v, want a syntax error naming None, line 2", err)
	}
	bad, err := FirstInvalidRegex(context.Background(), []string{`^https://(?!evil)\w+/$`, "**", "("})
	if err != nil || bad != 1 {
		t.Errorf("FirstInvalidRegex = %d, %v; want 1", bad, err)
	}
	if bad, err := FirstInvalidRegex(context.Background(), []string{"a+"}); err != nil || bad != -1 {
		t.Errorf("FirstInvalidRegex(valid) = %d, %v; want -1", bad, err)
	}
}
