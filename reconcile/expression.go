package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/akminio/akminio/config"
)

// RenderExpression renders the scope mapping's Python expression from the bindings: the
// same input always gives the same bytes, so the plan can compare expressions as strings.
//
// The shape, for match "first" (the guide's if/elif: the first binding whose group the
// user is in, directly or through a child group, gives the claim):
//
//	# Managed by akminio: rendered from its bindings (match: first).
//	# Changes made here are overwritten on akminio's next run.
//	if not request.user.is_authenticated or request.user.pk is None:
//	    return None
//	bindings = [
//	    ("Minio admins", ["consoleAdmin"]),
//	    ("Minio users", ["readonly", "my-custom-policy"]),
//	]
//	for group, policies in bindings:
//	    if ak_is_group_member(request.user, name=group):
//	        return {"policy": policies}
//	return None
//
// and for match "all" (the union of every matching binding, order kept, no duplicates) the
// loop collects instead:
//
//	claim = []
//	for group, policies in bindings:
//	    if ak_is_group_member(request.user, name=group):
//	        claim += [p for p in policies if p not in claim]
//	if not claim:
//	    return None
//	return {"policy": claim}
//
// The claim is always a list of policy names (MinIO accepts a list or a comma-separated
// string; a list holds any name). Each binding's policies are de-duplicated here, order kept.
// No match returns None: no claim, no access.
//
// A binding with everyone: true is written with None as its group, and only then does the
// test read "group is None or ak_is_group_member(...)"; configs without one render as before.
//
// The guard: authentik's discovery endpoint evaluates every mapping with guardian's
// anonymous user, a saved user row in no group, for which the loop finds nothing and the
// result is None anyway. The guard also covers the two other users authentik can put in
// request.user without a login: Django's AnonymousUser (is_authenticated False; it has no
// all_groups, so ak_is_group_member would raise) and the unsaved User() a PolicyRequest
// starts with (pk None; its groups cannot be queried). None of them reaches
// ak_is_group_member.
//
// Every group, policy and claim name is a Python string literal built by pyStr; nothing
// from the config reaches the source any other way (the header comment is fixed text). A
// match other than config.MatchAll renders as config.MatchFirst (config validation allows
// only the two).
func RenderExpression(bindings []config.Binding, match string, claim string) string {
	var b strings.Builder
	mode := config.MatchFirst
	if match == config.MatchAll {
		mode = config.MatchAll
	}
	b.WriteString("# Managed by akminio: rendered from its bindings (match: " + mode + ").\n")
	b.WriteString("# Changes made here are overwritten on akminio's next run.\n")
	b.WriteString("if not request.user.is_authenticated or request.user.pk is None:\n")
	b.WriteString("    return None\n")
	writeBindings(&b, bindings)
	c := pyStr(claim)
	test := "    if ak_is_group_member(request.user, name=group):\n"
	if slices.ContainsFunc(bindings, func(bd config.Binding) bool { return bd.Everyone }) {
		test = "    if group is None or ak_is_group_member(request.user, name=group):\n"
	}
	if mode == config.MatchAll {
		b.WriteString("claim = []\n")
		b.WriteString("for group, policies in bindings:\n")
		b.WriteString(test)
		b.WriteString("        claim += [p for p in policies if p not in claim]\n")
		b.WriteString("if not claim:\n")
		b.WriteString("    return None\n")
		b.WriteString("return {" + c + ": claim}\n")
		return b.String()
	}
	b.WriteString("for group, policies in bindings:\n")
	b.WriteString(test)
	b.WriteString("        return {" + c + ": policies}\n")
	b.WriteString("return None\n")
	return b.String()
}

// writeBindings writes the "bindings = [...]" literal, one (group, [policies]) per line.
func writeBindings(b *strings.Builder, bindings []config.Binding) {
	if len(bindings) == 0 {
		b.WriteString("bindings = []\n")
		return
	}
	b.WriteString("bindings = [\n")
	for _, bd := range bindings {
		group := pyStr(bd.Group)
		if bd.Everyone {
			group = "None"
		}
		b.WriteString("    (" + group + ", [")
		for i, p := range uniqueInOrder(bd.Policies) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStr(p))
		}
		b.WriteString("]),\n")
	}
	b.WriteString("]\n")
}

// uniqueInOrder drops repeated names, keeping the first occurrence of each.
func uniqueInOrder(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// pyStr returns s as a double-quoted Python 3 str literal that evaluates to exactly s.
//
// Why it is safe, whatever s holds:
//   - The literal has no prefix (no f, r, b, u), so braces are plain characters and a
//     backslash always starts an escape.
//   - Inside it, only `"` and `\` are special to Python's tokenizer; both are escaped
//     (\" and \\), so the literal ends only at the closing quote we write, and no
//     character of s can end it early, start code, or start a comment ('#' inside a string
//     is just a character). Runs of three quotes, single or double, are harmless too.
//   - It stays on one line: \n, \r and \t use their escapes; every other control character
//     (C0, DEL, C1 such as U+0085) uses \xNN. Non-ASCII characters are kept as UTF-8 only
//     when they are graphic and not a space separator (letters, marks, digits, punctuation,
//     symbols and emoji); everything else (U+2028/U+2029 line and paragraph separators,
//     bidi and other format controls, NBSP-like spaces, unassigned code points) becomes
//     \uXXXX or \UXXXXXXXX. This matters beyond Python's own tokenizer: authentik indents
//     the expression with textwrap.indent, whose str.splitlines also splits at \v, \f,
//     \x1c-\x1e, U+0085, U+2028 and U+2029, so any of those kept raw would get four spaces
//     inserted into the name. None is ever raw here.
//   - \x escapes take exactly two hex digits and \u exactly four, so a following character
//     can never extend an escape. NUL is written as \x00, which Python accepts in a literal
//     (a raw NUL in source is rejected); authentik, backed by PostgreSQL, cannot store a
//     NUL in a group name, so config validation should reject it anyway.
//   - Length does not matter: Python has no limit on a literal's length.
//
// Invalid UTF-8 cannot be represented in a Python str; each invalid byte becomes U+FFFD
// (written \ufffd). Config values come from YAML, which is valid UTF-8.
func pyStr(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0x80 && r != utf8.RuneError && unicode.IsGraphic(r) && !unicode.Is(unicode.Zs, r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
