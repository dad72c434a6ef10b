// Package pyexpr evaluates authentik property mapping expressions the way authentik does, with
// the machine's python3 (standard library only), so that tests and the authentik simulator
// see the same results, and the same failures, as a real authentik server.
//
// An embedded harness (harness.py) receives everything as JSON on stdin: never is data
// interpolated into code. It wraps the expression as authentik's BaseEvaluator does
// ("def handler(user,http_request,request,provider,token):" plus the body indented by four
// spaces), runs it with exec and the same global names (ak_is_group_member, ak_logger,
// regex_match, regex_replace, list_flatten, slugify, ip_address, ...; helpers that need
// authentik's database or network, such as ak_user_by or requests, raise NotSupported).
//
// The user in Input decides the context, as authentik's callers do:
//
//	User      context (handler arguments)                      request.user
//	non-nil   user, http_request, request, provider, token     that user (token issuance)
//	nil       user, http_request, request, provider            guardian's "AnonymousUser" row,
//	                                                           no groups (discovery endpoint)
//
// authentik's discovery endpoint evaluates every scope mapping with guardian's anonymous user:
// a saved User row whose is_authenticated is True and which belongs to no group, so
// ak_is_group_member returns False for it, while an expression that names token fails with
// NameError.
package pyexpr

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

//go:embed harness.py
var harness string

// DefaultTimeout bounds one call when ctx has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// perItemTimeout is added to DefaultTimeout for each expression of a batch.
const perItemTimeout = 50 * time.Millisecond

// Input is what an expression is evaluated with.
type Input struct {
	User     *User          // nil = anonymous (as authentik's discovery endpoint)
	Provider map[string]any // the provider's fields, readable as provider.<key>
	// Scopes is token.scope, the scopes of the token being issued (BaseGrantModel.scope
	// splits its _scope on spaces); unused without a User, where there is no token.
	Scopes []string
	// RequestUser makes http_request.user the User, as preview_user's copied request is
	// (providers/oauth2/api/providers.py sets new_request.user = for_user). Otherwise it is
	// Django's AnonymousUser, as at the token endpoint, where the client calls.
	RequestUser bool
}

// User is an authentik user as expressions see it (request.user and user).
type User struct {
	PK         int            `json:"pk"`
	Username   string         `json:"username"`
	Name       string         `json:"name"`
	Email      string         `json:"email"`
	IsActive   bool           `json:"is_active"`
	Attributes map[string]any `json:"attributes"`
	// Groups are the user's direct groups and all their ancestors, as User.all_groups()
	// returns them; ak_is_group_member filters this list.
	Groups []Group `json:"groups"`
}

// Group is an authentik group; ak_is_group_member(user, name=...) (or pk=, group_uuid=,
// attributes__key=, with Django lookups such as __iexact) filters on these fields.
type Group struct {
	PK         string         `json:"pk"`
	Name       string         `json:"name"`
	Attributes map[string]any `json:"attributes"`
	// Direct marks a group the user is a member of itself, not through a child group:
	// user.ak_groups (as in the built-in profile mapping's "groups" claim) lists only these.
	Direct bool `json:"direct"`
}

// Job is one expression and its input, for EvaluateMany.
type Job struct {
	Expression string
	Input      Input
}

// Result is the outcome of one Job: a value, or an error (*Error) naming what failed.
type Result struct {
	Value any
	Err   error
}

// Compile checks an expression's syntax as authentik does when a mapping is saved. A
// rejected expression yields an *Error of kind ErrSyntax whose Error() text is the one
// authentik puts in its 400 body ("Expression Syntax Error: ...").
func Compile(ctx context.Context, expression string) error {
	return CompileNamed(ctx, expression, "")
}

// CompileNamed is Compile with the file name Python puts in a syntax error's message
// ("... (<filename>, line 2)"). authentik validates with PropertyMappingEvaluator(
// self.instance) (core/api/property_mappings.py), whose file name is the mapping's name:
// on create there is no instance and the name is "None" (filename ""), on update it is
// the mapping's stored name.
func CompileNamed(ctx context.Context, expression, filename string) error {
	res, err := runItems(ctx, "compile", []wireItem{{Expression: expression, Filename: filename}})
	if err != nil {
		return err
	}
	return res[0].Err
}

