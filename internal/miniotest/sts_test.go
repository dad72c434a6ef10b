package miniotest

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
)

// userWithPolicy creates a user and attaches a built-in policy to it.
func userWithPolicy(t *testing.T, adm *madmin.AdminClient, name, policy string) Creds {
	t.Helper()
	ctx := context.Background()
	secret := randomHex(12)
	if err := adm.AddUser(ctx, name, secret); err != nil {
		t.Fatalf("AddUser(%s): %v", name, err)
	}
	req := madmin.PolicyAssociationReq{Policies: []string{policy}, User: name}
	if _, err := adm.AttachPolicy(ctx, req); err != nil {
		t.Fatalf("AttachPolicy(%s, %s): %v", name, policy, err)
	}
	return Creds{AccessKey: name, SecretKey: secret}
}

func TestProbe(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	adm := s.Admin(t)
	if err := s.S3(t).MakeBucket(ctx, "data", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	cases := []struct {
		name  string
		creds Creds
		want  Access
	}{
		{"root", Creds{AccessKey: s.AccessKey, SecretKey: s.SecretKey}, Access{CanRead: true, CanWrite: true}},
		{"readonly", userWithPolicy(t, adm, "reader", "readonly"), Access{CanRead: true}},
		{"writeonly", userWithPolicy(t, adm, "writer", "writeonly"), Access{CanWrite: true}},
		{"readwrite", userWithPolicy(t, adm, "editor", "readwrite"), Access{CanRead: true, CanWrite: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Probe(ctx, s.Endpoint, tc.creds, "data")
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got != tc.want {
				t.Errorf("Probe = %+v, want %+v", got, tc.want)
			}
		})
	}

	// The probe removes its object when it may: only writeonly's (no delete) stays.
	var left []string
	for obj := range s.S3(t).ListObjects(ctx, "data", minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("ListObjects: %v", obj.Err)
		}
		left = append(left, obj.Key)
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "akminio-probe/") {
		t.Errorf("objects left in the bucket = %v, want writeonly's one probe object", left)
	}
}

func TestProbeErrors(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	root := Creds{AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	if _, err := Probe(ctx, s.Endpoint, root, "missing"); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Probe of a missing bucket: err = %v, want the bucket named as missing", err)
	}
	bad := Creds{AccessKey: "nobody", SecretKey: "wrong-secret"}
	if _, err := Probe(ctx, s.Endpoint, bad, "missing"); err == nil {
		t.Error("Probe with unknown credentials: no error, want one (not a denial)")
	}
	if _, err := Probe(ctx, "127.0.0.1:9000", root, "data"); err == nil ||
		!strings.Contains(err.Error(), "not a URL") {
		t.Errorf("Probe with a bare host: err = %v", err)
	}
}
