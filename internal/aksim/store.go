package aksim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// record is one stored object. f holds its writable fields as JSON values
// (what the request schemas allow), with defaults filled in; read-only
// fields are computed when the object is rendered.
type record struct {
	id      string // uuid, or the decimal integer pk for users and providers
	num     int    // integer pk (users, providers) or num_pk (groups)
	seq     int    // creation order, the tie-breaker of every ordering
	created time.Time
	f       map[string]any
}

// store is the simulator's whole state; one mutex guards it.
type store struct {
	mu        sync.Mutex
	seq       int
	installID string
	users     map[string]*record
	groups    map[string]*record
	members   map[string]map[int]bool // group uuid -> user pks (direct membership)
	apps      map[string]*record
	providers map[string]*record
	secrets   []string // every provider client secret seen, for ProviderSecrets
	mappings  map[string]*record
	keypairs  map[string]*record
	flows     map[string]*record
	bindings  map[string]*record
	keys      map[string]*keyMaterial // keypair uuid -> key and certificate
	ev        *eventTables            // notifications (handlers_events.go)
}

func newStore() *store {
	return &store{
		installID: uuid.NewString(),
		users:     map[string]*record{},
		groups:    map[string]*record{},
		members:   map[string]map[int]bool{},
		apps:      map[string]*record{},
		providers: map[string]*record{},
		mappings:  map[string]*record{},
		keypairs:  map[string]*record{},
		flows:     map[string]*record{},
		bindings:  map[string]*record{},
		keys:      map[string]*keyMaterial{},
		ev:        newEventTables(),
	}
}

// add stores a new record in table m; callers hold st.mu.
func (st *store) add(m map[string]*record, id string, num int, f map[string]any) *record {
	st.seq++
	r := &record{id: id, num: num, seq: st.seq, created: time.Now().UTC(), f: f}
	m[id] = r
	return r
}

// nextNum returns one more than the largest integer pk in m.
func nextNum(m map[string]*record) int {
	n := 0
	for _, r := range m {
		n = max(n, r.num)
	}
	return n + 1
}

// sorted returns the records of m ordered by key, then creation order.
func sorted(m map[string]*record, key func(*record) string) []*record {
	out := make([]*record, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	return sortRecords(out, key)
}

// sortRecords orders records in place by key, then creation order.
func sortRecords(out []*record, key func(*record) string) []*record {
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := key(out[i]), key(out[j])
		if ki != kj {
			return ki < kj
		}
		return out[i].seq < out[j].seq
	})
	return out
}

// byField orders records by a string field.
func byField(name string) func(*record) string {
	return func(r *record) string { return str(r.f[name]) }
}

// userByPK finds a user by integer pk.
func (st *store) userByPK(pk int) *record { return st.users[strconv.Itoa(pk)] }

// find returns the first record of m whose field equals value.
func find(m map[string]*record, field, value string) *record {
	for _, r := range sorted(m, byField(field)) {
		if str(r.f[field]) == value {
			return r
		}
	}
	return nil
}

// userGroups returns the uuids of the groups a user is directly in.
func (st *store) userGroups(pk int) []string {
	out := []string{}
	for _, g := range sorted(st.groups, byField("name")) {
		if st.members[g.id][pk] {
			out = append(out, g.id)
		}
	}
	return out
}

// allGroups returns the user's groups and all their ancestors, like
// authentik's User.all_groups(); ak_is_group_member and group policy
// bindings use it.
func (st *store) allGroups(pk int) []*record {
	seen := map[string]bool{}
	var out []*record
	var visit func(id string)
	visit = func(id string) {
		g := st.groups[id]
		if g == nil || seen[id] {
			return
		}
		seen[id] = true
		out = append(out, g)
		for _, p := range strList(g.f["parents"]) {
			visit(p)
		}
	}
	for _, id := range st.userGroups(pk) {
		visit(id)
	}
	sort.SliceStable(out, func(i, j int) bool { return str(out[i].f["name"]) < str(out[j].f["name"]) })
	return out
}

// isSuperuser reports whether any of the user's groups grants superuser.
func (st *store) isSuperuser(pk int) bool {
	for _, g := range st.allGroups(pk) {
		if b, _ := g.f["is_superuser"].(bool); b {
			return true
		}
	}
	return false
}

// uid is the stable per-user identifier authentik derives from the pk and
// the installation id (the default, hashed, `sub`).
func (st *store) uid(pk int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d-%s", pk, st.installID)))
	return hex.EncodeToString(sum[:])
}

// appForProvider returns the application that uses provider pk, if any.
func (st *store) appForProvider(pk int) *record {
	for _, a := range sorted(st.apps, byField("slug")) {
		if p, ok := intOf(a.f["provider"]); ok && p == pk {
			return a
		}
	}
	return nil
}

// applyBody copies the allowed keys of a request body onto f.
func applyBody(f, body map[string]any, allowed map[string]bool) {
	for k, v := range body {
		if allowed[k] {
			f[k] = v
		}
	}
}

// str returns v as a string, "" for anything else.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// intOf converts a JSON number (or a decimal string) to int.
func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		if n == math.Trunc(n) {
			return int(n), true
		}
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

// strList converts a JSON array of strings.
func strList(v any) []string {
	out := []string{}
	switch l := v.(type) {
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, l...)
	}
	return out
}

// intList converts a JSON array of numbers.
func intList(v any) []int {
	out := []int{}
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if n, ok := intOf(x); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

// anyList converts strings to a JSON array value.
func anyList[T any](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}

// containsFold is DRF SearchFilter's icontains.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// ts renders a time as authentik does (RFC 3339 with microseconds).
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// copyMap returns a shallow copy.
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// itoa is strconv.Itoa, for messages.
func itoa(i int) string { return strconv.Itoa(i) }
