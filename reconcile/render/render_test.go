package render

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/akminio/akminio/reconcile"
)

func TestWriteTextSpecExample(t *testing.T) {
	p := reconcile.Plan{Changes: []reconcile.Change{
		mnc("create", reconcile.KindPolicy, "my-custom-policy"),
		akc("update", reconcile.KindScopeMapping, "OIDC-Scope-minio", "expression"),
		mnc("update", reconcile.KindOpenID, "identity_openid", "client_secret", "scopes"),
	}}
	var b bytes.Buffer
	if err := Text(&b, p); err != nil {
		t.Fatal(err)
	}
	want := `authentik  update  scope mapping "OIDC-Scope-minio": expression differs
minio      create  policy "my-custom-policy"
minio      update  identity_openid: client_secret differs, scopes differ   (restart required)
`
	if b.String() != want {
		t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteTextEveryKindOfLine(t *testing.T) {
	p := reconcile.Plan{
		Changes: []reconcile.Change{
			blocked(mnc("create", reconcile.KindPolicy, "legacy-auditors"), `external policy "legacy-auditors" is missing: managed elsewhere, akminio never writes it`),
			akc("update", reconcile.KindProvider, "MinIO", "redirect_uris", "signing_key"),
			withID(akc("delete", reconcile.KindBinding, "Old group"), "b-1"),
			pending(mnc("update", reconcile.KindOpenID, "identity_openid:ak", "client_secret")),
			mnc("delete", reconcile.KindPolicy, "old-policy"),
			{System: reconcile.SystemAuthentik, Action: "verify", Kind: reconcile.KindVerification, Name: "alice",
				Fields: []string{"claims [readonly], want [consoleAdmin]", `claimed policy "x" does not exist in MinIO`}},
		},
		Unmanaged: []string{"by-hand", `we"ird`},
	}
	var b bytes.Buffer
	if err := Text(&b, p); err != nil {
		t.Fatal(err)
	}
	want := `authentik  update  provider "MinIO": redirect_uris differ, signing_key differs
authentik  delete  binding of group "Old group"
authentik  verify  verification "alice": claims [readonly], want [consoleAdmin]; claimed policy "x" does not exist in MinIO
minio      create  policy "legacy-auditors"   (blocked: external policy "legacy-auditors" is missing: managed elsewhere, akminio never writes it)
minio      update  identity_openid:ak: client_secret differs   (written, restart pending)
minio      delete  policy "old-policy"
minio      info    policy "by-hand" is not managed by akminio
minio      info    policy "we\"ird" is not managed by akminio
`
	if b.String() != want {
		t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteTextNoDrift(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, reconcile.Plan{Unmanaged: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	want := "no drift\nminio      info    policy \"x\" is not managed by akminio\n"
	if b.String() != want {
		t.Errorf("WriteText = %q, want %q", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	p := reconcile.Plan{
		Changes: []reconcile.Change{
			mnc("create", reconcile.KindPolicy, "my-custom-policy"),
			pending(mnc("update", reconcile.KindOpenID, "identity_openid", "client_secret")),
		},
		Unmanaged: []string{"by-hand"},
	}
	var b bytes.Buffer
	if err := JSON(&b, p); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Changes []map[string]any `json:"changes"`
		Drift   int              `json:"drift"`
		Pending bool             `json:"restart_pending"`
		Unman   []string         `json:"unmanaged"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if got.Drift != 2 || !got.Pending || !reflect.DeepEqual(got.Unman, []string{"by-hand"}) || len(got.Changes) != 2 {
		t.Fatalf("WriteJSON = %s", b.String())
	}
	first := got.Changes[0]
	want := map[string]any{"system": "minio", "action": "create", "kind": "policy", "name": "my-custom-policy",
		"fields": []any{}, "restart_required": false}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("first change = %v, want %v", first, want)
	}
	if c := got.Changes[1]; c["pending"] != true || c["restart_required"] != true || !reflect.DeepEqual(c["fields"], []any{"client_secret"}) {
		t.Errorf("second change = %v", c)
	}

	b.Reset()
	if err := JSON(&b, reconcile.Plan{}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, `"changes": []`) || !strings.Contains(s, `"drift": 0`) || !strings.Contains(s, `"unmanaged": []`) {
		t.Errorf("empty plan as JSON = %s", s)
	}
}

func akc(action reconcile.Action, kind reconcile.Kind, name string, fields ...string) reconcile.Change {
	return reconcile.Change{System: reconcile.SystemAuthentik, Action: action, Kind: kind, Name: name, Fields: fields}
}

func mnc(action reconcile.Action, kind reconcile.Kind, name string, fields ...string) reconcile.Change {
	c := reconcile.Change{System: reconcile.SystemMinIO, Action: action, Kind: kind, Name: name, Fields: fields}
	c.RestartRequired = kind == reconcile.KindOpenID
	return c
}

func blocked(c reconcile.Change, reason string) reconcile.Change { c.Blocked = reason; return c }
func pending(c reconcile.Change) reconcile.Change                { c.Pending = true; return c }

func withID(c reconcile.Change, id string) reconcile.Change { c.ID = id; return c }
