package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/reconcile"
)

// faultCase breaks one read of a run.
type faultCase struct {
	name   string
	inject func(t *testing.T, s *suite)
	// plan also checks that plan exits 1 (each retried fault costs ~2 s, so only some do).
	plan bool
}

func faultCases() []faultCase {
	fault := func(prefix string, f aksim.Fault) func(*testing.T, *suite) {
		return func(t *testing.T, s *suite) { s.env.AK.Fault(prefix, f) }
	}
	serverError := aksim.Fault{Method: "GET", Status: 500, Times: 1000}
	return []faultCase{
		{"groups list", fault("/api/v3/core/groups/", serverError), true},
		{"providers list", fault("/api/v3/providers/oauth2/", serverError), false},
		{"bindings list", fault("/api/v3/policies/bindings/", serverError), false},
		{"scope mappings list refused", fault("/api/v3/propertymappings/provider/scope/", aksim.Fault{Method: "GET", Status: 403, Times: 1000}), true},
		{"flows list", fault("/api/v3/flows/instances/", serverError), false},
		{"keypairs list", fault("/api/v3/crypto/certificatekeypairs/", serverError), false},
		{"groups page 2 of 2 fails", failSecondGroupsPage, true},
		{"minio unreachable", minioUnreachable, true},
	}
}

// failSecondGroupsPage makes the group list two pages long and lets page 1 through but
// not page 2.
func failSecondGroupsPage(t *testing.T, s *suite) {
	for i := range 120 {
		name := fmt.Sprintf("filler group %03d", i)
		if _, ok := s.env.AK.GroupUUID(name); ok {
			continue
		}
		if _, err := s.env.AK.AddGroup(name); err != nil {
			t.Fatal(err)
		}
	}
	// A fault with only a tiny delay serves the request normally: it lets page 1 pass.
	s.env.AK.Fault("/api/v3/core/groups/", aksim.Fault{Method: "GET", Delay: time.Millisecond, Times: 1})
	s.env.AK.Fault("/api/v3/core/groups/", aksim.Fault{Method: "GET", Status: 502, Times: 1000})
}

// minioUnreachable points the config at a loopback port where nothing listens.
func minioUnreachable(t *testing.T, s *suite) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := deepCopy(s.cfg)
	section(cfg, "minio")["endpoint"] = "http://" + addr
	s.write(t, cfg) // testFault writes the working config back

}

// testFault introduces drift on both sides (so that apply would write), breaks one read,
// and checks that apply exits 1 having written nothing anywhere; then repairs.
func testFault(t *testing.T, s *suite, tc faultCase) {
	ctx := context.Background()
	if err := s.adm.RemoveCannedPolicy(ctx, e2eenv.CustomPolicy); err != nil {
		t.Fatal(err)
	}
	s.patchMapping(t, e2eenv.MappingName, api.PatchedScopeMappingRequest{Expression: ptr(`return None`)})
	before := s.snapshotMinIO(t)
	cfg := s.cfg
	s.env.AK.ResetCounts()
	tc.inject(t, s)
	func() {
		defer s.env.AK.ClearFaults()
		_, stderr, code := s.run(t, "apply")
		if code != 1 {
			t.Errorf("apply: exit %d, want 1", code)
		}
		if !strings.Contains(stderr, reconcile.ErrObserve.Error()) {
			t.Errorf("apply's error does not say it could not observe:\n%s", stderr)
		}
		if tc.plan {
			if _, _, code := s.run(t, "plan"); code != 1 {
				t.Errorf("plan: exit %d, want 1", code)
			}
		}
	}()
	if w := writes(s.env); len(w) != 0 {
		t.Errorf("apply wrote to authentik after a failed observation: %v", w)
	}
	if after := s.snapshotMinIO(t); !before.equal(after) {
		t.Errorf("apply changed MinIO after a failed observation: %s", before.diff(after))
	}
	s.write(t, cfg) // back to the working config, if the fault changed it
	s.requireApply(t, 0)
	s.requireInSync(t)
}

// testRestartNever: with restart: never an identity_openid change is written once, left
// pending (plan says so, apply exits 2 without writing again), and settles once MinIO is
// restarted by someone else.
func testRestartNever(t *testing.T, s *suite) {
	s.withConfig(t, func(cfg map[string]any) { section(cfg, "minio")["restart"] = "never" })
	s.setOpenID(t, "scopes=openid")
	want := "openid,profile,email,minio"

	out := s.requireApply(t, 2)
	if !strings.Contains(collapse(out), "identity_openid: scopes differ (written, restart pending)") {
		t.Errorf("apply does not report the pending restart:\n%s", out)
	}
	first := pendingSince(t, s)
	if got := s.openIDKey(t, "scopes"); got != "openid" {
		t.Fatalf("scopes read back %q before a restart; the test expects MinIO's stale read-back", got)
	}

	text, _, code := s.run(t, "plan")
	if code != 2 || !strings.Contains(collapse(text), "minio update identity_openid: scopes differ (written, restart pending)") {
		t.Errorf("plan: exit %d, want 2 and the pending line:\n%s", code, text)
	}
	p, _ := s.planJSON(t)
	if c, ok := findChange(p, reconcile.KindOpenID, "identity_openid"); !ok || !c.Pending || !p.RestartPending {
		t.Errorf("plan JSON: %+v; want a pending identity_openid change and restart_pending", p)
	}

	s.requireApply(t, 2)
	if again := pendingSince(t, s); !again.Equal(first) {
		t.Errorf("second apply wrote identity_openid again: written_at %s -> %s", first, again)
	}
	if got := s.openIDKey(t, "scopes"); got != "openid" {
		t.Errorf("scopes read back %q with the restart still pending", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.env.MinIO.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s.requireInSync(t)
	if got := s.openIDKey(t, "scopes"); got != want {
		t.Errorf("scopes after the restart = %q, want %q", got, want)
	}
	if st := readState(t, s); st.RestartPending != nil {
		t.Errorf("restart_pending still recorded after MinIO restarted: %+v", st.RestartPending)
	}
}

func readState(t *testing.T, s *suite) reconcile.State {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.env.StateDir, reconcile.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st reconcile.State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s: %v", reconcile.StateFile, err)
	}
	return st
}

// pendingSince returns when the pending identity_openid write was made.
func pendingSince(t *testing.T, s *suite) time.Time {
	t.Helper()
	st := readState(t, s)
	if st.RestartPending == nil {
		t.Fatalf("state.json records no pending restart")
	}
	return st.RestartPending.WrittenAt
}
