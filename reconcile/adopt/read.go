// Package adopt takes over an existing, hand-made setup: it reads a scope mapping
// expression written after authentik's MinIO guide (or a forum answer) into akminio's
// bindings, and builds a complete config from what authentik and MinIO hold.
//
// Reading an expression is exact or it fails, line by line: the expression is parsed with
// a real parser of Python's grammar (package pysyntax), then run by a small evaluator for
// every combination of memberships of the groups it names. The bindings and match mode
// are then chosen so that they give the same policies for every combination; when no
// bindings can, or when a line depends on anything but group membership, ReadExpression
// says which lines and why, and returns no bindings.
package adopt

import (
	"fmt"
	"slices"
	"strings"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/adopt/pysyntax"
)

// MaxGroups bounds the groups an expression may name: every combination of them is
// evaluated (2^MaxGroups runs of a small evaluator).
const MaxGroups = 14

// Problem is a part of the expression that could not be read.
type Problem struct {
	Line, EndLine int    // 1-based lines of the expression; 0 when it concerns the whole
	Why           string // what is wrong
	Source        string // the lines themselves
}

func (p Problem) String() string {
	switch {
	case p.Line == 0:
		return p.Why
	case p.EndLine > p.Line:
		return fmt.Sprintf("lines %d-%d: %s\n    %s", p.Line, p.EndLine, p.Why, strings.ReplaceAll(p.Source, "\n", "\n    "))
	}
	return fmt.Sprintf("line %d: %s\n    %s", p.Line, p.Why, p.Source)
}

// Reading is what ReadExpression made of an expression.
type Reading struct {
	// Bindings and Match reproduce the expression exactly (nil Bindings when Problems is
	// not empty). An expression that gives nobody anything reads as no bindings at all.
	Bindings []config.Binding
	Match    string
	// Groups are the groups the expression tests, in order of first use; known even when
	// the expression is not fully read, as far as evaluation got.
	Groups []string
	// DirectGroups are the groups tested by direct membership (request.user.groups,
	// ak_groups): bindings match members of child groups too, so these read exactly only
	// when the group has no child group. The caller checks that against authentik.
	DirectGroups []string
	Problems     []Problem
}

// ReadExpression reads expr, a scope mapping expression whose claim MinIO reads as claim.
func ReadExpression(expr, claim string) Reading {
	r := Reading{Match: config.MatchFirst}
	lines := strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(expr), "\n")
	problem := func(span pysyntax.Span, why string) {
		p := Problem{Line: span.Line, EndLine: span.EndLine, Why: why}
		if span.Line >= 1 && span.Line <= len(lines) {
			end := min(max(span.EndLine, span.Line), len(lines))
			p.Source = strings.Join(lines[span.Line-1:end], "\n")
		}
		if !slices.ContainsFunc(r.Problems, func(q Problem) bool { return q.Line == p.Line && q.Why == p.Why }) {
			r.Problems = append(r.Problems, p)
		}
	}
	body, err := pysyntax.Parse(expr)
	if err != nil {
		if se, ok := err.(*pysyntax.SyntaxError); ok {
			problem(pysyntax.Span{Line: se.Line, EndLine: se.Line}, "Python would not compile this: "+se.Msg)
		} else {
			problem(pysyntax.Span{}, err.Error())
		}
		return r
	}
	if b, match, ok := readRendered(expr, body, claim); ok {
		r.Bindings, r.Match = b, match
		for _, bd := range b {
			if !bd.Everyone {
				r.Groups = append(r.Groups, bd.Group)
			}
		}
		return r
	}
	table, groups, direct, errs := evaluateAll(body, claim)
	r.Groups, r.DirectGroups = groups, direct
	for _, e := range errs {
		problem(e.span, e.why)
	}
	if len(r.Problems) > 0 {
		slices.SortStableFunc(r.Problems, func(a, b Problem) int { return a.Line - b.Line })
		return r
	}
	whole := pysyntax.Span{Line: 1, EndLine: len(lines)}
	if b, ok := synthFirst(table, groups); ok {
		r.Bindings, r.Match = b, config.MatchFirst
	} else if b, ok := synthAll(table, groups); ok {
		r.Bindings, r.Match = b, config.MatchAll
	} else {
		problem(whole, "no bindings reproduce it, with match first or all: "+counterexample(table, groups))
	}
	return r
}

