package adopt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/akminio/akminio/reconcile/adopt/pysyntax"
)

// The evaluator runs a parsed expression for one "world": a user who is a member
// (directly or through a child group, as ak_is_group_member sees it) of exactly the groups
// in the world. It knows only what group membership decides; anything else (the user's
// email, attributes, the provider, a loop) is a readError naming the node.

// readError is a node the evaluator cannot read, and why.
type readError struct {
	span pysyntax.Span
	why  string
}

func (e *readError) Error() string { return e.why }

func unreadable(n pysyntax.Node, format string, args ...any) *readError {
	return &readError{span: n.Lines(), why: fmt.Sprintf(format, args...)}
}

// Values the evaluator computes with.
type (
	vNone    struct{}
	vRequest struct{}
	vUser    struct{}
	vPK      struct{} // request.user.pk: never None for a real user
	vLogger  struct{}
	// vGroups is a user's groups: direct ones (user.groups, user.ak_groups) or all, with
	// ancestors (user.all_groups()); filtered by an exact name when name is set.
	vGroups struct {
		direct   bool
		name     string
		filtered bool
	}
	// vNames is the names of a user's groups ([g.name for g in ...], values_list): only
	// "x in names" can be read from it.
	vNames struct{ direct bool }
	// vAnyName is the generator "g.name == x for g in groups", for any().
	vAnyName struct {
		direct bool
		name   string
	}
	vList struct{ items []value } // lists and tuples; a pointer, as Python lists are shared
	vDict struct {
		keys []string
		vals []value
	}
	vFunc struct {
		name string
		recv value
	}
)

type value any

// world is one combination of memberships.
type world struct {
	member map[string]bool
	// direct records the groups tested by direct membership (their children would differ).
	direct map[string]bool
	// ask is told every group name asked about.
	ask func(name string)
}

func (w *world) isMember(name string, direct bool) bool {
	w.ask(name)
	if direct {
		w.direct[name] = true
	}
	return w.member[name]
}

// outcome is what the expression returns for a world: the policies of its claim, or
// none (None, no claim, an empty claim: no access either way).
type outcome struct {
	policies []string // nil: no access
}

// interp evaluates one world.
type interp struct {
	w     *world
	claim string
	vars  map[string]value
}

// errReturn carries a return through statement lists.
type errReturn struct{ v value }

func (errReturn) Error() string { return "return" }

func (in *interp) run(body []pysyntax.Stmt) (outcome, *readError) {
	in.vars = map[string]value{}
	r, err := in.block(body)
	if err != nil {
		return outcome{}, err
	}
	if r == nil {
		return outcome{}, nil // falling off the end returns None
	}
	return in.result(r.node, r.v)
}

type ret struct {
	node pysyntax.Node
	v    value
}

// block runs statements; a non-nil ret is a return.
func (in *interp) block(body []pysyntax.Stmt) (*ret, *readError) {
	for _, s := range body {
		r, err := in.stmt(s)
		if err != nil || r != nil {
			return r, err
		}
	}
	return nil, nil
}

