package pysyntax

// Span is the lines a node covers in the expression, 1-based, inclusive.
type Span struct{ Line, EndLine int }

// Lines returns the span itself; every node embeds a Span.
func (s Span) Lines() Span { return s }

// Node is any statement or expression.
type Node interface{ Lines() Span }

// Stmt is a statement.
type Stmt interface {
	Node
	stmt()
}

// Expr is an expression.
type Expr interface {
	Node
	expr()
}

// Statements.
type (
	// Return is "return" or "return X" (Value nil for the bare form).
	Return struct {
		Span
		Value Expr
	}
	// If is if/elif/else; an elif is an If alone in Else.
	If struct {
		Span
		Cond Expr
		Body []Stmt
		Else []Stmt
	}
	// Assign is "a = b = value"; targets are expressions (names, attributes, subscripts).
	Assign struct {
		Span
		Targets []Expr
		Value   Expr
	}
	// AugAssign is "a += value" and the like; Op is "+=" etc.
	AugAssign struct {
		Span
		Target Expr
		Op     string
		Value  Expr
	}
	// ExprStmt is an expression used as a statement (a call, a docstring).
	ExprStmt struct {
		Span
		X Expr
	}
	// Pass is "pass".
	Pass struct{ Span }
	// Unsupported is a statement outside the subset (for, while, try, import, ...). Keyword
	// names it; its lines are skipped whole.
	Unsupported struct {
		Span
		Keyword string
	}
)

// Expressions.
type (
	// Name is an identifier.
	Name struct {
		Span
		ID string
	}
	// Str is one string literal or several adjacent ones, concatenated.
	Str struct {
		Span
		Lit StrLit
	}
	// Const is None, True or False.
	Const struct {
		Span
		Value string
	}
	// Num is a number literal, kept as text.
	Num struct {
		Span
		Text string
	}
	// Attr is X.Name.
	Attr struct {
		Span
		X    Expr
		Name string
	}
	// Call is Fn(args, key=value); Star marks *args or **kwargs, which the subset reads no further.
	Call struct {
		Span
		Fn     Expr
		Args   []Expr
		Kwargs []Keyword
		Star   bool
	}
	// Subscript is X[Index] (Index nil for a slice).
	Subscript struct {
		Span
		X     Expr
		Index Expr
	}
	// List, Tuple and Set are displays; Dict holds keys and values in order.
	List struct {
		Span
		Elts []Expr
	}
	Tuple struct {
		Span
		Elts []Expr
	}
	Set struct {
		Span
		Elts []Expr
	}
	Dict struct {
		Span
		Keys, Values []Expr
		Star         bool // a **mapping entry
	}
	// Comp is a comprehension with one or more for clauses: Kind is "list", "set", "gen"
	// or "dict" (then Key is set).
	Comp struct {
		Span
		Kind    string
		Key     Expr
		Elt     Expr
		Clauses []CompFor
	}
	// BoolOp is "a and b and c" or "a or b".
	BoolOp struct {
		Span
		Op     string
		Values []Expr
	}
	// Not is "not X".
	Not struct {
		Span
		X Expr
	}
	// Compare is a chain "a < b == c"; Ops are "==", "!=", "<", "<=", ">", ">=", "in",
	// "not in", "is", "is not".
	Compare struct {
		Span
		Left   Expr
		Ops    []string
		Rights []Expr
	}
	// BinOp is arithmetic or bitwise: Op is "+", "-", "*", "/", "//", "%", "**", "@", "|",
	// "&", "^", "<<", ">>".
	BinOp struct {
		Span
		Op   string
		L, R Expr
	}
	// Unary is "-x", "+x" or "~x".
	Unary struct {
		Span
		Op string
		X  Expr
	}
	// IfExp is "a if cond else b".
	IfExp struct {
		Span
		Body, Cond, Else Expr
	}
	// Other is an expression outside the subset (lambda, await, yield, a walrus, a
	// starred expression, an ellipsis); What names it.
	Other struct {
		Span
		What string
	}
)

// Keyword is one key=value argument of a call.
type Keyword struct {
	Name  string
	Value Expr
}

// CompFor is "for Target in Iter if Ifs...".
type CompFor struct {
	Target Expr
	Iter   Expr
	Ifs    []Expr
}

func (*Return) stmt()      {}
func (*If) stmt()          {}
func (*Assign) stmt()      {}
func (*AugAssign) stmt()   {}
func (*ExprStmt) stmt()    {}
func (*Pass) stmt()        {}
func (*Unsupported) stmt() {}

func (*Name) expr()      {}
func (*Str) expr()       {}
func (*Const) expr()     {}
func (*Num) expr()       {}
func (*Attr) expr()      {}
func (*Call) expr()      {}
func (*Subscript) expr() {}
func (*List) expr()      {}
func (*Tuple) expr()     {}
func (*Set) expr()       {}
func (*Dict) expr()      {}
func (*Comp) expr()      {}
func (*BoolOp) expr()    {}
func (*Not) expr()       {}
func (*Compare) expr()   {}
func (*BinOp) expr()     {}
func (*Unary) expr()     {}
func (*IfExp) expr()     {}
func (*Other) expr()     {}
