package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/miniotest"
)

// startTogether starts the instances at the same moment.
func startTogether(t *testing.T, ins []*instance) {
	t.Helper()
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() { in.start(t) })
	}
	wg.Wait()
}

func threeInstances(t *testing.T, tm timing, edit func(map[string]any)) []*instance {
	t.Helper()
	ins := make([]*instance, 3)
	for i := range ins {
		ins[i] = newInstance(t, fmt.Sprintf("host-%d", i), i, tm, edit)
	}
	return ins
}

func admin(t *testing.T, node int) *madmin.AdminClient {
	t.Helper()
	adm, err := env.Cluster.Nodes[node].AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

// countNames counts audit entries by api name.
func countNames(entries []string) map[string]int {
	out := map[string]int{}
	for _, e := range entries {
		name, _, _ := strings.Cut(e, "@")
		out[name]++
	}
	return out
}

// TestThreeInstancesOneWriter: three `akminio run` started together against the cluster
// elect exactly one leader; only it writes the first setup; a drift on both sides (policy
// changed, expression edited, client secret changed in MinIO) is repaired exactly once with
// at most one cluster restart; followers stay ready and report the same view; one node of
// four down leaves the lease working; three down leave nobody writing, each saying why.
func TestThreeInstancesOneWriter(t *testing.T) {
	tm := writing
	ins := threeInstances(t, tm, nil)
	started := time.Now()
	startTogether(t, ins)
	leader := waitOneLeader(t, ins, 30*time.Second+tm.lease)
	t.Logf("leader %s after %s", leader.ID, time.Since(started).Round(time.Millisecond))
	waitInSync(t, ins, started, 2*time.Minute)
	wantLogins(t)

	t.Run("only the leader wrote the setup", func(t *testing.T) {
		for _, in := range ins {
			n := in.appliedLines()
			st, _ := in.status()
			if in == leader && n == 0 && st.HA.Role == "leader" {
				t.Errorf("the leader %s applied nothing", in.ID)
			}
			if in != leader && n > 0 {
				// Leadership may have moved during the setup's cluster restart; then the
				// later leader may have written too, but never two at once (waitOneLeader).
				t.Logf("%s (not the first leader) applied %d changes", in.ID, n)
			}
		}
		hosts := map[string]bool{}
		for _, e := range audit.since(started) {
			_, host, _ := strings.Cut(e, "@")
			hosts[host] = true
		}
		if hosts[env.Cluster.Nodes[3].Host] {
			t.Errorf("a write came through node 4, where no akminio runs: %v", hosts)
		}
	})

	t.Run("followers are ready and report the leader", func(t *testing.T) {
		leader = waitOneLeader(t, ins, 15*time.Second)
		for _, in := range ins {
			st, err := in.status()
			if err != nil {
				t.Fatal(err)
			}
			want := "0"
			if in == leader {
				want = "1"
			}
			if got := in.metric("akminio_leader"); got != want {
				t.Errorf("%s: akminio_leader %q, want %s", in.ID, got, want)
			}
			if st.HA.Holder != leader.ID || st.HA.Term == 0 || st.HA.Expires == nil || !st.HA.Enabled {
				t.Errorf("%s: /status ha %+v, want holder %s, a term and an expiry", in.ID, st.HA, leader.ID)
			}
			if code, body, _ := in.get("/readyz"); code != 200 {
				t.Errorf("%s (%s): /readyz %d %s, want 200", in.ID, st.HA.Role, code, body)
			}
		}
	})

	t.Run("a drift is repaired once", func(t *testing.T) {
		ctx := context.Background()
		since := time.Now()
		env.AK.ResetCounts()
		// client secret changed in MinIO: it reads back after a restart (the test's own).
		adm := admin(t, 3)
		if _, err := adm.SetConfigKV(ctx, "identity_openid client_secret=changed-by-hand"); err != nil {
			t.Fatal(err)
		}
		before := env.Cluster.Starts()
		if err := adm.ServiceRestartV2(ctx); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := env.Cluster.WaitRestarted(rctx, before); err != nil {
			t.Fatal(err)
		}
		starts := env.Cluster.Starts()
		// a policy changed in MinIO, the expression edited in authentik
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::elsewhere/*"]}]}`
		if err := adm.AddCannedPolicy(ctx, e2eenv.CustomPolicy, []byte(doc)); err != nil {
			t.Fatal(err)
		}
		patchExpression(t, "return None")
		env.AK.ResetCounts() // the test's own PATCH is not akminio's
		edited := time.Now()
		waitInSync(t, ins, edited, 2*time.Minute)

		writes := audit.since(since)
		names := countNames(writes)
		if names["AddCannedPolicy"] != 1 || names["SetConfigKV"] != 1 || names["ServiceV2"]+names["Service"] > 1 {
			t.Errorf("MinIO admin writes by akminio: %v (%v); want one AddCannedPolicy, one SetConfigKV, at most one restart", names, writes)
		}
		if restarted := env.Cluster.Starts() - starts; restarted > len(env.Cluster.Nodes) {
			t.Errorf("the cluster's nodes started %d times, more than one restart of %d nodes", restarted, len(env.Cluster.Nodes))
		}
		aw := authentikWrites()
		mapping := 0
		for k, v := range aw {
			if strings.Contains(k, "/propertymappings/provider/scope/") {
				mapping += v
			}
		}
		if mapping != 1 || total(aw) != 1 {
			t.Errorf("authentik writes: %v; want exactly one, to the scope mapping", aw)
		}
		wantLogins(t)
	})

	t.Run("one node of four down: the lease goes on", func(t *testing.T) {
		leader = waitOneLeader(t, ins, 3*tm.lease)
		st, _ := leader.status()
		if err := env.Cluster.StopNode(3); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Cluster.StartNodes(context.Background(), 3) })
		time.Sleep(tm.lease + tm.renew) // renewals must go on past a whole lease
		now, err := leader.status()
		if err != nil || now.HA.Role != "leader" || now.HA.Term != st.HA.Term {
			t.Fatalf("with node 4 down: %+v, %v; want the same leader in term %d", now.HA, err, st.HA.Term)
		}
		if err := env.Cluster.StartNodes(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("three nodes of four down: nobody writes, each says why", func(t *testing.T) {
		since := time.Now()
		env.AK.ResetCounts()
		for _, i := range []int{1, 2, 3} {
			if err := env.Cluster.StopNode(i); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { _ = env.Cluster.StartNodes(context.Background(), 1, 2, 3) })
		waitFor(t, 3*tm.lease, "no instance leading", func() bool {
			lead, _ := leaders(ins)
			return len(lead) == 0
		})
		waitFor(t, 3*tm.lease, "every instance saying why it does not write", func() bool {
			for _, in := range ins {
				if st, err := in.status(); err != nil || st.HA.Reason == "" {
					return false
				}
			}
			return true
		})
		for _, in := range ins {
			st, err := in.status()
			if err != nil {
				t.Fatal(err)
			}
			if st.HA.Role != "follower" || st.HA.Reason == "" {
				t.Errorf("%s: ha %+v; want a follower saying why", in.ID, st.HA)
			}
			t.Logf("%s: %s", in.ID, st.HA.Reason)
		}
		if w := audit.since(since); len(w) > 0 {
			t.Errorf("MinIO admin writes with three nodes down: %v", w)
		}
		if w := authentikWrites(); total(w) > 0 {
			t.Errorf("authentik writes with three nodes down: %v", w)
		}
		if err := env.Cluster.StartNodes(context.Background(), 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		waitOneLeader(t, ins, 30*time.Second+3*tm.lease)
		waitInSync(t, ins, time.Now(), 2*time.Minute)
	})

	t.Run("SIGTERM hands the lease over at once", func(t *testing.T) {
		leader = waitOneLeader(t, ins, 3*tm.lease)
		st, _ := leader.status()
		stopped := time.Now()
		leader.stop(t)
		next := waitOneLeader(t, without(ins, leader), 3*tm.lease)
		took := time.Since(stopped)
		nst, _ := next.status()
		if !leader.logged("released the lease") || nst.HA.Term != st.HA.Term+1 {
			t.Errorf("after SIGTERM: released logged %v, term %d -> %d; want the lease released and taken in the next term",
				leader.logged("released the lease"), st.HA.Term, nst.HA.Term)
		}
		t.Logf("handover after SIGTERM (the run in progress ends first): %s", took.Round(time.Millisecond))
		leader.start(t)
	})
}

// TestPausedLeaderWritesNothing: a leader stopped (SIGSTOP) past its lease is replaced;
// a drift made meanwhile is repaired once, by the new leader; woken up (SIGCONT), the old
// leader writes nothing, as both sides' request logs show.
func TestPausedLeaderWritesNothing(t *testing.T) {
	tm := writing
	ins := threeInstances(t, tm, nil)
	started := time.Now()
	startTogether(t, ins)
	old := waitOneLeader(t, ins, 30*time.Second+tm.lease)
	waitInSync(t, ins, started, 2*time.Minute)

	oldHost := env.Cluster.Nodes[old.Node].Host
	since := time.Now()
	env.AK.ResetCounts()
	applied := old.appliedLines()
	old.signal(syscall.SIGSTOP)
	next := waitOneLeader(t, without(ins, old), 3*tm.lease)
	patchExpression(t, "return {}")
	env.AK.ResetCounts() // the test's own PATCH is not akminio's
	edited := time.Now()
	waitInSync(t, without(ins, old), edited, time.Minute)
	old.signal(syscall.SIGCONT)
	woke := time.Now()
	// The old leader's overdue timers and runs fire now; give it two schedules.
	waitFor(t, 30*time.Second, "the old leader's first run after waking", func() bool {
		st, err := old.status()
		return err == nil && st.LastRun != nil && st.LastRun.Start.After(woke)
	})
	time.Sleep(4 * time.Second)
	if st, _ := old.status(); st.HA.Role != "follower" || st.HA.Holder != next.ID {
		t.Errorf("old leader after waking: %+v; want a follower of %s", st.HA, next.ID)
	}
	if n := old.appliedLines(); n != applied {
		t.Errorf("the old leader logged %d applied changes after the pause", n-applied)
	}
	for _, e := range audit.since(since) {
		if strings.HasSuffix(e, "@"+oldHost) {
			t.Errorf("MinIO audited a write from the old leader's node after the pause: %s", e)
		}
	}
	if aw := authentikWrites(); total(aw) != 1 {
		t.Errorf("authentik writes: %v; want one, the new leader's repair", aw)
	}
}

// TestScheduledRotationOnce: with three instances on the same rotation schedule only the
// leader rotates, at most once per period for the whole cluster (a leader that took over
// does not rotate again in the period of its predecessor's rotation): each rotation is one
// secret write in authentik and one in MinIO; all three end with the same view, authentik
// and MinIO hold the same secret, and the demo users' STS logins work.
func TestScheduledRotationOnce(t *testing.T) {
	tm := writing
	const period = 25 * time.Second
	ins := threeInstances(t, tm, func(c map[string]any) {
		c["schedule"] = map[string]any{"reconcile": schedule, "rotate_secret": "@every " + period.String(), "jitter": "0s"}
	})
	started := time.Now()
	startTogether(t, ins)
	waitOneLeader(t, ins, 30*time.Second+tm.lease)
	waitInSync(t, ins, started, 2*time.Minute)
	since := time.Now()
	env.AK.ResetCounts()
	waitFor(t, 3*time.Minute, "two rotations", func() bool { return len(rotationTimes(ins)) >= 2 })
	second := time.Now()
	waitInSync(t, ins, second, time.Minute)
	// No more rotations (a reload with rotate_secret off), then let the leader settle.
	for _, in := range ins {
		in.rewrite(t, func(c map[string]any) {
			c["schedule"] = map[string]any{"reconcile": schedule, "rotate_secret": "", "jitter": "0s"}
		})
		in.signal(syscall.SIGHUP)
	}
	times := rotationTimes(ins)
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < period-10*time.Second {
			t.Errorf("rotations %s apart (period %s): two in one period; all: %v", gap, period, times)
		}
	}
	waitInSync(t, ins, time.Now(), 2*time.Minute)
	secretWrites := 0
	for k, v := range authentikWrites() {
		if strings.Contains(k, "/providers/oauth2/") {
			secretWrites += v
		}
	}
	// A rotation cut short by losing the lease (a cluster restart outlasting it) is rolled
	// back or forward: a write more, never a rotation more.
	t.Logf("%d rotations (%v): %d provider writes in authentik, MinIO %v", len(times), times, secretWrites, countNames(audit.since(since)))
	if a, m := providerSecret(t), minioSecret(t); a == "" || a != m {
		t.Errorf("after the rotations authentik and MinIO hold different secrets (equal: %v)", a == m)
	}
	wantLogins(t)
}

// rotationTimes are the times of the rotations the instances logged, in order.
func rotationTimes(ins []*instance) []time.Time {
	var out []time.Time
	for _, in := range ins {
		b, _ := os.ReadFile(in.log)
		for _, line := range strings.Split(string(b), "\n") {
			// The daemon's line (the rotation package logs one with the provider's name).
			if !strings.Contains(line, `"msg":"client secret rotated"}`) {
				continue
			}
			var e struct{ TS string }
			if json.Unmarshal([]byte(line), &e) == nil {
				if ts, err := time.Parse(time.RFC3339Nano, e.TS); err == nil {
					out = append(out, ts)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// TestKillLeaderRepeatedly: kill -9 the leader 20 times in a row (a new process each time):
// every time a follower takes over, in a new term; the failover times (death to the new
// leader's first write, its lease takeover, as its /status shows) are logged for
// docs/benchmarks.md (target: under one lease plus one run). Nothing drifts, so nothing but
// the lease is written.
func TestKillLeaderRepeatedly(t *testing.T) {
	tm := failover
	ins := threeInstances(t, tm, nil)
	started := time.Now()
	startTogether(t, ins)
	waitOneLeader(t, ins, 30*time.Second+tm.lease)
	waitInSync(t, ins, started, 2*time.Minute)
	since := time.Now()
	env.AK.ResetCounts()
	var times []time.Duration
	for round := range 20 {
		leader := waitOneLeader(t, ins, 5*tm.lease)
		st, _ := leader.status()
		died := time.Now()
		leader.kill()
		next := waitOneLeader(t, without(ins, leader), 5*tm.lease)
		took := time.Since(died)
		nst, _ := next.status()
		if nst.HA.Term <= st.HA.Term {
			t.Errorf("round %d: term %d after %d", round, nst.HA.Term, st.HA.Term)
		}
		times = append(times, took)
		leader.start(t) // a new process in its place, a follower now
	}
	sorted := slices.Clone(times)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	median, worst := sorted[len(sorted)/2], sorted[len(sorted)-1]
	t.Logf("failover after kill -9, 20 rounds, lease %s, renew %s: median %s, max %s (all: %v)",
		tm.lease, tm.renew, median.Round(time.Millisecond), worst.Round(time.Millisecond), times)
	if w := audit.since(since); len(w) > 0 {
		t.Errorf("failovers without drift wrote to MinIO: %v", w)
	}
	if w := authentikWrites(); total(w) > 0 {
		t.Errorf("failovers without drift wrote to authentik: %v", w)
	}
}

func without(ins []*instance, x *instance) []*instance {
	var out []*instance
	for _, in := range ins {
		if in != x {
			out = append(out, in)
		}
	}
	return out
}

// patchExpression edits the scope mapping's expression in authentik, as an operator would.
func patchExpression(t *testing.T, expr string) {
	t.Helper()
	ak := aksimtest.Client(env.AK)
	ctx := context.Background()
	l, _, err := ak.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).Name(e2eenv.MappingName).Execute()
	if err != nil || len(l.Results) != 1 {
		t.Fatalf("find the scope mapping: %v", err)
	}
	req := api.PatchedScopeMappingRequest{}
	req.SetExpression(expr)
	if _, _, err := ak.PropertymappingsAPI.PropertymappingsProviderScopePartialUpdate(ctx, l.Results[0].Pk).
		PatchedScopeMappingRequest(req).Execute(); err != nil {
		t.Fatal(err)
	}
}

// wantLogins: the demo users' STS logins through the cluster grant what the bindings say.
func wantLogins(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		user        string
		read, write bool
		refused     bool
	}{
		{user: "alice", read: true, write: true},
		{user: "bob", read: true},
		{user: "carol", refused: true},
		{user: "dave", read: true},
	} {
		a, err := login(ctx, tc.user)
		switch {
		case tc.refused && err == nil:
			t.Errorf("%s: logged in with %+v; want an STS refusal", tc.user, a)
		case tc.refused:
		case err != nil:
			t.Errorf("%s: %v", tc.user, err)
		case a.CanRead != tc.read || a.CanWrite != tc.write:
			t.Errorf("%s: read %v write %v; want read %v write %v", tc.user, a.CanRead, a.CanWrite, tc.read, tc.write)
		}
	}
}

// login is env.Login, tried again for a while when the cluster itself is short of quorum
// for a moment (STS writes the session to IAM; on 2 busy cores, inter-node calls time out
// now and then): that is MinIO's weather, not what akminio configured.
func login(ctx context.Context, user string) (miniotest.Access, error) {
	var err error
	for range 10 {
		var a miniotest.Access
		if a, err = env.Login(ctx, user); err == nil {
			return a, nil
		}
		msg := err.Error()
		if !strings.Contains(msg, "insufficient") && !strings.Contains(msg, "unwritable") &&
			!strings.Contains(msg, "deadline") && !strings.Contains(msg, "being initialized") &&
			!strings.Contains(msg, "connection refused") {
			return a, err
		}
		time.Sleep(time.Second)
	}
	return miniotest.Access{}, err
}

// TestLeaderDiesMidRotation: the leader is killed in the middle of a rotation, right after
// it set the new secret on authentik (the point of no return). The next leader finds MinIO
// on the old secret and authentik on the new one, and its first run makes MinIO follow
// authentik: both sides end equal, on the new secret (none lost), and logins work.
func TestLeaderDiesMidRotation(t *testing.T) {
	tm := writing
	ins := make([]*instance, 3)
	for i := range ins {
		rotate := "" // only the first instance rotates, and it crashes doing so
		if i == 0 {
			rotate = "@every 20s"
		}
		ins[i] = newInstance(t, fmt.Sprintf("rot-%d", i), i, tm, func(c map[string]any) {
			c["schedule"] = map[string]any{"reconcile": schedule, "rotate_secret": rotate, "jitter": "0s"}
		})
	}
	started := time.Now()
	// rot-0 alone first, until the setup (and its cluster restart) is done: then it leads
	// when its rotation comes, as nobody else was there to take over meanwhile.
	ins[0].start(t, "AKMINIO_TEST_CRASH_AFTER=authentik_set")
	waitOneLeader(t, ins[:1], 30*time.Second+3*tm.lease)
	waitInSync(t, ins[:1], started, 3*time.Minute)
	before := providerSecret(t)
	ins[1].start(t)
	ins[2].start(t)

	waitFor(t, 3*time.Minute, "the leader to crash mid-rotation", ins[0].exitedNow)
	next := waitOneLeader(t, ins[1:], 3*tm.lease+30*time.Second)
	after := providerSecret(t)
	if after == before {
		t.Fatal("authentik still has the old secret: the crash came before the point this test needs")
	}
	waitFor(t, 2*time.Minute, "MinIO to hold authentik's new secret", func() bool {
		return minioSecret(t) == after
	})
	waitInSync(t, ins[1:], time.Now(), 2*time.Minute)
	t.Logf("%s rolled the rotation forward", next.ID)
	wantLogins(t)
}

// providerSecret is the provider's client secret in authentik.
func providerSecret(t *testing.T) string {
	t.Helper()
	ak := aksimtest.Client(env.AK)
	l, _, err := ak.ProvidersAPI.ProvidersOauth2List(context.Background()).Name(e2eenv.ProviderName).Execute()
	if err != nil || len(l.Results) != 1 {
		t.Fatalf("find the provider: %v", err)
	}
	return l.Results[0].GetClientSecret()
}

// minioSecret is identity_openid's client_secret in MinIO's full config export ("" when it
// cannot be read now).
func minioSecret(t *testing.T) string {
	t.Helper()
	raw, err := admin(t, 3).GetConfig(context.Background())
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "identity_openid ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "client_secret="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}
