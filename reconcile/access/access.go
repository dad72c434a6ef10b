// Package access computes who gains and who loses MinIO policies when a plan is applied:
// for each listed user, the policies now (from authentik's preview_user, the claims of the
// expression authentik really runs) and after (from the config's bindings, by the rules of
// akminio's rendered expression), and the difference. Its core, Compute, is pure; Build
// gathers the users and previews through a Source.
package access

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/adopt"
)

// DefaultLimit bounds the users of --access-users all.
const DefaultLimit = 1000

// Row is one user's access now and after.
type Row struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"` // direct and ancestor groups
	Now      []string `json:"now"`
	After    []string `json:"after"`
	Gains    []string `json:"gains"`
	Losses   []string `json:"losses"`
}

// Table is the access plan.
type Table struct {
	Users []Row `json:"users"`
	// Truncated says that more users matched than the limit allowed; Limit is that bound.
	Truncated bool `json:"truncated"`
	Limit     int  `json:"limit,omitempty"`
}

// Losing returns the rows whose users lose a policy.
func (t Table) Losing() []Row {
	var out []Row
	for _, r := range t.Users {
		if len(r.Losses) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// Compute builds the table from previews: now is what MinIO reads from each preview's
// claim, after what the bindings give the user's groups.
func Compute(previews []reconcile.UserPreview, claim string, d *reconcile.Desired) Table {
	t := Table{Users: make([]Row, 0, len(previews))}
	for _, p := range previews {
		now, _ := reconcile.ClaimPolicies(p.Claims, claim)
		now = unique(now)
		after := unique(reconcile.ExpectedPolicies(d.Bindings, d.Match, p.Groups))
		t.Users = append(t.Users, Row{
			Username: p.Username, Groups: nonNil(p.Groups), Now: nonNil(now), After: nonNil(after),
			Gains: nonNil(minus(after, now)), Losses: nonNil(minus(now, after)),
		})
	}
	return t
}

func unique(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Source is what Build needs from authentik; reconcile/authentik's Adapter implements it.
type Source interface {
	// ProviderPK finds the OAuth2 provider by name; 0 when it does not exist.
	ProviderPK(ctx context.Context, name string) (int32, error)
	// MappingExpression returns the scope mapping's expression; ok false when it does not exist.
	MappingExpression(ctx context.Context, name string) (expr string, ok bool, err error)
	// Members lists the members of the groups and of the groups below them, at most limit.
	Members(ctx context.Context, groups []string, limit int) ([]string, bool, error)
	// PreviewUsers returns each user's groups and claims (none when providerPK is 0).
	PreviewUsers(ctx context.Context, providerPK int32, usernames []string, progress func(done, total int)) ([]reconcile.UserPreview, error)
}

// Options says which users Build lists.
type Options struct {
	Users []string // the canary users (verify.users)
	// All adds every member of the groups the bindings or the current expression name.
	All   bool
	Limit int // bound of All; 0: DefaultLimit
	// Progress, when set, hears how far the previews are.
	Progress func(done, total int)
}

// Build gathers the users and their previews and computes the table.
func Build(ctx context.Context, src Source, d *reconcile.Desired, claim string, o Options) (Table, error) {
	pk, err := src.ProviderPK(ctx, d.Provider.Name)
	if err != nil {
		return Table{}, err
	}
	users := slices.Clone(o.Users)
	var t Table
	if o.All {
		limit := o.Limit
		if limit <= 0 {
			limit = DefaultLimit
		}
		groups := slices.Clone(d.Groups)
		if expr, ok, err := src.MappingExpression(ctx, d.ScopeMapping.Name); err != nil {
			return Table{}, err
		} else if ok {
			for _, g := range adopt.ReadExpression(expr, claim).Groups {
				if !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
		}
		members, more, err := src.Members(ctx, groups, limit)
		if err != nil {
			return Table{}, err
		}
		for _, m := range members {
			if !slices.Contains(users, m) {
				users = append(users, m)
			}
		}
		if len(users) > limit {
			users, more = users[:limit], true
		}
		t.Truncated, t.Limit = more, limit
	}
	previews, err := src.PreviewUsers(ctx, pk, users, o.Progress)
	if err != nil {
		return Table{}, err
	}
	c := Compute(previews, claim, d)
	c.Truncated, c.Limit = t.Truncated, t.Limit
	return c, nil
}

// WriteText writes the table, one line per user:
//
//	USER   GROUPS        NOW           AFTER         CHANGE
//	alice  Minio admins  consoleAdmin  consoleAdmin  -
//	bob    Minio users   readonly      -             loses readonly
func WriteText(w io.Writer, t Table) error {
	fmt.Fprintln(w, "access (now: the claims authentik gives today; after: the bindings)")
	if len(t.Users) == 0 {
		fmt.Fprintln(w, "  no users to show: list some in verify.users, or use --access-users all")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(t.Users) > 0 {
		fmt.Fprintln(tw, "  USER\tGROUPS\tNOW\tAFTER\tCHANGE")
	}
	for _, r := range t.Users {
		var change []string
		if len(r.Gains) > 0 {
			change = append(change, "gains "+strings.Join(r.Gains, ", "))
		}
		if len(r.Losses) > 0 {
			change = append(change, "LOSES "+strings.Join(r.Losses, ", "))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Username, dash(r.Groups), dash(r.Now), dash(r.After), dash(change))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	gain, loss := 0, 0
	for _, r := range t.Users {
		if len(r.Gains) > 0 {
			gain++
		}
		if len(r.Losses) > 0 {
			loss++
		}
	}
	fmt.Fprintf(w, "  %d users: %d gain, %d lose access\n", len(t.Users), gain, loss)
	if t.Truncated {
		fmt.Fprintf(w, "  more users match than --access-limit %d: the list is incomplete\n", t.Limit)
	}
	return nil
}

func dash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

// AddToJSON returns the plan's JSON document with the table added as "access".
func AddToJSON(planJSON []byte, t Table) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(planJSON, &doc); err != nil {
		return nil, fmt.Errorf("access: plan JSON: %w", err)
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	doc["access"] = raw
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
