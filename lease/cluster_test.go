package lease

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/zap"

	"github.com/akminio/akminio/internal/miniotest"
)

// cluster is one distributed MinIO (4 nodes) for every test of the package; each test uses
// keys of its own, and a test that stops nodes starts them again.
var cluster *miniotest.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin := miniotest.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "no MinIO binary at %s: run `make minio` or set %s\n", bin, miniotest.BinaryEnv)
		return 1
	}
	dir, err := os.MkdirTemp("", "lease-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cluster, err = miniotest.LaunchCluster(context.Background(), bin, dir, miniotest.DefaultClusterNodes, miniotest.DefaultClusterDrives)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cluster.Stop()
	c, err := cluster.S3Client()
	if err == nil {
		err = (&S3Store{Client: c, Bucket: "akminio"}).EnsureBucket(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// nodeStore is a Store on node i of the cluster, as the akminio on that host has.
func nodeStore(t *testing.T, i int, key string) *S3Store {
	t.Helper()
	c, err := minio.New(cluster.Nodes[i].Host, &minio.Options{Creds: credsOf(cluster)})
	if err != nil {
		t.Fatal(err)
	}
	return &S3Store{Client: c, Bucket: "akminio", Key: key}
}

func testKey(t *testing.T) string {
	return "leases/" + strings.ReplaceAll(t.Name(), "/", "_") + ".json"
}

// TestConditionalWritesOnCluster: the pinned server honours If-None-Match: * and If-Match on
// a distributed cluster: of four instances creating the lease at once through four nodes,
// exactly one wins and the others get 412; a write with a stale ETag gets 412 too.
func TestConditionalWritesOnCluster(t *testing.T) {
	ctx := context.Background()
	key := testKey(t)
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range cluster.Nodes {
		s := nodeStore(t, i, key)
		wg.Go(func() {
			_, err := s.Create(ctx, Record{Holder: fmt.Sprint("node", i), Term: 1})
			switch {
			case err == nil:
				wins.Add(1)
			case err == ErrConflict:
				conflicts.Add(1)
			default:
				t.Errorf("create through node %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 3 {
		t.Fatalf("concurrent creates: %d won, %d got 412; want 1 and 3", wins.Load(), conflicts.Load())
	}
	s0, s3 := nodeStore(t, 0, key), nodeStore(t, 3, key)
	rec, etag, err := s0.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newETag, err := s3.Replace(ctx, Record{Holder: rec.Holder, Term: rec.Term}, etag)
	if err != nil {
		t.Fatalf("replace with the current ETag through another node: %v", err)
	}
	if _, err := s0.Replace(ctx, Record{Holder: "late", Term: 2}, etag); err != ErrConflict {
		t.Fatalf("replace with a stale ETag = %v, want ErrConflict (412)", err)
	}
	if _, err := s0.Create(ctx, Record{Holder: "late"}); err != ErrConflict {
		t.Fatalf("create over an existing lease = %v, want ErrConflict (412)", err)
	}
	if _, got, _ := s0.Get(ctx); got != newETag {
		t.Fatalf("ETag after the lost writes %s, want %s", got, newETag)
	}
}

// instance is an Elector on one node, running until stopped.
type instance struct {
	e    *Elector
	stop context.CancelFunc
	done chan struct{}
}

func startInstance(t *testing.T, node int, key, id string, s Store) *instance {
	t.Helper()
	if s == nil {
		s = nodeStore(t, node, key)
	}
	e, err := New(s, Options{Identity: id, Duration: 2 * time.Second, RenewInterval: 400 * time.Millisecond,
		StepBudget: 200 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{e: e, stop: cancel, done: make(chan struct{})}
	go func() { defer close(in.done); e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-in.done })
	return in
}

// leaders waits until exactly one of ins leads and all agree on it, and returns it.
func oneLeader(t *testing.T, ins []*instance, timeout time.Duration) *instance {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var leaders []*instance
		for _, in := range ins {
			if in.e.IsLeader() {
				leaders = append(leaders, in)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d leaders at once", len(leaders))
		}
		if len(leaders) == 1 {
			agree := true
			for _, in := range ins {
				agree = agree && in.e.Status().Holder == leaders[0].e.opts.Identity
			}
			if agree {
				return leaders[0]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, in := range ins {
		t.Logf("%s: %+v", in.e.opts.Identity, in.e.Status())
	}
	t.Fatalf("no single leader within %s", timeout)
	return nil
}

// deadStore fails every call once dead is set: a killed instance, whose last renewal is
// all the others ever see.
type deadStore struct {
	Store
	dead atomic.Bool
}

func (d *deadStore) Get(ctx context.Context) (Record, string, error) {
	if d.dead.Load() {
		return Record{}, "", fmt.Errorf("dead")
	}
	return d.Store.Get(ctx)
}

func (d *deadStore) Replace(ctx context.Context, r Record, etag string) (string, error) {
	if d.dead.Load() {
		return "", fmt.Errorf("dead")
	}
	return d.Store.Replace(ctx, r, etag)
}

func (d *deadStore) Create(ctx context.Context, r Record) (string, error) {
	if d.dead.Load() {
		return "", fmt.Errorf("dead")
	}
	return d.Store.Create(ctx, r)
}

// TestElectionOnCluster: three instances on three nodes elect one leader; a clean stop
// hands over at the next read; a dead leader is replaced once its lease has run out, in a
// new term; with one node of four down the lease goes on; with three down nobody leads and
// everyone says why.
func TestElectionOnCluster(t *testing.T) {
	key := testKey(t)
	stores := make([]*deadStore, 3)
	ins := make([]*instance, 3)
	for i := range ins {
		stores[i] = &deadStore{Store: nodeStore(t, i, key)}
		ins[i] = startInstance(t, i, key, fmt.Sprint("host", i), stores[i])
	}
	first := oneLeader(t, ins, 10*time.Second)
	term := first.e.Status().Term

	// A clean stop releases: the next leader comes well before a lease duration.
	stopped := time.Now()
	first.stop()
	<-first.done
	rest := without(ins, first)
	second := oneLeader(t, rest, 10*time.Second)
	if took := time.Since(stopped); took >= 2*time.Second {
		t.Errorf("handover after a clean stop took %s, want less than the lease duration", took)
	}
	if st := second.e.Status(); st.Term != term+1 {
		t.Errorf("term after the handover %d, want %d", st.Term, term+1)
	}

	// A dead leader: its lease runs out, then the last one takes over.
	for i, in := range ins {
		if in == second {
			stores[i].dead.Store(true)
		}
	}
	died := time.Now()
	third := oneLeader(t, without(rest, second), 10*time.Second)
	took := time.Since(died)
	if took < 2*time.Second-500*time.Millisecond {
		t.Errorf("takeover of a dead leader after %s, before its lease could have run out", took)
	}
	t.Logf("takeover of a dead leader after %s (lease 2s, renew 400ms)", took.Round(time.Millisecond))
	if second.e.IsLeader() {
		t.Error("the dead leader still counts itself leader")
	}

	// One node of four down (not the one the leader talks to): the lease is renewed.
	if err := cluster.StopNode(3); err != nil {
		t.Fatal(err)
	}
	before := third.e.Status()
	time.Sleep(3 * time.Second) // more than a lease: renewals must have gone on
	if st := third.e.Status(); st.Role != RoleLeader || st.Term != before.Term {
		t.Fatalf("with one node down: %+v, want the same leader in the same term", st)
	}
	// Three down: nobody leads, everyone says why.
	for _, i := range []int{1, 2} {
		if err := cluster.StopNode(i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for third.e.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if third.e.IsLeader() {
		t.Fatal("still the leader with three nodes of four down")
	}
	if err := third.e.MayWrite(context.Background(), "repair"); err == nil {
		t.Fatal("MayWrite with three nodes of four down")
	}
	if r := third.e.Status().Reason; !strings.Contains(r, "lease") {
		t.Errorf("reason %q does not say what is wrong with the lease", r)
	}
	if err := cluster.StartNodes(context.Background(), 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	oneLeader(t, []*instance{third}, 15*time.Second)
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

func credsOf(c *miniotest.Cluster) *credentials.Credentials {
	return credentials.NewStaticV4(c.AccessKey, c.SecretKey, "")
}

// TestRotationNoteOnCluster: the rotation note keeps the latest time any instance wrote, and
// an elector reads it into its status.
func TestRotationNoteOnCluster(t *testing.T) {
	ctx := context.Background()
	key := testKey(t)
	s0, s2 := nodeStore(t, 0, key), nodeStore(t, 2, key)
	if got, err := s0.LastRotation(ctx); err != nil || !got.IsZero() {
		t.Fatalf("no note yet: %s, %v", got, err)
	}
	at := time.Now().UTC().Round(time.Millisecond)
	if err := s2.NoteRotation(ctx, at); err != nil {
		t.Fatal(err)
	}
	if err := s0.NoteRotation(ctx, at.Add(-time.Hour)); err != nil { // an older one is kept out
		t.Fatal(err)
	}
	if got, err := s0.LastRotation(ctx); err != nil || !got.Equal(at) {
		t.Fatalf("note %s, %v; want %s", got, err, at)
	}
	e, err := New(s0, Options{Identity: "reader", Duration: 2 * time.Second, RenewInterval: 500 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(ctx)
	if got := e.Status().SecretRotatedAt; !got.Equal(at) {
		t.Fatalf("elector's rotation time %s, want %s", got, at)
	}
}
