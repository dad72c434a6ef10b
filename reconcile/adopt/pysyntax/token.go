// Package pysyntax reads the subset of Python that scope mapping expressions are written in:
// a tokenizer that follows Python's own rules (indentation with INDENT/DEDENT and its tab
// checks, implicit joining inside brackets, backslash continuations, comments, string
// literals with every prefix and escape) and a recursive-descent parser over Python's
// grammar for the statements and expressions such expressions use (if/elif/else, return,
// assignments, pass, calls, attribute access, comparisons, boolean operators, literals,
// comprehensions). It builds an AST; it never runs anything.
//
// authentik runs a mapping as the body of a function: it indents the text by four spaces
// with textwrap.indent and puts "def handler(...):" above it. Parse does the same
// indentation first, so an expression parses here exactly when authentik can compile it,
// with one difference: constructs outside the subset (for, while, try, lambda, ...) are
// not errors but Unsupported nodes, so a reader can say which lines it could not read.
package pysyntax

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is a token kind.
type Kind int

// Token kinds, as Python's tokenize module names them.
const (
	EOF Kind = iota
	NAME
	NUMBER
	STRING
	OP
	NEWLINE
	INDENT
	DEDENT
)

func (k Kind) String() string {
	return [...]string{"end of input", "name", "number", "string", "operator", "end of line", "indent", "dedent"}[k]
}

// Token is one token. Line is 1-based in the expression; EndLine differs for strings that
// span lines.
type Token struct {
	Kind    Kind
	Text    string // source text (for STRING the whole literal with prefix and quotes)
	Line    int
	EndLine int
	// For STRING: the decoded value and what kind of literal it is.
	Str StrLit
}

// StrLit is a decoded string literal.
type StrLit struct {
	Value  string
	Bytes  bool   // b"..."
	Format bool   // f"..." (not decoded: its value depends on run time)
	Bad    string // why Value could not be decoded (a \N{...} escape, a lone surrogate), "" if fine
}

// SyntaxError is input Python itself would reject.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// operators, longest first within each length.
var operators = []string{
	"**=", "//=", ">>=", "<<=", "...",
	"->", ":=", "==", "!=", "<=", ">=", "**", "//", "<<", ">>", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=",
	"(", ")", "[", "]", "{", "}", ":", ",", ";", ".", "+", "-", "*", "/", "%", "|", "&", "^", "~", "<", ">", "=", "@", "!",
}

// tokenizer turns source into tokens following CPython's tokenizer.
type tokenizer struct {
	src    string
	pos    int
	line   int
	indent []int // columns with tab size 8
	alt    []int // columns with tab size 1 (Python's tab consistency check)
	depth  int   // bracket nesting
	atBOL  bool  // at the beginning of a logical line
	out    []Token
}

// Tokenize splits src (already indented as authentik indents it) into tokens.
func Tokenize(src string) ([]Token, error) {
	t := &tokenizer{src: src, line: 1, indent: []int{0}, alt: []int{0}, atBOL: true}
	if err := t.run(); err != nil {
		return nil, err
	}
	return t.out, nil
}

func (t *tokenizer) emit(k Kind, text string, line int) {
	t.out = append(t.out, Token{Kind: k, Text: text, Line: line, EndLine: t.line})
}

func (t *tokenizer) errf(format string, args ...any) error {
	return &SyntaxError{Line: t.line, Msg: fmt.Sprintf(format, args...)}
}

func (t *tokenizer) run() error {
	for {
		if t.atBOL && t.depth == 0 {
			blank, err := t.indentation()
			if err != nil {
				return err
			}
			if blank {
				continue
			}
		}
		if t.pos >= len(t.src) {
			break
		}
		c := t.src[t.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\f':
			t.pos++
		case c == '#':
			t.skipComment()
		case c == '\\':
			if !t.lineEndAt(t.pos + 1) {
				return t.errf("unexpected character after line continuation character")
			}
			t.pos++
			t.newline()
			if t.pos >= len(t.src) {
				return t.errf("unexpected end of input after line continuation")
			}
		case c == '\n' || c == '\r':
			line := t.line
			t.newline()
			if t.depth == 0 {
				t.out = append(t.out, Token{Kind: NEWLINE, Text: "\n", Line: line, EndLine: line})
				t.atBOL = true
			}
		default:
			if err := t.token(); err != nil {
				return err
			}
		}
	}
	if t.depth > 0 {
		return t.errf("unexpected end of input: a bracket is not closed")
	}
	if n := len(t.out); n > 0 && t.out[n-1].Kind != NEWLINE && t.out[n-1].Kind != DEDENT {
		t.out = append(t.out, Token{Kind: NEWLINE, Line: t.line, EndLine: t.line})
	}
	for len(t.indent) > 1 {
		t.indent, t.alt = t.indent[:len(t.indent)-1], t.alt[:len(t.alt)-1]
		t.emit(DEDENT, "", t.line)
	}
	t.emit(EOF, "", t.line)
	return nil
}

