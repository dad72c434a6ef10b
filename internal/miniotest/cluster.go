package miniotest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
)

// Cluster is a distributed MinIO on loopback: several server processes ("nodes"), each
// with an API port and drive folders of its own, forming one cluster, as production runs
// one server per host. Every node is started with the same argument in MinIO's ellipsis
// form, for example
//
//	http://127.0.0.1:{21001...21004}/tmp/x/drives/d{1...2}
//
// How one host holds such a cluster (read in MinIO's cmd/endpoint-ellipses.go and
// cmd/endpoint.go, and tried on the pinned server):
//
//   - Each {a...b} expands on its own, anywhere in the argument, ports included, and the
//     expansions combine as a cross product: 4 ports times 2 paths are 8 drives, and every
//     node has the same two paths. A port range is a range of numbers, so a cluster takes
//     consecutive ports; LaunchCluster looks for a free run of them.
//   - On one host, the same path on four nodes would be one folder shared by four drives.
//     So each node runs in a mount namespace of its own, in which <dir>/drives is its own
//     folder <dir>/nodeN, bind-mounted (as root a plain mount namespace; otherwise inside a
//     user namespace that maps the caller to root).
//   - MinIO refuses one path served on one address under different ports on bare metal
//     ("same path ... can not be served by different port on same address") unless
//     _MINIO_REVERSE_PROXY and MINIO_CI_CD are set; in a container (/.dockerenv) it waits
//     forever for 127.0.0.1 "to resolve to a valid IP" unless _MINIO_SERVER_LOCAL names the
//     node's own host:port. Every node gets all three; MINIO_CI_CD also lets MinIO use
//     drives on the root disk, which a distributed server otherwise refuses.
//
// Nodes can be stopped and started one by one (StopNode, StartNodes) to take the cluster
// below its quorum and back. With 4 nodes of 2 drives, one node down keeps read and write
// quorum; three down lose both.
type Cluster struct {
	Nodes     []*Process
	Endpoint  string // node 0's "http://127.0.0.1:<port>"
	Host      string // node 0's "127.0.0.1:<port>"
	AccessKey string // root user, shared by every node
	SecretKey string // root password (a random test value)
	Arg       string // the ellipsis argument every node runs with
	Dir       string

	drives int // per node
}

// Defaults of LaunchCluster.
const (
	DefaultClusterNodes  = 4
	DefaultClusterDrives = 2
)