// FirstInvalidRegex compiles each pattern with Python's re, as authentik checks a
// regex-mode redirect URI (providers/oauth2/api/providers.py validate_redirect_uris), and
// returns the index of the first that does not compile, or -1. The error is for the
// python3 process as a whole.
func FirstInvalidRegex(ctx context.Context, patterns []string) (int, error) {
	if len(patterns) == 0 {
		return -1, nil
	}
	items := make([]wireItem, len(patterns))
	for i, p := range patterns {
		items[i] = wireItem{Expression: p}
	}
	res, err := runItems(ctx, "regex", items)
	if err != nil {
		return -1, err
	}
	for i, r := range res {
		if r.Err != nil {
			return i, nil
		}
	}
	return -1, nil
}

// Evaluate runs an expression for in and returns its result decoded from JSON (nil when
// it returns None; JSON numbers become float64). A syntax error, an exception raised by
// the expression, or a result JSON cannot hold yields an *Error.
func Evaluate(ctx context.Context, expression string, in Input) (any, error) {
	res, err := run(ctx, "evaluate", []Job{{Expression: expression, Input: in}})
	if err != nil {
		return nil, err
	}
	return res[0].Value, res[0].Err
}

// EvaluateMany evaluates several jobs in one python3 process (each expression is compiled
// once however many jobs share it). The error is for the process as a whole (python3
// missing, timeout); per-job failures are in each Result.Err.
func EvaluateMany(ctx context.Context, jobs []Job) ([]Result, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	return run(ctx, "evaluate", jobs)
}

type wireItem struct {
	Expression  string         `json:"expression"`
	User        *User          `json:"user"`
	Provider    map[string]any `json:"provider"`
	Scopes      []string       `json:"scopes"`
	RequestUser bool           `json:"request_user"`
	Filename    string         `json:"filename,omitempty"`
}

type wireRequest struct {
	Mode  string     `json:"mode"`
	Items []wireItem `json:"items"`
}

type wireResult struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error *Error          `json:"error"`
}

type wireResponse struct {
	Results []wireResult `json:"results"`
}

func run(ctx context.Context, mode string, jobs []Job) ([]Result, error) {
	items := make([]wireItem, len(jobs))
	for i, j := range jobs {
		in := j.Input
		items[i] = wireItem{Expression: j.Expression, User: in.User, Provider: in.Provider,
			Scopes: in.Scopes, RequestUser: in.RequestUser}
	}
	return runItems(ctx, mode, items)
}

func runItems(ctx context.Context, mode string, items []wireItem) ([]Result, error) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("pyexpr: python3 is needed to evaluate expressions: %w", err)
	}
	jobs := items
	req := wireRequest{Mode: mode, Items: items}
	stdin, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("pyexpr: encode input: %w", err)
	}
	out, err := runPython(ctx, python, stdin, DefaultTimeout+time.Duration(len(jobs))*perItemTimeout)
	if err != nil {
		return nil, err
	}
	var resp wireResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("pyexpr: harness replied with invalid JSON: %w", err)
	}
	if len(resp.Results) != len(jobs) {
		return nil, fmt.Errorf("pyexpr: harness returned %d results for %d expressions", len(resp.Results), len(jobs))
	}
	results := make([]Result, len(jobs))
	for i, r := range resp.Results {
		results[i] = decodeResult(r)
	}
	return results, nil
}

// runPython runs the harness with stdin and returns its stdout, bounded by ctx and timeout.
func runPython(ctx context.Context, python string, stdin []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// -I: ignore PYTHON* variables and the user's site-packages; -S: no site import (faster).
	cmd := exec.CommandContext(ctx, python, "-I", "-S", "-c", harness)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("pyexpr: evaluation stopped: %w", ctxErr)
	}
	if err != nil {
		return nil, fmt.Errorf("pyexpr: python3 harness failed: %w: %s", err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

func decodeResult(r wireResult) Result {
	if !r.OK {
		if r.Error == nil {
			return Result{Err: errors.New("pyexpr: harness reported a failure without an error")}
		}
		return Result{Err: r.Error}
	}
	var v any
	if len(r.Value) > 0 {
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return Result{Err: fmt.Errorf("pyexpr: decode result: %w", err)}
		}
	}
	return Result{Value: v}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