// truth is the outcome for every combination of memberships: index bit i set means a
// member of groups[i].
type truth []outcome

// evaluateAll runs the expression for every combination of the groups it tests. The
// groups are found as evaluation asks about them: a run that asks about a new group
// starts the enumeration again with that group added.
func evaluateAll(body []pysyntax.Stmt, claim string) (truth, []string, []string, []*readError) {
	var groups []string
	direct := map[string]bool{}
	for {
		n := len(groups)
		table := make(truth, 1<<n)
		var errs []*readError
		grown := false
		for mask := range table {
			asked := &askLog{known: groups}
			w := &world{member: map[string]bool{}, direct: direct, ask: asked.note}
			for i, g := range groups {
				if mask&(1<<i) != 0 {
					w.member[g] = true
				}
			}
			out, err := (&interp{w: w, claim: claim}).run(body)
			if len(asked.added) > 0 {
				groups = append(groups, asked.added...)
				grown = true
				break
			}
			if err != nil {
				if !slices.ContainsFunc(errs, func(e *readError) bool { return e.span == err.span && e.why == err.why }) {
					errs = append(errs, err)
				}
				continue
			}
			table[mask] = out
		}
		if grown {
			if len(groups) > MaxGroups {
				return nil, groups[:MaxGroups], sortedKeys(direct), []*readError{{
					why: fmt.Sprintf("it tests more than %d groups; import checks every combination and stops there", MaxGroups)}}
			}
			continue
		}
		return table, groups, directInOrder(groups, direct), errs
	}
}

// askLog notes groups asked about that are not in known yet.
type askLog struct {
	known []string
	added []string
}

func (l *askLog) note(name string) {
	if !slices.Contains(l.known, name) && !slices.Contains(l.added, name) {
		l.added = append(l.added, name)
	}
}

