package miniotest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
)

// TestCluster: four nodes from one ellipsis argument form one cluster of eight drives; an
// object written through one node reads back through another; with one node stopped the
// cluster still takes writes, with three stopped it takes none, and once they are back it
// works again.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	c := StartCluster(t)
	t.Logf("cluster ready in %s: %s", time.Since(start).Round(time.Millisecond), c.Arg)
	if !strings.Contains(c.Arg, "{") || !strings.Contains(c.Arg, "...") {
		t.Fatalf("cluster argument %q is not in the ellipsis form", c.Arg)
	}
	adm, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	info, err := adm.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drives := 0
	for _, s := range info.Servers {
		drives += len(s.Disks)
	}
	if len(info.Servers) != 4 || drives != 8 || info.Mode != string(madmin.ItemOnline) {
		t.Fatalf("ServerInfo: %d servers, %d drives, mode %q; want 4, 8, online", len(info.Servers), drives, info.Mode)
	}

	first := s3Client(t, c.Nodes[0])
	if err := first.MakeBucket(ctx, "cluster", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	put := func(p *Process, key string) error {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s3Client(t, p).PutObject(callCtx, "cluster", key, bytes.NewReader([]byte(key)), int64(len(key)), minio.PutObjectOptions{})
		return err
	}
	if err := put(c.Nodes[0], "one"); err != nil {
		t.Fatal(err)
	}
	obj, err := s3Client(t, c.Nodes[3]).GetObject(ctx, "cluster", "one", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if body, err := io.ReadAll(obj); err != nil || string(body) != "one" {
		t.Fatalf("read through node 4: %q, %v; want \"one\"", body, err)
	}

	if err := c.StopNode(3); err != nil {
		t.Fatal(err)
	}
	if err := put(c.Nodes[1], "two"); err != nil {
		t.Fatalf("write with one node of four down: %v", err)
	}
	for _, i := range []int{1, 2} {
		if err := c.StopNode(i); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	if err := put(c.Nodes[0], "three"); err == nil {
		t.Fatal("write with three nodes of four down succeeded, want an error")
	}
	t.Logf("write below quorum failed after %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := c.StartNodes(ctx, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster ready again in %s", time.Since(start).Round(time.Millisecond))
	if err := put(c.Nodes[2], "four"); err != nil {
		t.Fatalf("write after the nodes came back: %v", err)
	}
}

func s3Client(t *testing.T, p *Process) *minio.Client {
	t.Helper()
	c, err := p.S3Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
