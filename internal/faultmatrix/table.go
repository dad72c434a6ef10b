package faultmatrix

import (
	"fmt"
	"sort"
	"strings"
)

// Cell is one call failed with one Kind in one phase of a run.
type Cell struct {
	Phase string // "observe" or "apply"
	Call  string // "authentik GET /api/v3/core/groups/" or "minio PUT /minio/admin/v3/add-canned-policy"
	Kind  Kind
	// Outcome is "held" when every assertion held, "n/a: why" when the fault cannot happen
	// to this call, else what broke.
	Outcome string
}

// Held reports whether the cell's assertions held.
func (c Cell) Held() bool { return c.Outcome == "held" }

// Applicable reports whether the fault was tried.
func (c Cell) Applicable() bool { return !strings.HasPrefix(c.Outcome, "n/a") }

// Table renders cells as a Markdown table: one row per phase and call, one column per
// Kind; "held", "–" (not applicable) or "FAILED".
func Table(cells []Cell) string {
	type row struct{ phase, call string }
	byRow := map[row]map[Kind]Cell{}
	var rows []row
	for _, c := range cells {
		r := row{c.Phase, c.Call}
		if byRow[r] == nil {
			byRow[r] = map[Kind]Cell{}
			rows = append(rows, r)
		}
		byRow[r][c.Kind] = c
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].phase != rows[j].phase {
			return rows[i].phase == "observe"
		}
		return rows[i].call < rows[j].call
	})
	var b strings.Builder
	b.WriteString("| phase | call |")
	for _, k := range Kinds {
		b.WriteString(" " + string(k) + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(Kinds)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | `%s` |", r.phase, r.call)
		for _, k := range Kinds {
			c, ok := byRow[r][k]
			switch {
			case !ok || !c.Applicable():
				b.WriteString(" – |")
			case c.Held():
				b.WriteString(" held |")
			default:
				b.WriteString(" FAILED |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Summary counts the cells tried and those that held.
func Summary(cells []Cell) (tried, held int) {
	for _, c := range cells {
		if c.Applicable() {
			tried++
			if c.Held() {
				held++
			}
		}
	}
	return tried, held
}
