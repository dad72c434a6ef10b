package aksim_test

import (
	"strings"
	"testing"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

func TestSeedFile(t *testing.T) {
	s := aksimtest.Start(t)
	seed, err := aksim.ReadSeed(strings.NewReader(`{"groups":[{"name":"Minio admins"},{"name":"ops","parents":["Minio admins"]}],
		"users":[{"username":"alice","email":"a@example.com","groups":["ops"]}]}`))
	must(t, err)
	must(t, s.ApplySeed(seed))
	if m := s.GroupMembers("ops"); len(m) != 1 || m[0] != "alice" {
		t.Fatalf("ops members %v", m)
	}
	if _, err := aksim.ReadSeed(strings.NewReader(`{"grops":[]}`)); err == nil {
		t.Fatal("unknown key accepted")
	}
	bad, _ := aksim.ReadSeed(strings.NewReader(`{"groups":[{"name":"x","parents":["missing"]}]}`))
	if err := s.ApplySeed(bad); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("missing parent: %v", err)
	}
}