// lineEndAt reports whether a line break starts at i.
func (t *tokenizer) lineEndAt(i int) bool {
	return i < len(t.src) && (t.src[i] == '\n' || t.src[i] == '\r')
}

// newline consumes one line break (\n, \r\n or \r) at t.pos.
func (t *tokenizer) newline() {
	if t.src[t.pos] == '\r' && t.pos+1 < len(t.src) && t.src[t.pos+1] == '\n' {
		t.pos++
	}
	t.pos++
	t.line++
}

func (t *tokenizer) skipComment() {
	for t.pos < len(t.src) && t.src[t.pos] != '\n' && t.src[t.pos] != '\r' {
		t.pos++
	}
}

// indentation measures the indentation of a new logical line and emits INDENT/DEDENT. It
// reports a blank line (only whitespace or a comment), which it consumes whole.
func (t *tokenizer) indentation() (blank bool, err error) {
	col, alt := 0, 0
	for t.pos < len(t.src) {
		switch t.src[t.pos] {
		case ' ':
			col, alt = col+1, alt+1
		case '\t':
			col, alt = (col/8+1)*8, alt+1
		case '\f':
			col, alt = 0, 0
		default:
			goto measured
		}
		t.pos++
	}
measured:
	if t.pos >= len(t.src) {
		return false, nil
	}
	switch t.src[t.pos] {
	case '#':
		t.skipComment()
		if t.pos < len(t.src) {
			t.newline()
		}
		return true, nil
	case '\n', '\r':
		t.newline()
		return true, nil
	case '\\':
		// A continuation at the start of a line: the indentation counts from here (rare).
	}
	t.atBOL = false
	top := len(t.indent) - 1
	switch {
	case col == t.indent[top]:
		if alt != t.alt[top] {
			return false, t.errf("inconsistent use of tabs and spaces in indentation")
		}
	case col > t.indent[top]:
		if alt <= t.alt[top] {
			return false, t.errf("inconsistent use of tabs and spaces in indentation")
		}
		t.indent, t.alt = append(t.indent, col), append(t.alt, alt)
		t.emit(INDENT, "", t.line)
	default:
		for len(t.indent) > 1 && col < t.indent[len(t.indent)-1] {
			t.indent, t.alt = t.indent[:len(t.indent)-1], t.alt[:len(t.alt)-1]
			t.emit(DEDENT, "", t.line)
		}
		if col != t.indent[len(t.indent)-1] {
			return false, t.errf("unindent does not match any outer indentation level")
		}
		if alt != t.alt[len(t.alt)-1] {
			return false, t.errf("inconsistent use of tabs and spaces in indentation")
		}
	}
	return false, nil
}

// token reads one NAME, NUMBER, STRING or OP at t.pos.
func (t *tokenizer) token() error {
	start, line := t.pos, t.line
	r, size := utf8.DecodeRuneInString(t.src[t.pos:])
	switch {
	case r == '\'' || r == '"':
		return t.str(start, "")
	case isIDStart(r):
		t.pos += size
		for t.pos < len(t.src) {
			r, size := utf8.DecodeRuneInString(t.src[t.pos:])
			if !isIDContinue(r) {
				break
			}
			t.pos += size
		}
		word := t.src[start:t.pos]
		if t.pos < len(t.src) && (t.src[t.pos] == '\'' || t.src[t.pos] == '"') && isStringPrefix(word) {
			return t.str(start, word)
		}
		t.emit(NAME, word, line)
		return nil
	case r >= '0' && r <= '9' || r == '.' && t.pos+1 < len(t.src) && t.src[t.pos+1] >= '0' && t.src[t.pos+1] <= '9':
		t.number()
		t.emit(NUMBER, t.src[start:t.pos], line)
		return nil
	}
	for _, op := range operators {
		if strings.HasPrefix(t.src[t.pos:], op) {
			t.pos += len(op)
			switch op {
			case "(", "[", "{":
				t.depth++
			case ")", "]", "}":
				if t.depth == 0 {
					return t.errf("unmatched %q", op)
				}
				t.depth--
			}
			t.emit(OP, op, line)
			return nil
		}
	}
	if r == utf8.RuneError && size == 1 {
		return t.errf("invalid UTF-8 in the expression")
	}
	return t.errf("invalid character %q", r)
}

