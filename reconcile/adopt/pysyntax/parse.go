package pysyntax

import (
	"fmt"
	"slices"
)

// Parse reads an expression as authentik runs it (the body of a function, indented by
// four spaces) and returns its statements. A *SyntaxError means Python would not compile
// it either; everything Python accepts but the subset does not is an Unsupported statement
// or an Other expression in the result.
func Parse(expression string) ([]Stmt, error) {
	toks, err := Tokenize(IndentLikeAuthentik(expression))
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().Kind == EOF {
		return nil, nil // an empty body: Python rejects it, authentik's field never holds one
	}
	if !p.accept(INDENT, "") {
		return nil, p.errf("expected an indented block")
	}
	body, err := p.block()
	if err != nil {
		return nil, err
	}
	if p.peek().Kind != EOF {
		return nil, p.errf("unexpected %s", p.describe())
	}
	return body, nil
}

type parser struct {
	toks []Token
	i    int
}

func (p *parser) peek() Token { return p.toks[p.i] }
func (p *parser) at(k Kind, text string) bool {
	t := p.toks[p.i]
	return t.Kind == k && (text == "" || t.Text == text)
}
func (p *parser) next() Token {
	t := p.toks[p.i]
	if t.Kind != EOF {
		p.i++
	}
	return t
}
func (p *parser) accept(k Kind, text string) bool {
	if p.at(k, text) {
		p.next()
		return true
	}
	return false
}
func (p *parser) expect(k Kind, text string) (Token, error) {
	if p.at(k, text) {
		return p.next(), nil
	}
	want := text
	if want == "" {
		want = k.String()
	}
	return Token{}, p.errf("expected %q, found %s", want, p.describe())
}
func (p *parser) describe() string {
	t := p.peek()
	if t.Kind == OP || t.Kind == NAME {
		return fmt.Sprintf("%q", t.Text)
	}
	return t.Kind.String()
}
func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Line: p.peek().Line, Msg: fmt.Sprintf(format, args...)}
}

// line is the line of the last token consumed.
func (p *parser) line() int {
	for j := p.i - 1; j >= 0; j-- {
		if k := p.toks[j].Kind; k != DEDENT && k != INDENT {
			return p.toks[j].EndLine
		}
	}
	return p.toks[0].Line
}