func directInOrder(groups []string, direct map[string]bool) []string {
	var out []string
	for _, g := range groups {
		if direct[g] {
			out = append(out, g)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sameSet compares two policy lists as MinIO does: as sets, nil and empty alike.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// relevant lists the groups whose membership changes the outcome for some combination.
func relevant(t truth, groups []string) []int {
	var out []int
	for i := range groups {
		bit := 1 << i
		for m := range t {
			if m&bit == 0 && !sameSet(t[m].policies, t[m|bit].policies) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// synthFirst finds bindings with match first: an order of groups such that each member
// of a group gets that group's policies unless a group earlier in the order matched, and
// an everyone binding last for what a member of no bound group gets.
func synthFirst(t truth, groups []string) ([]config.Binding, bool) {
	rest := relevant(t, groups)
	var out []config.Binding
	used := 0 // mask of groups already bound
	for len(rest) > 0 {
		picked := -1
		for k, i := range rest {
			bit := 1 << i
			want := t[bit].policies
			ok := len(want) > 0
			for m := range t {
				if ok && m&bit != 0 && m&used == 0 && !sameSet(t[m].policies, want) {
					ok = false
				}
			}
			if ok {
				picked = k
				break
			}
		}
		if picked < 0 {
			return nil, false
		}
		i := rest[picked]
		out = append(out, config.Binding{Group: groups[i], Policies: slices.Clone(t[1<<i].policies)})
		used |= 1 << i
		rest = slices.Delete(rest, picked, picked+1)
	}
	everyone := t[0].policies
	for m := range t {
		if m&used == 0 && !sameSet(t[m].policies, everyone) {
			return nil, false
		}
	}
	if len(everyone) > 0 {
		out = append(out, config.Binding{Everyone: true, Policies: slices.Clone(everyone)})
	}
	return out, true
}

// synthAll finds bindings with match all: every member of a group gets its policies, and
// everyone what a member of no group gets; a user gets the union.
func synthAll(t truth, groups []string) ([]config.Binding, bool) {
	everyone := t[0].policies
	var out []config.Binding
	for _, i := range relevant(t, groups) {
		var own []string
		for _, p := range t[1<<i].policies {
			if !slices.Contains(everyone, p) {
				own = append(own, p)
			}
		}
		if len(own) == 0 {
			return nil, false
		}
		out = append(out, config.Binding{Group: groups[i], Policies: own})
	}
	if len(everyone) > 0 {
		out = append(out, config.Binding{Everyone: true, Policies: slices.Clone(everyone)})
	}
	for m := range t {
		var groupsOf []string
		for i, g := range groups {
			if m&(1<<i) != 0 {
				groupsOf = append(groupsOf, g)
			}
		}
		if !sameSet(t[m].policies, reconcile.ExpectedPolicies(out, config.MatchAll, groupsOf)) {
			return nil, false
		}
	}
	return out, true
}

// counterexample describes, for an expression neither mode reproduces, what it gives to
// members of single groups and of a pair, enough for a reader to see why.
func counterexample(t truth, groups []string) string {
	var parts []string
	describe := func(m int) string {
		var names []string
		for i, g := range groups {
			if m&(1<<i) != 0 {
				names = append(names, fmt.Sprintf("%q", g))
			}
		}
		who := "a member of no group"
		if len(names) > 0 {
			who = "a member of " + strings.Join(names, " and ")
		}
		got := "nothing"
		if len(t[m].policies) > 0 {
			got = strings.Join(t[m].policies, ", ")
		}
		return who + " gets " + got
	}
	for m := range t {
		if len(parts) >= 4 {
			break
		}
		if m == 0 || m&(m-1) == 0 || len(parts) == 3 {
			parts = append(parts, describe(m))
		}
	}
	return strings.Join(parts, "; ")
}

// readRendered recognises an expression akminio rendered itself: it takes the bindings
// from its "bindings = [...]" literal and the match from its header, and accepts them only
// when rendering them again gives the expression byte for byte.
func readRendered(expr string, body []pysyntax.Stmt, claim string) ([]config.Binding, string, bool) {
	match := ""
	for _, m := range []string{config.MatchFirst, config.MatchAll} {
		if strings.HasPrefix(expr, "# Managed by akminio: rendered from its bindings (match: "+m+").\n") {
			match = m
		}
	}
	if match == "" {
		return nil, "", false
	}
	for _, st := range body {
		a, ok := st.(*pysyntax.Assign)
		if !ok || len(a.Targets) != 1 {
			continue
		}
		if n, ok := a.Targets[0].(*pysyntax.Name); !ok || n.ID != "bindings" {
			continue
		}
		list, ok := a.Value.(*pysyntax.List)
		if !ok {
			return nil, "", false
		}
		var out []config.Binding
		for _, e := range list.Elts {
			t, ok := e.(*pysyntax.Tuple)
			if !ok || len(t.Elts) != 2 {
				return nil, "", false
			}
			var b config.Binding
			switch g := t.Elts[0].(type) {
			case *pysyntax.Str:
				b.Group = g.Lit.Value
			case *pysyntax.Const:
				b.Everyone = g.Value == "None"
			}
			pl, ok := t.Elts[1].(*pysyntax.List)
			if !ok {
				return nil, "", false
			}
			for _, pe := range pl.Elts {
				ps, ok := pe.(*pysyntax.Str)
				if !ok {
					return nil, "", false
				}
				b.Policies = append(b.Policies, ps.Lit.Value)
			}
			out = append(out, b)
		}
		if reconcile.RenderExpression(out, match, claim) != expr {
			return nil, "", false
		}
		return out, match, true
	}
	return nil, "", false
}