func (in *interp) stmt(s pysyntax.Stmt) (*ret, *readError) {
	switch s := s.(type) {
	case *pysyntax.Pass:
		return nil, nil
	case *pysyntax.Return:
		if s.Value == nil {
			return &ret{s, vNone{}}, nil
		}
		v, err := in.eval(s.Value)
		if err != nil {
			return nil, err
		}
		return &ret{s, v}, nil
	case *pysyntax.If:
		c, err := in.eval(s.Cond)
		if err != nil {
			return nil, err
		}
		t, err := in.truthy(s.Cond, c)
		if err != nil {
			return nil, err
		}
		if t {
			return in.block(s.Body)
		}
		return in.block(s.Else)
	case *pysyntax.Assign:
		v, err := in.eval(s.Value)
		if err != nil {
			return nil, err
		}
		for _, t := range s.Targets {
			n, ok := t.(*pysyntax.Name)
			if !ok {
				return nil, unreadable(s, "assigns to something other than a plain name")
			}
			if isBuiltinName(n.ID) {
				return nil, unreadable(s, "assigns to %s, a name authentik provides", n.ID)
			}
			in.vars[n.ID] = v
		}
		return nil, nil
	case *pysyntax.AugAssign:
		n, ok := s.Target.(*pysyntax.Name)
		if !ok || s.Op != "+=" {
			return nil, unreadable(s, "an augmented assignment other than name += ...")
		}
		cur, ok := in.vars[n.ID]
		if !ok {
			return nil, unreadable(s, "%s is not assigned before this line", n.ID)
		}
		v, err := in.eval(s.Value)
		if err != nil {
			return nil, err
		}
		switch c := cur.(type) {
		case *vList:
			add, ok := v.(*vList)
			if !ok {
				return nil, unreadable(s, "adds something other than a list to the list %s", n.ID)
			}
			c.items = append(c.items, add.items...)
		case string:
			add, ok := v.(string)
			if !ok {
				return nil, unreadable(s, "adds something other than a string to the string %s", n.ID)
			}
			in.vars[n.ID] = c + add
		default:
			return nil, unreadable(s, "adds to %s, which is neither a list nor a string", n.ID)
		}
		return nil, nil
	case *pysyntax.ExprStmt:
		if _, isStr := s.X.(*pysyntax.Str); isStr {
			return nil, nil // a docstring or a bare string: no effect
		}
		if _, err := in.eval(s.X); err != nil {
			return nil, err
		}
		return nil, nil
	case *pysyntax.Unsupported:
		return nil, unreadable(s, "a %s statement is outside what import reads (if/elif/else, return, assignments)", s.Keyword)
	}
	return nil, unreadable(s, "a statement import does not read")
}

// result turns a returned value into the policies MinIO would read from the claim.
func (in *interp) result(n pysyntax.Node, v value) (outcome, *readError) {
	switch v := v.(type) {
	case vNone:
		return outcome{}, nil
	case *vDict:
		var pol value
		found := false
		for i, k := range v.keys {
			if k != in.claim {
				return outcome{}, unreadable(n, "returns the claim %q, which bindings cannot carry (only %q, MinIO's claim_name)", k, in.claim)
			}
			pol, found = v.vals[i], true
		}
		if !found {
			return outcome{}, nil // {} adds no claim: no access
		}
		ps, err := policiesOf(n, pol)
		return outcome{policies: ps}, err
	}
	return outcome{}, unreadable(n, "returns something other than a dict or None")
}

// policiesOf reads a claim value as MinIO does: a comma-separated string or a list of strings.
func policiesOf(n pysyntax.Node, v value) ([]string, *readError) {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	switch v := v.(type) {
	case vNone:
		return nil, nil
	case string:
		for _, p := range strings.Split(v, ",") {
			add(strings.TrimSpace(p))
		}
	case *vList:
		for _, e := range v.items {
			s, ok := e.(string)
			if !ok {
				return nil, unreadable(n, "the claim's list holds something other than strings")
			}
			add(s)
		}
	default:
		return nil, unreadable(n, "the claim is neither a string nor a list of strings")
	}
	return out, nil
}

func isBuiltinName(id string) bool {
	switch id {
	case "request", "user", "ak_is_group_member", "ak_logger", "provider", "token", "http_request":
		return true
	}
	return false
}

