package reconcile

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/akminio/akminio/config"
)

// FuzzRenderExpression renders bindings with fuzzed group and policy names and checks, with
// python3, that the output always parses as Python of the expected shape (only the names,
// calls and statements the renderer writes; string constants exactly the names) and
// evaluates to exactly the bindings' policies for a member of each group, a member of a
// child group, a user in no bound group and the anonymous user. Each input costs two
// python3 processes, so a 20-second run checks a sample of a few hundred inputs.
func FuzzRenderExpression(f *testing.F) {
	for _, n := range hostileNames[:len(hostileNames)-1] {
		f.Add(n, "Minio users", "readonly", n, false)
	}
	f.Add("Minio admins", "Minio users", "consoleAdmin", "readonly", true)
	f.Add("same", "same", "a", "b", true)
	f.Fuzz(func(t *testing.T, g1, g2, p1, p2 string, all bool) {
		for _, s := range []string{g1, g2, p1, p2} {
			// Config values come from YAML: valid UTF-8, and config validation refuses a NUL
			// in a group name (authentik cannot store one).
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || s == "" {
				t.Skip("not a name the config accepts")
			}
		}
		for _, g := range []string{g1, g2} {
			// The evaluation check's own group names.
			if g == "Unrelated" || strings.HasPrefix(g, "child of ") {
				t.Skip("collides with the check's groups")
			}
		}
		match := config.MatchFirst
		if all {
			match = config.MatchAll
		}
		bindings := []config.Binding{
			{Group: g1, Policies: []string{p1, p2, p1}},
			{Group: g2, Policies: []string{p2}},
		}
		src := RenderExpression(bindings, match, "policy")
		checkStructure(t, src, bindings, "policy", match)
		checkEvaluation(t, src, bindings, "policy", match)
	})
}
