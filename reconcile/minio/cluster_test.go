package minio

import (
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/miniotest"
)

// TestRestartWaitsForEveryNode: in a distributed MinIO a restart is of every node, and
// Restart returns only once every node that was up has restarted and is ready, so that no
// node answers with the config it had before. With one node down, Restart does not wait
// for it.
func TestRestartWaitsForEveryNode(t *testing.T) {
	ctx := testCtx(t)
	c := miniotest.StartCluster(t)
	a, err := New(config.MinIO{
		Endpoint:  c.Nodes[1].Endpoint,
		AccessKey: config.Secret(c.AccessKey),
		SecretKey: config.Secret(c.SecretKey),
		Timeout:   10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // every node up for longer than a restarted one can be
	starts := make([]int, len(c.Nodes))
	for i, p := range c.Nodes {
		starts[i] = p.Starts()
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for i, p := range c.Nodes {
		if got := p.Starts(); got != starts[i]+1 {
			t.Errorf("node %d started %d times during Restart, want once", i+1, got-starts[i])
		}
		if err := p.WaitReady(ctx); err != nil {
			t.Errorf("node %d not ready after Restart: %v", i+1, err)
		}
	}

	if err := c.StopNode(3); err != nil {
		t.Fatal(err)
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatalf("Restart with one node of four down: %v", err)
	}
}
