package access

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

func TestCompute(t *testing.T) {
	d := &reconcile.Desired{Match: config.MatchFirst, Bindings: []config.Binding{
		{Group: "Minio admins", Policies: []string{"consoleAdmin"}},
		{Group: "Minio users", Policies: []string{"readonly"}},
	}}
	previews := []reconcile.UserPreview{
		{Username: "alice", Groups: []string{"Minio admins"}, Claims: map[string]any{"policy": "consoleAdmin"}},
		// now a comma-separated string, as MinIO reads it; after loses one policy
		{Username: "bob", Groups: []string{"Minio users"}, Claims: map[string]any{"policy": "readonly, my-custom-policy"}},
		// no claim now; a child group's member gains through the parent
		{Username: "dave", Groups: []string{"Minio interns", "Minio users"}, Claims: map[string]any{}},
		{Username: "carol", Groups: nil, Claims: nil},
	}
	got := Compute(previews, "policy", d)
	want := []Row{
		{"alice", []string{"Minio admins"}, []string{"consoleAdmin"}, []string{"consoleAdmin"}, []string{}, []string{}},
		{"bob", []string{"Minio users"}, []string{"readonly", "my-custom-policy"}, []string{"readonly"}, []string{}, []string{"my-custom-policy"}},
		{"dave", []string{"Minio interns", "Minio users"}, []string{}, []string{"readonly"}, []string{"readonly"}, []string{}},
		{"carol", []string{}, []string{}, []string{}, []string{}, []string{}},
	}
	if !reflect.DeepEqual(got.Users, want) {
		t.Errorf("got %+v\nwant %+v", got.Users, want)
	}
	if l := got.Losing(); len(l) != 1 || l[0].Username != "bob" {
		t.Errorf("losing %+v, want bob", l)
	}
	var b bytes.Buffer
	if err := WriteText(&b, got); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bob    Minio users", "LOSES my-custom-policy", "gains readonly", "4 users: 1 gain, 1 lose access"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}
	out, err := AddToJSON([]byte(`{"changes":[],"drift":0}`), got)
	if err != nil || !strings.Contains(string(out), `"access": {`) || !strings.Contains(string(out), `"drift": 0`) {
		t.Errorf("AddToJSON: %v\n%s", err, out)
	}
}
