package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/akminio/akminio/config"
)

// ActionVerify is the action of a verification failure: drift that no change of akminio's
// removes directly, reported with Kind KindVerification.
const ActionVerify Action = "verify"

// ExpectedPolicies returns the policies that the rendered expression gives a member of
// groups (direct and ancestor group names), by the same rules as RenderExpression:
// match first takes the first binding whose group matches, match all the union in binding
// order without duplicates. An everyone binding matches every user. Nil means no access.
func ExpectedPolicies(bindings []config.Binding, match string, groups []string) []string {
	var out []string
	for _, b := range bindings {
		if !b.Everyone && !slices.Contains(groups, b.Group) {
			continue
		}
		for _, p := range b.Policies {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		if match != config.MatchAll {
			break
		}
	}
	return out
}

// ClaimPolicies reads a policy claim the way MinIO does: a comma-separated string or a list
// of strings. ok is false when the claim is absent or of another type.
func ClaimPolicies(claims map[string]any, claim string) (policies []string, ok bool) {
	switch v := claims[claim].(type) {
	case string:
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				policies = append(policies, p)
			}
		}
		return policies, true
	case []any:
		for _, e := range v {
			s, isStr := e.(string)
			if !isStr {
				return nil, false
			}
			policies = append(policies, s)
		}
		return policies, true
	case nil:
		return nil, false
	default:
		return nil, false
	}
}

// UserPreview is what authentik says about a canary user: its groups (direct and ancestor
// names) and the claims the provider's mappings give it.
type UserPreview struct {
	Username string
	Groups   []string
	Claims   map[string]any
}

// VerifyUser compares a canary user's claims with what the bindings give it and checks that
// every claimed policy exists in MinIO. It returns the problems found, empty when all is well.
func VerifyUser(d *Desired, claim string, u UserPreview, minioPolicies map[string][]byte) []string {
	want := ExpectedPolicies(d.Bindings, d.Match, u.Groups)
	got, ok := ClaimPolicies(u.Claims, claim)
	var problems []string
	switch {
	case !ok && len(want) > 0:
		problems = append(problems, fmt.Sprintf("claim %q missing, want %s", claim, list(want)))
	case ok && !equalSets(got, want):
		problems = append(problems, fmt.Sprintf("claim %q is %s, want %s", claim, list(got), list(want)))
	}
	for _, p := range got {
		if _, exists := minioPolicies[p]; !exists {
			problems = append(problems, fmt.Sprintf("claimed policy %q does not exist in MinIO", p))
		}
	}
	return problems
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return "[" + strings.Join(s, ", ") + "]"
}