// LaunchCluster starts a cluster of nodes servers with drives drives each, under dir,
// and waits until it is ready (see Cluster.WaitReady). Options apply to every node; the
// root credentials are shared. ctx bounds the wait only.
func LaunchCluster(ctx context.Context, bin, dir string, nodes, drives int, opts ...Option) (*Cluster, error) {
	if nodes < 2 || drives < 1 {
		return nil, fmt.Errorf("miniotest: a cluster needs at least 2 nodes and 1 drive each, not %d and %d", nodes, drives)
	}
	o := options{startTimeout: DefaultStartTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.accessKey == "" {
		o.accessKey = "root-" + randomHex(6)
		o.secretKey = randomHex(20)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("miniotest: minio binary: %w (build it with `make minio`)", err)
	}
	if _, err := nodeProcAttr(); err != nil {
		return nil, err
	}
	mount := filepath.Join(dir, "drives")
	if err := os.MkdirAll(mount, 0o700); err != nil {
		return nil, fmt.Errorf("miniotest: create %s: %w", mount, err)
	}
	c := &Cluster{AccessKey: o.accessKey, SecretKey: o.secretKey, Dir: dir, drives: drives}
	const attempts = 3
	var err error
	for range attempts {
		var base int
		if base, err = freePortRun(nodes); err != nil {
			return nil, err
		}
		c.Arg = fmt.Sprintf("http://127.0.0.1:{%d...%d}%s/d{1...%d}", base, base+nodes-1, mount, drives)
		c.Nodes = c.Nodes[:0]
		for i := range nodes {
			p, err := newNode(bin, dir, mount, c.Arg, base+i, i, drives, o)
			if err != nil {
				return nil, err
			}
			c.Nodes = append(c.Nodes, p)
		}
		c.Host, c.Endpoint = c.Nodes[0].Host, c.Nodes[0].Endpoint
		if err = c.startAll(ctx, o.startTimeout); err == nil {
			return c, nil
		}
		taken := false
		for _, p := range c.Nodes {
			taken = taken || p.portTaken()
		}
		if !taken {
			return nil, err
		}
	}
	return nil, fmt.Errorf("miniotest: start cluster: %d attempts lost a port race: %w", attempts, err)
}

// newNode prepares node i (not started).
func newNode(bin, dir, mount, arg string, port, i, drives int, o options) (*Process, error) {
	own := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
	for d := 1; d <= drives; d++ {
		if err := os.MkdirAll(filepath.Join(own, "d"+strconv.Itoa(d)), 0o700); err != nil {
			return nil, fmt.Errorf("miniotest: create node %d's drives: %w", i+1, err)
		}
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Process{
		Host:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ConsoleHost: net.JoinHostPort("127.0.0.1", strconv.Itoa(console)),
		AccessKey:   o.accessKey,
		SecretKey:   o.secretKey,
		DataDir:     own,
		LogPath:     filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)),
		bin:         bin,
		opts:        o,
		node:        &nodeSpec{arg: arg, mount: mount, own: own},
	}
	p.Endpoint = "http://" + p.Host
	p.env = append(serverEnv(os.Environ(), o),
		"MINIO_CI_CD=1", "_MINIO_REVERSE_PROXY=1", "_MINIO_SERVER_LOCAL="+p.Host)
	return p, nil
}

// freePortRun finds n consecutive free ports on 127.0.0.1, below Linux's ephemeral range
// so that outgoing connections do not take them meanwhile.
func freePortRun(n int) (int, error) {
	const lo, hi = 20000, 32000
	for range 50 {
		base := lo + rand.IntN(hi-lo-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("miniotest: no %d consecutive free ports on 127.0.0.1", n)
}

// nodeSpec is how a cluster node's command differs from a single server's.
type nodeSpec struct {
	arg   string // the ellipsis argument
	mount string // the path in arg that holds the drives
	own   string // the node's own folder, bind-mounted on mount in its namespace
}

// nodeScript bind-mounts the node's folder in its own mount namespace (private, so that
// nothing propagates back to the host) and becomes the server.
const nodeScript = `mount --make-rprivate / && mount --bind "$1" "$2" && shift 2 && exec "$@"`

func (n *nodeSpec) command(p *Process) (*exec.Cmd, error) {
	attr, err := nodeProcAttr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", nodeScript, "sh", n.own, n.mount,
		p.bin, "server", n.arg, "--address", p.Host, "--console-address", p.ConsoleHost)
	cmd.SysProcAttr = attr
	return cmd, nil
}

// startAll starts every node and waits until the cluster is ready; on failure it stops
// them all, and the error carries the failing nodes' log tails.
func (c *Cluster) startAll(ctx context.Context, timeout time.Duration) error {
	for _, p := range c.Nodes {
		if err := p.start(); err != nil {
			_ = c.Stop()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		_ = c.Stop()
		return err
	}
	return nil
}

// WaitReady waits until every running node is ready (its admin API answers and its IAM is
// loaded, as Process.WaitReady) and, when none is stopped, until every node reaches every
// drive: a node that just came back answers before the others have reconnected to its
// drives (and before it has connected to theirs), and writes through them fail until then.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var running []*Process
	for _, p := range c.Nodes {
		if p.PID() != 0 {
			running = append(running, p)
		}
	}
	if err := waitAll(ctx, running); err != nil {
		return err
	}
	if len(running) < len(c.Nodes) {
		return nil
	}
	for _, p := range c.Nodes {
		adm, err := p.AdminClient()
		if err != nil {
			return err
		}
		var last error
		for last = c.allOnline(ctx, adm); last != nil; last = c.allOnline(ctx, adm) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("miniotest: cluster not ready: %w (last, from %s: %v)", ctx.Err(), p.Host, last)
			case <-time.After(pollInterval):
			}
		}
	}
	return nil
}