func (in *interp) eval(e pysyntax.Expr) (value, *readError) {
	switch e := e.(type) {
	case *pysyntax.Const:
		switch e.Value {
		case "None":
			return vNone{}, nil
		case "True":
			return true, nil
		}
		return false, nil
	case *pysyntax.Str:
		switch {
		case e.Lit.Format:
			return nil, unreadable(e, "an f-string: its value is computed when authentik runs it")
		case e.Lit.Bytes:
			return nil, unreadable(e, "a bytes literal, not a string")
		case e.Lit.Bad != "":
			return nil, unreadable(e, "a string literal import cannot decode: %s", e.Lit.Bad)
		}
		return e.Lit.Value, nil
	case *pysyntax.Num:
		n, err := strconv.ParseInt(strings.ReplaceAll(e.Text, "_", ""), 10, 64)
		if err != nil {
			return nil, unreadable(e, "the number %s", e.Text)
		}
		return n, nil
	case *pysyntax.Name:
		return in.name(e)
	case *pysyntax.Attr:
		x, err := in.eval(e.X)
		if err != nil {
			return nil, err
		}
		return in.attr(e, x)
	case *pysyntax.Call:
		return in.call(e)
	case *pysyntax.List:
		return in.list(e.Elts)
	case *pysyntax.Tuple:
		return in.list(e.Elts)
	case *pysyntax.Dict:
		if e.Star {
			return nil, unreadable(e, "a dict with ** entries")
		}
		d := &vDict{}
		for i, k := range e.Keys {
			kv, err := in.eval(k)
			if err != nil {
				return nil, err
			}
			ks, ok := kv.(string)
			if !ok {
				return nil, unreadable(k, "a dict key that is not a string")
			}
			vv, err := in.eval(e.Values[i])
			if err != nil {
				return nil, err
			}
			if j := slices.Index(d.keys, ks); j >= 0 {
				d.vals[j] = vv // a repeated key: the last value wins, as in Python
				continue
			}
			d.keys, d.vals = append(d.keys, ks), append(d.vals, vv)
		}
		return d, nil
	case *pysyntax.Comp:
		return in.comp(e)
	case *pysyntax.BoolOp:
		var last value
		for _, x := range e.Values {
			v, err := in.eval(x)
			if err != nil {
				return nil, err
			}
			t, err := in.truthy(x, v)
			if err != nil {
				return nil, err
			}
			last = v
			if t == (e.Op == "or") {
				return v, nil
			}
		}
		return last, nil
	case *pysyntax.Not:
		v, err := in.eval(e.X)
		if err != nil {
			return nil, err
		}
		t, err := in.truthy(e.X, v)
		return !t, err
	case *pysyntax.Compare:
		return in.compare(e)
	case *pysyntax.BinOp:
		if e.Op != "+" {
			return nil, unreadable(e, "the operator %s", e.Op)
		}
		l, err := in.eval(e.L)
		if err != nil {
			return nil, err
		}
		r, err := in.eval(e.R)
		if err != nil {
			return nil, err
		}
		switch l := l.(type) {
		case string:
			if r, ok := r.(string); ok {
				return l + r, nil
			}
		case *vList:
			if r, ok := r.(*vList); ok {
				return &vList{items: append(slices.Clone(l.items), r.items...)}, nil
			}
		}
		return nil, unreadable(e, "adds values that are not two strings or two lists")
	case *pysyntax.IfExp:
		c, err := in.eval(e.Cond)
		if err != nil {
			return nil, err
		}
		t, err := in.truthy(e.Cond, c)
		if err != nil {
			return nil, err
		}
		if t {
			return in.eval(e.Body)
		}
		return in.eval(e.Else)
	case *pysyntax.Other:
		return nil, unreadable(e, "%s is outside what import reads", e.What)
	case *pysyntax.Subscript:
		return nil, unreadable(e, "indexing or slicing")
	case *pysyntax.Unary:
		return nil, unreadable(e, "the operator %s", e.Op)
	case *pysyntax.Set:
		return nil, unreadable(e, "a set")
	}
	return nil, unreadable(e, "an expression import does not read")
}

func (in *interp) list(elts []pysyntax.Expr) (value, *readError) {
	l := &vList{}
	for _, x := range elts {
		v, err := in.eval(x)
		if err != nil {
			return nil, err
		}
		l.items = append(l.items, v)
	}
	return l, nil
}

func (in *interp) name(e *pysyntax.Name) (value, *readError) {
	if v, ok := in.vars[e.ID]; ok {
		return v, nil
	}
	switch e.ID {
	case "request":
		return vRequest{}, nil
	case "user":
		return vUser{}, nil
	case "ak_logger":
		return vLogger{}, nil
	case "ak_is_group_member", "len", "any", "bool", "list":
		return vFunc{name: e.ID}, nil
	case "provider", "token", "http_request":
		return nil, unreadable(e, "it reads %s: its claims would not depend on group membership alone", e.ID)
	}
	return nil, unreadable(e, "the name %s is not one import knows (request.user, ak_is_group_member, or a name assigned above)", e.ID)
}