// block reads statements until the DEDENT that closes the block.
func (p *parser) block() ([]Stmt, error) {
	var out []Stmt
	for !p.accept(DEDENT, "") {
		if p.at(EOF, "") {
			return nil, p.errf("unexpected end of input in a block")
		}
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// compound statements the subset does not read: their whole block is skipped.
var unsupportedCompound = []string{"for", "while", "try", "with", "def", "class", "async", "match", "else", "except", "finally", "elif", "case"}

// simple statements the subset does not read.
var unsupportedSimple = []string{"import", "from", "global", "nonlocal", "del", "assert", "raise", "break", "continue", "yield", "await"}

// statement reads one line's statements (several when separated by ";").
func (p *parser) statement() ([]Stmt, error) {
	t := p.peek()
	if t.Kind == NAME {
		switch {
		case t.Text == "if":
			s, err := p.ifStmt()
			if err != nil {
				return nil, err
			}
			return []Stmt{s}, nil
		case slices.Contains(unsupportedCompound, t.Text) && p.isCompoundHeader():
			return []Stmt{p.skipCompound(t.Text)}, nil
		}
	}
	if t.Kind == OP && t.Text == "@" {
		return []Stmt{p.skipCompound("@")}, nil
	}
	var out []Stmt
	for {
		s, err := p.simple()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if !p.accept(OP, ";") || p.at(NEWLINE, "") {
			break
		}
	}
	if _, err := p.expect(NEWLINE, ""); err != nil {
		return nil, err
	}
	return out, nil
}

// isCompoundHeader tells "match x:" (a statement) from "match = 1" (a name): the line holds
// a ":" outside brackets. For the other keywords it is always true.
func (p *parser) isCompoundHeader() bool {
	if w := p.peek().Text; w != "match" && w != "case" {
		return true
	}
	depth := 0
	for j := p.i + 1; j < len(p.toks) && p.toks[j].Kind != NEWLINE; j++ {
		switch p.toks[j].Text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case ":":
			if depth == 0 {
				return p.toks[j-1].Kind != NAME || p.toks[j-1].Text != "match"
			}
		}
	}
	return false
}

// skipCompound skips a compound statement: its header line and its block (or its
// one-line body), and, for try and if-like chains, the clauses that follow.
func (p *parser) skipCompound(keyword string) Stmt {
	start := p.peek().Line
	for {
		p.skipLine()
		if p.accept(INDENT, "") {
			p.skipBlock()
		}
		nt := p.peek()
		if nt.Kind == NAME && slices.Contains([]string{"else", "elif", "except", "finally", "case"}, nt.Text) && keyword != "def" && keyword != "class" {
			continue
		}
		if keyword == "@" && nt.Kind == NAME && (nt.Text == "def" || nt.Text == "class" || nt.Text == "async") {
			continue
		}
		if keyword == "@" && nt.Kind == OP && nt.Text == "@" {
			continue
		}
		break
	}
	return &Unsupported{Span: Span{start, p.line()}, Keyword: keyword}
}

// skipLine consumes tokens up to and including the next NEWLINE.
func (p *parser) skipLine() {
	for !p.at(EOF, "") {
		if p.next().Kind == NEWLINE {
			return
		}
	}
}

// skipBlock consumes tokens up to the DEDENT matching an INDENT already consumed.
func (p *parser) skipBlock() {
	depth := 1
	for depth > 0 && !p.at(EOF, "") {
		switch p.next().Kind {
		case INDENT:
			depth++
		case DEDENT:
			depth--
		}
	}
}

func (p *parser) ifStmt() (Stmt, error) {
	start := p.next().Line // "if" or "elif"
	cond, err := p.namedTest()
	if err != nil {
		return nil, err
	}
	body, err := p.suite()
	if err != nil {
		return nil, err
	}
	s := &If{Cond: cond, Body: body}
	switch {
	case p.at(NAME, "elif"):
		elif, err := p.ifStmt()
		if err != nil {
			return nil, err
		}
		s.Else = []Stmt{elif}
	case p.at(NAME, "else"):
		p.next()
		if s.Else, err = p.suite(); err != nil {
			return nil, err
		}
	}
	s.Span = Span{start, p.line()}
	return s, nil
}

// suite is ":" then a block on the following lines or simple statements on the same line.
func (p *parser) suite() ([]Stmt, error) {
	if _, err := p.expect(OP, ":"); err != nil {
		return nil, err
	}
	if p.accept(NEWLINE, "") {
		if !p.accept(INDENT, "") {
			return nil, p.errf("expected an indented block")
		}
		return p.block()
	}
	return p.statement()
}

// simple reads one simple statement.
func (p *parser) simple() (Stmt, error) {
	t := p.peek()
	start := t.Line
	if t.Kind == NAME {
		switch {
		case t.Text == "pass":
			p.next()
			return &Pass{Span{start, start}}, nil
		case t.Text == "return":
			p.next()
			r := &Return{}
			if !p.at(NEWLINE, "") && !p.at(OP, ";") {
				v, err := p.testList()
				if err != nil {
					return nil, err
				}
				r.Value = v
			}
			r.Span = Span{start, p.line()}
			return r, nil
		case slices.Contains(unsupportedSimple, t.Text):
			for !p.at(NEWLINE, "") && !p.at(OP, ";") && !p.at(EOF, "") {
				p.next()
			}
			return &Unsupported{Span: Span{start, p.line()}, Keyword: t.Text}, nil
		}
	}
	x, err := p.testList()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.Kind == OP && len(t.Text) >= 2 && t.Text[len(t.Text)-1] == '=' && !slices.Contains([]string{"==", "!=", "<=", ">="}, t.Text) {
		p.next()
		v, err := p.testList()
		if err != nil {
			return nil, err
		}
		return &AugAssign{Span: Span{start, p.line()}, Target: x, Op: t.Text, Value: v}, nil
	}
	if p.at(OP, ":") { // an annotation: "x: int = 1"
		for !p.at(NEWLINE, "") && !p.at(OP, ";") && !p.at(EOF, "") {
			p.next()
		}
		return &Unsupported{Span: Span{start, p.line()}, Keyword: "annotation"}, nil
	}
	if !p.at(OP, "=") {
		return &ExprStmt{Span: Span{start, p.line()}, X: x}, nil
	}
	a := &Assign{Targets: []Expr{x}}
	for p.accept(OP, "=") {
		v, err := p.testList()
		if err != nil {
			return nil, err
		}
		a.Targets = append(a.Targets, v)
	}
	a.Value = a.Targets[len(a.Targets)-1]
	a.Targets = a.Targets[:len(a.Targets)-1]
	a.Span = Span{start, p.line()}
	return a, nil
}

// testList is a test or a tuple of tests without parentheses.
func (p *parser) testList() (Expr, error) {
	start := p.peek().Line
	x, err := p.starTest()
	if err != nil {
		return nil, err
	}
	if !p.at(OP, ",") {
		return x, nil
	}
	tup := &Tuple{Elts: []Expr{x}}
	for p.accept(OP, ",") {
		if p.endOfTestList() {
			break
		}
		y, err := p.starTest()
		if err != nil {
			return nil, err
		}
		tup.Elts = append(tup.Elts, y)
	}
	tup.Span = Span{start, p.line()}
	return tup, nil
}

func (p *parser) endOfTestList() bool {
	t := p.peek()
	return t.Kind == NEWLINE || t.Kind == EOF || t.Kind == OP && slices.Contains([]string{"=", ";", ")", "]", "}", ":"}, t.Text) ||
		t.Kind == OP && len(t.Text) >= 2 && t.Text[len(t.Text)-1] == '=' && !slices.Contains([]string{"==", "!=", "<=", ">="}, t.Text)
}

// starTest is a test or "*x" (kept as Other).
func (p *parser) starTest() (Expr, error) {
	if p.at(OP, "*") {
		start := p.next().Line
		if _, err := p.orExpr(); err != nil {
			return nil, err
		}
		return &Other{Span{start, p.line()}, "a starred expression"}, nil
	}
	return p.test()
}

// namedTest is a test or "name := test" (kept as Other).
func (p *parser) namedTest() (Expr, error) {
	start := p.peek().Line
	x, err := p.test()
	if err != nil {
		return nil, err
	}
	if p.accept(OP, ":=") {
		if _, err := p.test(); err != nil {
			return nil, err
		}
		return &Other{Span{start, p.line()}, "an assignment expression (:=)"}, nil
	}
	return x, nil
}

// test is "a if c else b", a lambda, or an or-test.
func (p *parser) test() (Expr, error) {
	start := p.peek().Line
	if p.at(NAME, "lambda") {
		p.next()
		for !p.at(OP, ":") && !p.at(EOF, "") && !p.at(NEWLINE, "") {
			p.next()
		}
		if _, err := p.expect(OP, ":"); err != nil {
			return nil, err
		}
		if _, err := p.test(); err != nil {
			return nil, err
		}
		return &Other{Span{start, p.line()}, "a lambda"}, nil
	}
	x, err := p.orTest()
	if err != nil {
		return nil, err
	}
	if !p.at(NAME, "if") {
		return x, nil
	}
	p.next()
	cond, err := p.orTest()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(NAME, "else"); err != nil {
		return nil, err
	}
	els, err := p.test()
	if err != nil {
		return nil, err
	}
	return &IfExp{Span: Span{start, p.line()}, Body: x, Cond: cond, Else: els}, nil
}

func (p *parser) orTest() (Expr, error)  { return p.boolChain("or", p.andTest) }
func (p *parser) andTest() (Expr, error) { return p.boolChain("and", p.notTest) }

func (p *parser) boolChain(op string, sub func() (Expr, error)) (Expr, error) {
	start := p.peek().Line
	x, err := sub()
	if err != nil {
		return nil, err
	}
	if !p.at(NAME, op) {
		return x, nil
	}
	b := &BoolOp{Op: op, Values: []Expr{x}}
	for p.accept(NAME, op) {
		y, err := sub()
		if err != nil {
			return nil, err
		}
		b.Values = append(b.Values, y)
	}
	b.Span = Span{start, p.line()}
	return b, nil
}

func (p *parser) notTest() (Expr, error) {
	if p.at(NAME, "not") {
		start := p.next().Line
		x, err := p.notTest()
		if err != nil {
			return nil, err
		}
		return &Not{Span: Span{start, p.line()}, X: x}, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (Expr, error) {
	start := p.peek().Line
	x, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	c := &Compare{Left: x}
	for {
		t := p.peek()
		var op string
		switch {
		case t.Kind == OP && slices.Contains([]string{"==", "!=", "<", "<=", ">", ">="}, t.Text):
			op = t.Text
			p.next()
		case t.Kind == NAME && t.Text == "in":
			op = "in"
			p.next()
		case t.Kind == NAME && t.Text == "not" && p.toks[p.i+1].Kind == NAME && p.toks[p.i+1].Text == "in":
			op = "not in"
			p.next()
			p.next()
		case t.Kind == NAME && t.Text == "is":
			p.next()
			op = "is"
			if p.accept(NAME, "not") {
				op = "is not"
			}
		}
		if op == "" {
			break
		}
		y, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		c.Ops = append(c.Ops, op)
		c.Rights = append(c.Rights, y)
	}
	if len(c.Ops) == 0 {
		return x, nil
	}
	c.Span = Span{start, p.line()}
	return c, nil
}

// binary operator levels, loosest first (Python's expr grammar).
var binLevels = [][]string{{"|"}, {"^"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "//", "%", "@"}}

func (p *parser) orExpr() (Expr, error) { return p.binary(0) }

func (p *parser) binary(level int) (Expr, error) {
	if level == len(binLevels) {
		return p.factor()
	}
	start := p.peek().Line
	x, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for p.peek().Kind == OP && slices.Contains(binLevels[level], p.peek().Text) {
		op := p.next().Text
		y, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		x = &BinOp{Span: Span{start, p.line()}, Op: op, L: x, R: y}
	}
	return x, nil
}

func (p *parser) factor() (Expr, error) {
	if t := p.peek(); t.Kind == OP && (t.Text == "-" || t.Text == "+" || t.Text == "~") {
		p.next()
		x, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &Unary{Span: Span{t.Line, p.line()}, Op: t.Text, X: x}, nil
	}
	return p.power()
}

func (p *parser) power() (Expr, error) {
	start := p.peek().Line
	if p.at(NAME, "await") {
		p.next()
		if _, err := p.power(); err != nil {
			return nil, err
		}
		return &Other{Span{start, p.line()}, "await"}, nil
	}
	x, err := p.trailers()
	if err != nil {
		return nil, err
	}
	if p.accept(OP, "**") {
		y, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &BinOp{Span: Span{start, p.line()}, Op: "**", L: x, R: y}, nil
	}
	return x, nil
}

func (p *parser) trailers() (Expr, error) {
	start := p.peek().Line
	x, err := p.atom()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.accept(OP, "."):
			n, err := p.expect(NAME, "")
			if err != nil {
				return nil, err
			}
			x = &Attr{Span: Span{start, p.line()}, X: x, Name: n.Text}
		case p.accept(OP, "("):
			c, err := p.callArgs(x)
			if err != nil {
				return nil, err
			}
			c.Span = Span{start, p.line()}
			x = c
		case p.accept(OP, "["):
			s := &Subscript{X: x}
			idx, err := p.subscript()
			if err != nil {
				return nil, err
			}
			s.Index = idx
			if _, err := p.expect(OP, "]"); err != nil {
				return nil, err
			}
			s.Span = Span{start, p.line()}
			x = s
		default:
			return x, nil
		}
	}
}

// subscript reads an index or a slice (returned as nil).
func (p *parser) subscript() (Expr, error) {
	var idx Expr
	slice := false
	for !p.at(OP, "]") && !p.at(EOF, "") {
		if p.accept(OP, ":") || p.accept(OP, ",") {
			slice = true
			continue
		}
		x, err := p.test()
		if err != nil {
			return nil, err
		}
		if idx == nil {
			idx = x
		} else {
			slice = true
		}
	}
	if slice {
		return nil, nil
	}
	return idx, nil
}

func (p *parser) callArgs(fn Expr) (*Call, error) {
	c := &Call{Fn: fn}
	for !p.accept(OP, ")") {
		switch {
		case p.at(OP, "*") || p.at(OP, "**"):
			p.next()
			if _, err := p.test(); err != nil {
				return nil, err
			}
			c.Star = true
		case p.peek().Kind == NAME && p.toks[p.i+1].Kind == OP && p.toks[p.i+1].Text == "=":
			name := p.next().Text
			p.next()
			v, err := p.test()
			if err != nil {
				return nil, err
			}
			c.Kwargs = append(c.Kwargs, Keyword{name, v})
		default:
			start := p.peek().Line
			x, err := p.namedTest()
			if err != nil {
				return nil, err
			}
			if p.at(NAME, "for") || p.at(NAME, "async") {
				comp, err := p.compClauses("gen", nil, x, start)
				if err != nil {
					return nil, err
				}
				x = comp
			}
			c.Args = append(c.Args, x)
		}
		if !p.accept(OP, ",") {
			if _, err := p.expect(OP, ")"); err != nil {
				return nil, err
			}
			break
		}
	}
	return c, nil
}

// compClauses reads "for T in X if C ..." clauses after the element.
func (p *parser) compClauses(kind string, key, elt Expr, start int) (*Comp, error) {
	c := &Comp{Kind: kind, Key: key, Elt: elt}
	for p.at(NAME, "for") || p.at(NAME, "async") {
		p.accept(NAME, "async")
		if _, err := p.expect(NAME, "for"); err != nil {
			return nil, err
		}
		target, err := p.targetList()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(NAME, "in"); err != nil {
			return nil, err
		}
		iter, err := p.orTest()
		if err != nil {
			return nil, err
		}
		cf := CompFor{Target: target, Iter: iter}
		for p.accept(NAME, "if") {
			cond, err := p.orTestNoCond()
			if err != nil {
				return nil, err
			}
			cf.Ifs = append(cf.Ifs, cond)
		}
		c.Clauses = append(c.Clauses, cf)
	}
	c.Span = Span{start, p.line()}
	return c, nil
}

func (p *parser) orTestNoCond() (Expr, error) { return p.orTest() }

// targetList is the target of a for clause: names, possibly a tuple.
func (p *parser) targetList() (Expr, error) {
	start := p.peek().Line
	x, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if !p.at(OP, ",") {
		return x, nil
	}
	tup := &Tuple{Elts: []Expr{x}}
	for p.accept(OP, ",") {
		if p.at(NAME, "in") {
			break
		}
		y, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		tup.Elts = append(tup.Elts, y)
	}
	tup.Span = Span{start, p.line()}
	return tup, nil
}

func (p *parser) atom() (Expr, error) {
	t := p.peek()
	switch t.Kind {
	case NAME:
		if slices.Contains(keywords, t.Text) {
			switch t.Text {
			case "None", "True", "False":
				p.next()
				return &Const{Span{t.Line, t.Line}, t.Text}, nil
			case "yield":
				p.next()
				for !p.at(OP, ")") && !p.at(NEWLINE, "") && !p.at(EOF, "") {
					p.next()
				}
				return &Other{Span{t.Line, p.line()}, "yield"}, nil
			}
			return nil, p.errf("unexpected keyword %q", t.Text)
		}
		p.next()
		return &Name{Span{t.Line, t.Line}, t.Text}, nil
	case NUMBER:
		p.next()
		return &Num{Span{t.Line, t.Line}, t.Text}, nil
	case STRING:
		return p.strings()
	case OP:
		switch t.Text {
		case "(":
			p.next()
			return p.paren(t.Line)
		case "[":
			p.next()
			return p.listDisplay(t.Line)
		case "{":
			p.next()
			return p.braceDisplay(t.Line)
		case "...":
			p.next()
			return &Other{Span{t.Line, t.Line}, "an ellipsis"}, nil
		}
	}
	return nil, p.errf("unexpected %s", p.describe())
}

// keywords of Python 3 that cannot be names.
var keywords = []string{"False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
	"continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
	"in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield"}

// strings concatenates adjacent string literals, as Python does at compile time.
func (p *parser) strings() (Expr, error) {
	first := p.peek()
	s := &Str{Lit: StrLit{}}
	n := 0
	for p.at(STRING, "") {
		t := p.next()
		if n > 0 && t.Str.Bytes != s.Lit.Bytes {
			return nil, &SyntaxError{Line: t.Line, Msg: "cannot mix bytes and nonbytes literals"}
		}
		s.Lit.Value += t.Str.Value
		s.Lit.Bytes = t.Str.Bytes
		s.Lit.Format = s.Lit.Format || t.Str.Format
		if s.Lit.Bad == "" {
			s.Lit.Bad = t.Str.Bad
		}
		n++
	}
	s.Span = Span{first.Line, p.line()}
	return s, nil
}

// paren reads what follows "(": a parenthesised test, a tuple or a generator.
func (p *parser) paren(start int) (Expr, error) {
	if p.accept(OP, ")") {
		return &Tuple{Span: Span{start, p.line()}}, nil
	}
	x, err := p.namedTestOrStar()
	if err != nil {
		return nil, err
	}
	if p.at(NAME, "for") || p.at(NAME, "async") {
		c, err := p.compClauses("gen", nil, x, start)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(OP, ")"); err != nil {
			return nil, err
		}
		c.Span = Span{start, p.line()}
		return c, nil
	}
	if p.accept(OP, ")") {
		return x, nil
	}
	tup := &Tuple{Elts: []Expr{x}}
	for p.accept(OP, ",") {
		if p.at(OP, ")") {
			break
		}
		y, err := p.namedTestOrStar()
		if err != nil {
			return nil, err
		}
		tup.Elts = append(tup.Elts, y)
	}
	if _, err := p.expect(OP, ")"); err != nil {
		return nil, err
	}
	tup.Span = Span{start, p.line()}
	return tup, nil
}

func (p *parser) namedTestOrStar() (Expr, error) {
	if p.at(OP, "*") {
		return p.starTest()
	}
	return p.namedTest()
}

func (p *parser) listDisplay(start int) (Expr, error) {
	l := &List{}
	if p.accept(OP, "]") {
		l.Span = Span{start, p.line()}
		return l, nil
	}
	x, err := p.namedTestOrStar()
	if err != nil {
		return nil, err
	}
	if p.at(NAME, "for") || p.at(NAME, "async") {
		c, err := p.compClauses("list", nil, x, start)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(OP, "]"); err != nil {
			return nil, err
		}
		c.Span = Span{start, p.line()}
		return c, nil
	}
	l.Elts = append(l.Elts, x)
	for p.accept(OP, ",") {
		if p.at(OP, "]") {
			break
		}
		y, err := p.namedTestOrStar()
		if err != nil {
			return nil, err
		}
		l.Elts = append(l.Elts, y)
	}
	if _, err := p.expect(OP, "]"); err != nil {
		return nil, err
	}
	l.Span = Span{start, p.line()}
	return l, nil
}

func (p *parser) braceDisplay(start int) (Expr, error) {
	if p.accept(OP, "}") {
		return &Dict{Span: Span{start, p.line()}}, nil
	}
	if p.accept(OP, "**") {
		if _, err := p.orExpr(); err != nil {
			return nil, err
		}
		d := &Dict{Star: true}
		return p.dictRest(d, start)
	}
	first, err := p.namedTestOrStar()
	if err != nil {
		return nil, err
	}
	if p.accept(OP, ":") {
		v, err := p.test()
		if err != nil {
			return nil, err
		}
		if p.at(NAME, "for") || p.at(NAME, "async") {
			c, err := p.compClauses("dict", first, v, start)
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(OP, "}"); err != nil {
				return nil, err
			}
			c.Span = Span{start, p.line()}
			return c, nil
		}
		d := &Dict{Keys: []Expr{first}, Values: []Expr{v}}
		return p.dictRest(d, start)
	}
	if p.at(NAME, "for") || p.at(NAME, "async") {
		c, err := p.compClauses("set", nil, first, start)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(OP, "}"); err != nil {
			return nil, err
		}
		c.Span = Span{start, p.line()}
		return c, nil
	}
	s := &Set{Elts: []Expr{first}}
	for p.accept(OP, ",") {
		if p.at(OP, "}") {
			break
		}
		y, err := p.namedTestOrStar()
		if err != nil {
			return nil, err
		}
		s.Elts = append(s.Elts, y)
	}
	if _, err := p.expect(OP, "}"); err != nil {
		return nil, err
	}
	s.Span = Span{start, p.line()}
	return s, nil
}

// dictRest reads ", key: value" pairs (or ", **m") up to "}".
func (p *parser) dictRest(d *Dict, start int) (Expr, error) {
	for p.accept(OP, ",") {
		if p.at(OP, "}") {
			break
		}
		if p.accept(OP, "**") {
			if _, err := p.orExpr(); err != nil {
				return nil, err
			}
			d.Star = true
			continue
		}
		k, err := p.test()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(OP, ":"); err != nil {
			return nil, err
		}
		v, err := p.test()
		if err != nil {
			return nil, err
		}
		d.Keys, d.Values = append(d.Keys, k), append(d.Values, v)
	}
	if _, err := p.expect(OP, "}"); err != nil {
		return nil, err
	}
	d.Span = Span{start, p.line()}
	return d, nil
}
