package authentik

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/reconcile/access"
	"github.com/akminio/akminio/reconcile/adopt"
)

// TestReadEstate reads back what Apply created, every reference resolved to a name, and
// writes nothing.
func TestReadEstate(t *testing.T) {
	f := newFixture(t)
	d := desired()
	f.applyFromNothing(t, d)
	before := f.writes()
	est, err := f.ad.ReadEstate(context.Background(), "minio")
	if err != nil {
		t.Fatal(err)
	}
	if f.writes() != before {
		t.Errorf("ReadEstate wrote to authentik")
	}
	p := est.Provider
	if p == nil || p.Name != "MinIO" || p.SigningKey != aksim.SelfSignedName || p.ClientType != "confidential" ||
		p.AuthorizationFlow != d.Provider.AuthorizationFlow || p.InvalidationFlow != d.Provider.InvalidationFlow ||
		len(p.RedirectURIs) != 1 || p.RedirectURIs[0].URL != "https://minio.test/oauth_callback" {
		t.Fatalf("provider %+v", p)
	}
	var names, managed []string
	for _, m := range est.Mappings {
		names = append(names, m.Name)
		if m.Managed != "" {
			managed = append(managed, strings.TrimPrefix(m.Managed, adopt.ManagedScopePrefix))
		} else if m.Expression != d.ScopeMapping.Expression {
			t.Errorf("mapping %q: expression not read back", m.Name)
		}
	}
	slices.Sort(managed)
	if !slices.Contains(names, "OIDC-Scope-minio") || !slices.Equal(managed, []string{"email", "openid", "profile"}) {
		t.Errorf("mappings %v (built-in %v)", names, managed)
	}
	if est.Application.Name != "MinIO" || est.Application.LaunchURL != "https://minio.test" || est.Bindings != 2 {
		t.Errorf("application %+v, %d bindings", est.Application, est.Bindings)
	}
	if _, err := f.ad.ReadEstate(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `no application with slug "nope"`) {
		t.Errorf("missing application: %v", err)
	}
}

// TestMembersAndPreviews: members of a group include those of its child groups; the
// limit bounds the list; previews carry each user's groups with ancestors and the claims
// of the provider's mappings.
func TestMembersAndPreviews(t *testing.T) {
	f := newFixture(t)
	obs := f.applyFromNothing(t, desired())
	ctx := context.Background()
	if _, err := f.sim.AddGroup("Minio interns", "Minio users"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, group string }{{"alice", "Minio admins"}, {"bob", "Minio users"}, {"carol", ""}, {"dave", "Minio interns"}} {
		if _, err := f.sim.AddUser(u.name, u.name+"@example.com"); err != nil {
			t.Fatal(err)
		}
		if u.group != "" {
			if err := f.sim.AddUserToGroup(u.name, u.group); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, more, err := f.ad.Members(ctx, []string{"Minio users"}, 10)
	if err != nil || more || !slices.Equal(got, []string{"bob", "dave"}) {
		t.Errorf("Members(Minio users) = %v %v %v, want bob and dave (through Minio interns)", got, more, err)
	}
	got, more, err = f.ad.Members(ctx, []string{"Minio users", "Minio admins"}, 2)
	if err != nil || !more || len(got) != 2 {
		t.Errorf("Members limit 2 = %v %v %v, want 2 and more", got, more, err)
	}
	var calls []int
	ps, err := f.ad.PreviewUsers(ctx, obs.Authentik.Provider.PK, []string{"dave", "carol", "alice"}, func(done, total int) { calls = append(calls, done*10+total) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[2] != 33 {
		t.Errorf("progress calls %v", calls)
	}
	if !slices.Equal(ps[0].Groups, []string{"Minio interns", "Minio users"}) || fmt.Sprint(ps[0].Claims["policy"]) != "[readonly]" {
		t.Errorf("dave: %+v", ps[0])
	}
	if _, ok := ps[1].Claims["policy"]; ok || len(ps[1].Groups) != 0 {
		t.Errorf("carol: %+v", ps[1])
	}
	if fmt.Sprint(ps[2].Claims["policy"]) != "[consoleAdmin]" {
		t.Errorf("alice: %+v", ps[2])
	}
	if _, err := f.ad.PreviewUsers(ctx, obs.Authentik.Provider.PK, []string{"nobody"}, nil); err == nil {
		t.Error("a user that does not exist is an error")
	}
	pk, err := f.ad.ProviderPK(ctx, "MinIO")
	if err != nil || pk != obs.Authentik.Provider.PK {
		t.Errorf("ProviderPK = %d, %v", pk, err)
	}
	if pk, err := f.ad.ProviderPK(ctx, "other"); pk != 0 || err != nil {
		t.Errorf("ProviderPK(other) = %d, %v", pk, err)
	}
}

// BenchmarkAccessAll measures `plan --access --access-users all` against the simulator for
// an estate of b.N-independent size: 40 members of a bound group (and its child group).
// It reports the requests one table costs; results are in docs/benchmarks.md.
func BenchmarkAccessAll(b *testing.B) {
	const users = 40
	f := newFixture(b)
	d := desired()
	f.applyFromNothing(b, d)
	if _, err := f.sim.AddGroup("Minio interns", "Minio users"); err != nil {
		b.Fatal(err)
	}
	for i := range users {
		name := fmt.Sprintf("user%03d", i)
		if _, err := f.sim.AddUser(name, name+"@example.com"); err != nil {
			b.Fatal(err)
		}
		g := "Minio users"
		if i%4 == 0 {
			g = "Minio interns"
		}
		if err := f.sim.AddUserToGroup(name, g); err != nil {
			b.Fatal(err)
		}
	}
	f.sim.ResetCounts()
	b.ResetTimer()
	for b.Loop() {
		t, err := access.Build(context.Background(), f.ad, d, "policy", access.Options{All: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(t.Users) != users || len(t.Losing()) != 0 {
			b.Fatalf("%d users, %d losing", len(t.Users), len(t.Losing()))
		}
	}
	b.StopTimer()
	total := 0
	for _, n := range f.sim.Counts() {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "requests/op")
}