func (in *interp) attr(e *pysyntax.Attr, x value) (value, *readError) {
	switch x := x.(type) {
	case vRequest:
		if e.Name == "user" {
			return vUser{}, nil
		}
	case vUser:
		switch e.Name {
		case "groups", "ak_groups":
			return vGroups{direct: true}, nil
		case "all_groups":
			return vFunc{name: "all_groups", recv: x}, nil
		case "is_authenticated", "is_active":
			return true, nil
		case "is_anonymous":
			return false, nil
		case "pk", "id":
			return vPK{}, nil
		}
		return nil, unreadable(e, "it reads the user's %s: bindings depend on group membership only", e.Name)
	case vGroups:
		switch e.Name {
		case "all", "filter", "exists", "count", "values_list":
			return vFunc{name: "groups." + e.Name, recv: x}, nil
		}
	case vLogger:
		return vFunc{name: "ak_logger"}, nil
	case *vList:
		switch e.Name {
		case "append", "extend":
			return vFunc{name: "list." + e.Name, recv: x}, nil
		}
	case string:
		if e.Name == "join" {
			return vFunc{name: "str.join", recv: x}, nil
		}
	}
	return nil, unreadable(e, "the attribute .%s here is not one import reads", e.Name)
}

func (in *interp) args(c *pysyntax.Call) ([]value, *readError) {
	if c.Star {
		return nil, unreadable(c, "a call with *args or **kwargs")
	}
	out := make([]value, 0, len(c.Args))
	for _, a := range c.Args {
		v, err := in.eval(a)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// exactName reads a call's single name="..." keyword (the exact-name filter).
func (in *interp) exactName(c *pysyntax.Call, what string) (string, *readError) {
	if len(c.Kwargs) != 1 || c.Kwargs[0].Name != "name" {
		var keys []string
		for _, k := range c.Kwargs {
			keys = append(keys, k.Name+"=")
		}
		return "", unreadable(c, "%s matches groups by %s; import reads only an exact name=\"...\"", what, orNothing(strings.Join(keys, ", ")))
	}
	v, err := in.eval(c.Kwargs[0].Value)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", unreadable(c, "%s with a name that is not a string", what)
	}
	return s, nil
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func (in *interp) call(c *pysyntax.Call) (value, *readError) {
	fv, err := in.eval(c.Fn)
	if err != nil {
		return nil, err
	}
	f, ok := fv.(vFunc)
	if !ok {
		return nil, unreadable(c, "calls something that is not a function import knows")
	}
	if f.name == "ak_logger" {
		return vNone{}, nil // logging changes no claim
	}
	if f.name == "ak_is_group_member" {
		if len(c.Args) != 1 || c.Star {
			return nil, unreadable(c, "ak_is_group_member without exactly one user argument")
		}
		u, err := in.eval(c.Args[0])
		if err != nil {
			return nil, err
		}
		if _, ok := u.(vUser); !ok {
			return nil, unreadable(c, "ak_is_group_member of something other than request.user")
		}
		name, err := in.exactName(c, "ak_is_group_member")
		if err != nil {
			return nil, err
		}
		return in.w.isMember(name, false), nil
	}
	if f.name == "groups.filter" {
		g := f.recv.(vGroups)
		if g.filtered || len(c.Args) > 0 {
			return nil, unreadable(c, "a filter of groups other than .filter(name=\"...\")")
		}
		name, err := in.exactName(c, "filter")
		if err != nil {
			return nil, err
		}
		return vGroups{direct: g.direct, name: name, filtered: true}, nil
	}
	args, err := in.args(c)
	if err != nil {
		return nil, err
	}
	if len(c.Kwargs) > 0 && f.name != "groups.values_list" {
		return nil, unreadable(c, "keyword arguments to %s", f.name)
	}
	switch f.name {
	case "all_groups":
		if len(args) == 0 {
			return vGroups{direct: false}, nil
		}
	case "groups.all":
		if len(args) == 0 {
			return f.recv, nil
		}
	case "groups.exists":
		if g := f.recv.(vGroups); g.filtered && len(args) == 0 {
			return in.w.isMember(g.name, g.direct), nil
		}
		return nil, unreadable(c, "exists() of groups not filtered by name: it depends on groups import does not know")
	case "groups.count":
		if g := f.recv.(vGroups); g.filtered && len(args) == 0 {
			if in.w.isMember(g.name, g.direct) {
				return int64(1), nil
			}
			return int64(0), nil
		}
		return nil, unreadable(c, "count() of groups not filtered by name")
	case "groups.values_list":
		g := f.recv.(vGroups)
		flat := len(c.Kwargs) == 1 && c.Kwargs[0].Name == "flat"
		if flat {
			v, err := in.eval(c.Kwargs[0].Value)
			if err != nil {
				return nil, err
			}
			flat = v == true
		}
		if !g.filtered && flat && len(args) == 1 && args[0] == "name" && len(c.Kwargs) == 1 {
			return vNames{direct: g.direct}, nil
		}
		return nil, unreadable(c, "values_list other than values_list(\"name\", flat=True)")
	case "list.append":
		if len(args) == 1 {
			l := f.recv.(*vList)
			l.items = append(l.items, args[0])
			return vNone{}, nil
		}
	case "list.extend":
		if len(args) == 1 {
			if add, ok := args[0].(*vList); ok {
				l := f.recv.(*vList)
				l.items = append(l.items, add.items...)
				return vNone{}, nil
			}
		}
	case "str.join":
		if len(args) == 1 {
			if l, ok := args[0].(*vList); ok {
				parts := make([]string, len(l.items))
				for i, it := range l.items {
					s, ok := it.(string)
					if !ok {
						return nil, unreadable(c, "join of something other than strings")
					}
					parts[i] = s
				}
				return strings.Join(parts, f.recv.(string)), nil
			}
		}
	case "len":
		if len(args) == 1 {
			switch a := args[0].(type) {
			case *vList:
				return int64(len(a.items)), nil
			case string:
				return int64(len([]rune(a))), nil
			case vGroups:
				if a.filtered {
					if in.w.isMember(a.name, a.direct) {
						return int64(1), nil
					}
					return int64(0), nil
				}
			}
		}
	case "bool":
		if len(args) == 1 {
			return in.truthy(c, args[0])
		}
	case "list":
		if len(args) == 1 {
			if l, ok := args[0].(*vList); ok {
				return &vList{items: slices.Clone(l.items)}, nil
			}
		}
	case "any":
		if len(args) == 1 {
			switch a := args[0].(type) {
			case vAnyName:
				return in.w.isMember(a.name, a.direct), nil
			case *vList:
				for _, it := range a.items {
					t, err := in.truthy(c, it)
					if err != nil || t {
						return t, err
					}
				}
				return false, nil
			}
		}
	}
	return nil, unreadable(c, "a call of %s that import does not read", f.name)
}

// comp reads the comprehensions over a user's groups that forum answers use:
//
//	[g.name for g in request.user.ak_groups.all()]        -> the names (for "x in ...")
//	any(g.name == "x" for g in request.user.groups.all()) -> membership of x
//	[g for g in request.user.groups.all() if g.name == "x"] -> groups filtered by x
func (in *interp) comp(e *pysyntax.Comp) (value, *readError) {
	if len(e.Clauses) != 1 || e.Kind == "dict" {
		return nil, unreadable(e, "a comprehension import does not read")
	}
	cl := e.Clauses[0]
	target, ok := cl.Target.(*pysyntax.Name)
	if !ok {
		return nil, unreadable(e, "a comprehension import does not read")
	}
	it, err := in.eval(cl.Iter)
	if err != nil {
		return nil, err
	}
	g, ok := it.(vGroups)
	if !ok || g.filtered {
		if l, isList := it.(*vList); isList && len(cl.Ifs) == 0 {
			return in.compList(e, target.ID, l)
		}
		return nil, unreadable(e, "a comprehension over something other than the user's groups or a list")
	}
	switch {
	case len(cl.Ifs) == 0 && isNameOf(e.Elt, target.ID):
		return vNames{direct: g.direct}, nil
	case len(cl.Ifs) == 0:
		if name, ok := in.nameEquals(e.Elt, target.ID); ok {
			return vAnyName{direct: g.direct, name: name}, nil
		}
	case len(cl.Ifs) == 1:
		if name, ok := in.nameEquals(cl.Ifs[0], target.ID); ok {
			if n, isName := e.Elt.(*pysyntax.Name); isName && n.ID == target.ID {
				return vGroups{direct: g.direct, name: name, filtered: true}, nil
			}
		}
	}
	return nil, unreadable(e, "a comprehension over the user's groups other than [g.name for g in ...] or g.name == \"...\"")
}

// compList evaluates a comprehension over a list literal, element by element.
func (in *interp) compList(e *pysyntax.Comp, target string, l *vList) (value, *readError) {
	saved, had := in.vars[target]
	defer func() {
		if had {
			in.vars[target] = saved
		} else {
			delete(in.vars, target)
		}
	}()
	out := &vList{}
	for _, item := range l.items {
		in.vars[target] = item
		v, err := in.eval(e.Elt)
		if err != nil {
			return nil, err
		}
		out.items = append(out.items, v)
	}
	return out, nil
}

// isNameOf reports whether e is "<target>.name".
func isNameOf(e pysyntax.Expr, target string) bool {
	a, ok := e.(*pysyntax.Attr)
	if !ok || a.Name != "name" {
		return false
	}
	n, ok := a.X.(*pysyntax.Name)
	return ok && n.ID == target
}

// nameEquals reads `<target>.name == "x"` (either side) and returns x.
func (in *interp) nameEquals(e pysyntax.Expr, target string) (string, bool) {
	c, ok := e.(*pysyntax.Compare)
	if !ok || len(c.Ops) != 1 || c.Ops[0] != "==" {
		return "", false
	}
	other := c.Rights[0]
	if !isNameOf(c.Left, target) {
		if !isNameOf(c.Rights[0], target) {
			return "", false
		}
		other = c.Left
	}
	if containsName(other, target) {
		return "", false
	}
	v, err := in.eval(other)
	if err != nil {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func containsName(e pysyntax.Expr, id string) bool {
	n, ok := e.(*pysyntax.Name)
	return ok && n.ID == id
}

func (in *interp) compare(e *pysyntax.Compare) (value, *readError) {
	left, err := in.eval(e.Left)
	if err != nil {
		return nil, err
	}
	for i, op := range e.Ops {
		right, err := in.eval(e.Rights[i])
		if err != nil {
			return nil, err
		}
		ok, err := in.compare1(e, op, left, right)
		if err != nil {
			return nil, err
		}
		if !ok {
			return false, nil
		}
		left = right
	}
	return true, nil
}

func (in *interp) compare1(e *pysyntax.Compare, op string, l, r value) (bool, *readError) {
	switch op {
	case "in", "not in":
		s, ok := l.(string)
		if !ok {
			return false, unreadable(e, "an \"in\" test of something other than a string")
		}
		var found bool
		switch r := r.(type) {
		case vNames:
			found = in.w.isMember(s, r.direct)
		case *vList:
			found = slices.ContainsFunc(r.items, func(v value) bool { return v == s })
		case string:
			found = strings.Contains(r, s)
		case vGroups:
			return false, unreadable(e, "tests a name \"in\" group objects, which is always false in authentik; compare with g.name or use ak_is_group_member")
		default:
			return false, unreadable(e, "an \"in\" test against something import does not read")
		}
		return found == (op == "in"), nil
	case "is", "is not":
		var same bool
		switch {
		case isNone(r):
			same = isNone(l)
		case r == true || r == false:
			same = l == r
		default:
			return false, unreadable(e, "an \"is\" test other than is None / is True / is False")
		}
		return same == (op == "is"), nil
	case "==", "!=":
		eq, ok := equalValues(l, r)
		if !ok {
			return false, unreadable(e, "an equality test of values import does not compare")
		}
		return eq == (op == "=="), nil
	case "<", "<=", ">", ">=":
		a, ok1 := l.(int64)
		b, ok2 := r.(int64)
		if !ok1 || !ok2 {
			return false, unreadable(e, "an ordering test of values other than numbers")
		}
		switch op {
		case "<":
			return a < b, nil
		case "<=":
			return a <= b, nil
		case ">":
			return a > b, nil
		}
		return a >= b, nil
	}
	return false, unreadable(e, "the comparison %s", op)
}

func isNone(v value) bool { _, ok := v.(vNone); return ok }

func equalValues(l, r value) (bool, bool) {
	switch l := l.(type) {
	case string, bool, int64:
		switch r.(type) {
		case string, bool, int64:
			return l == r, true
		case vNone:
			return false, true
		}
	case vNone:
		switch r.(type) {
		case vNone:
			return true, true
		case string, bool, int64:
			return false, true
		}
	case vPK:
		if isNone(r) {
			return false, true
		}
	}
	return false, false
}

func (in *interp) truthy(n pysyntax.Node, v value) (bool, *readError) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case vNone:
		return false, nil
	case string:
		return v != "", nil
	case int64:
		return v != 0, nil
	case *vList:
		return len(v.items) > 0, nil
	case *vDict:
		return len(v.keys) > 0, nil
	case vUser, vRequest, vPK:
		return true, nil
	case vGroups:
		if v.filtered {
			return in.w.isMember(v.name, v.direct), nil
		}
	}
	return false, unreadable(n, "the truth of a value that depends on more than membership of named groups")
}