func (t *tokenizer) number() {
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.':
			t.pos++
		case (c == '+' || c == '-') && (t.src[t.pos-1] == 'e' || t.src[t.pos-1] == 'E') &&
			!strings.HasPrefix(strings.ToLower(t.src[:t.pos]), "0x"):
			t.pos++
		default:
			return
		}
	}
}

func isIDStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r)
}

func isIDContinue(r rune) bool {
	return isIDStart(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) ||
		unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r)
}

// isStringPrefix reports whether word is a string prefix Python accepts (any case).
func isStringPrefix(word string) bool {
	switch strings.ToLower(word) {
	case "r", "u", "b", "br", "rb", "f", "fr", "rf":
		return true
	}
	return false
}

// str reads a string literal whose prefix (possibly "") starts at start; t.pos is at the
// opening quote.
func (t *tokenizer) str(start int, prefix string) error {
	line := t.line
	q := t.src[t.pos]
	quote := string(q)
	if strings.HasPrefix(t.src[t.pos:], strings.Repeat(quote, 3)) {
		quote = strings.Repeat(quote, 3)
	}
	t.pos += len(quote)
	bodyStart := t.pos
	for {
		if t.pos >= len(t.src) {
			return &SyntaxError{Line: line, Msg: "unterminated string literal"}
		}
		c := t.src[t.pos]
		switch {
		case c == '\\':
			t.pos++
			if t.pos < len(t.src) {
				if t.lineEndAt(t.pos) {
					t.newline()
				} else {
					t.pos++
				}
			}
			continue
		case c == '\n' || c == '\r':
			if len(quote) == 1 {
				return &SyntaxError{Line: line, Msg: "unterminated string literal"}
			}
			t.newline()
			continue
		case strings.HasPrefix(t.src[t.pos:], quote):
			body := t.src[bodyStart:t.pos]
			t.pos += len(quote)
			lit := decodeString(body, strings.ToLower(prefix))
			t.out = append(t.out, Token{Kind: STRING, Text: t.src[start:t.pos], Line: line, EndLine: t.line, Str: lit})
			return nil
		}
		t.pos++
	}
}

// decodeString decodes a literal's body as Python does for its prefix.
func decodeString(body, prefix string) StrLit {
	lit := StrLit{Bytes: strings.Contains(prefix, "b"), Format: strings.Contains(prefix, "f")}
	// Python normalises a \r\n or \r inside a literal to \n.
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	if lit.Format {
		lit.Value = body
		return lit
	}
	if strings.Contains(prefix, "r") {
		lit.Value = body
		return lit
	}
	v, bad := unescape(body, lit.Bytes)
	lit.Value, lit.Bad = v, bad
	return lit
}

// unescape applies Python's backslash escapes. bad explains a value Go cannot hold or this
// package does not decode.
func unescape(s string, bytesLit bool) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, j := int(e-'0'), 0
			for ; j < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; j++ {
				n = n*8 + int(s[i]-'0')
				i++
			}
			b.WriteRune(rune(n))
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if bytesLit && e != 'x' {
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			if i+width > len(s) || !isHex(s[i:i+width]) {
				return "", fmt.Sprintf(`truncated \%c escape`, e)
			}
			var n int
			fmt.Sscanf(s[i:i+width], "%x", &n)
			i += width
			switch {
			case n > unicode.MaxRune:
				return "", fmt.Sprintf(`\%c escape out of range`, e)
			case n >= 0xd800 && n <= 0xdfff:
				return "", "a lone surrogate (\\u" + fmt.Sprintf("%04x", n) + ") has no UTF-8 form"
			}
			b.WriteRune(rune(n))
		case 'N':
			if bytesLit {
				b.WriteString(`\N`)
				continue
			}
			return "", `named \N{...} escapes are not decoded`
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return b.String(), ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// IndentLikeAuthentik indents text by four spaces the way textwrap.indent does: every line
// (as Python's str.splitlines splits them) that is not whitespace only gets the prefix.
func IndentLikeAuthentik(text string) string {
	var b strings.Builder
	for _, line := range splitLinesKeepEnds(text) {
		if strings.TrimFunc(line, isPySpace) != "" {
			b.WriteString("    ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// splitLinesKeepEnds is Python's str.splitlines(keepends=True).
func splitLinesKeepEnds(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		end := i + size
		switch r {
		case '\r':
			if end < len(s) && s[end] == '\n' {
				end++
			}
			fallthrough
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			out = append(out, s[start:end])
			start = end
		}
		i = end
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// isPySpace is str.isspace for one character.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}