func waitAll(ctx context.Context, nodes []*Process) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, p := range nodes {
		wg.Go(func() {
			if err := p.WaitReady(ctx); err != nil {
				errs[i] = fmt.Errorf("%w\nlast lines of %s:\n%s", err, p.LogPath, p.LogTail(20))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// allOnline checks that the node behind adm reaches every drive of the cluster
// (StorageInfo is the node's own view; ServerInfo would be each node's view of its own
// drives).
func (c *Cluster) allOnline(ctx context.Context, adm *madmin.AdminClient) error {
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := adm.StorageInfo(callCtx)
	if err != nil {
		return fmt.Errorf("admin StorageInfo: %w", err)
	}
	ok := 0
	for _, d := range info.Disks {
		if d.State == madmin.DriveStateOk {
			ok++
		}
	}
	if want := c.drives * len(c.Nodes); ok != want {
		return fmt.Errorf("%d of %d drives ok", ok, want)
	}
	return nil
}

// StopNode stops node i (SIGTERM, then SIGKILL); the others go on.
func (c *Cluster) StopNode(i int) error { return c.Nodes[i].Stop() }

// StartNodes starts the stopped nodes among idx, at once (a node below quorum waits for
// the others), and waits until the cluster is ready again.
func (c *Cluster) StartNodes(ctx context.Context, idx ...int) error {
	for _, i := range idx {
		if c.Nodes[i].PID() != 0 {
			continue
		}
		if err := c.Nodes[i].start(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Nodes[0].opts.startTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// Stop stops every node.
func (c *Cluster) Stop() error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, p := range c.Nodes {
		wg.Go(func() { errs[i] = p.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Starts sums the nodes' Starts: an in-place restart of the cluster (ServiceRestartV2,
// which restarts every node) adds one per node.
func (c *Cluster) Starts() int {
	n := 0
	for _, p := range c.Nodes {
		n += p.Starts()
	}
	return n
}

// WaitRestarted waits until every node has restarted in place since before := c.Starts()
// (each node printed one more start banner), then until the cluster is ready.
func (c *Cluster) WaitRestarted(ctx context.Context, before int) error {
	for c.Starts() < before+len(c.Nodes) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("miniotest: cluster did not restart: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	return c.WaitReady(ctx)
}

// AdminClient returns a madmin client for node 0 with the root credentials.
func (c *Cluster) AdminClient() (*madmin.AdminClient, error) { return c.Nodes[0].AdminClient() }

// S3Client returns a minio-go client for node 0 with the root credentials.
func (c *Cluster) S3Client() (*minio.Client, error) { return c.Nodes[0].S3Client() }

// LogTails returns the last n lines of every node's log, for a failing test.
func (c *Cluster) LogTails(n int) string {
	var out string
	for _, p := range c.Nodes {
		out += fmt.Sprintf("--- %s (%s)\n%s\n", p.Host, p.LogPath, p.LogTail(n))
	}
	return out
}

// StartCluster launches a cluster of DefaultClusterNodes nodes with DefaultClusterDrives
// drives each in t.TempDir() and stops it when the test ends; like Start, a missing binary
// fails the test. Starting a cluster takes a few seconds: share one between the tests of a
// package (LaunchCluster in TestMain, or a sync.Once) where they leave it as they found it.
func StartCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	bin := BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("miniotest: no MinIO binary at %s (%v): run `make minio` (or scripts/minio.sh ensure), or set %s",
			bin, err, BinaryEnv)
	}
	c, err := LaunchCluster(context.Background(), bin, t.TempDir(), DefaultClusterNodes, DefaultClusterDrives, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("miniotest: last lines of the cluster's logs:\n%s", c.LogTails(15))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("miniotest: stop cluster: %v", err)
		}
	})
	return c
}
