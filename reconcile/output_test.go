package reconcile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestWriteTextSpecExample(t *testing.T) {
	p := Plan{Changes: []Change{
		mnc("create", KindPolicy, "my-custom-policy"),
		akc("update", KindScopeMapping, "OIDC-Scope-minio", "expression"),
		mnc("update", KindOpenID, "identity_openid", "client_secret", "scopes"),
	}}
	var b bytes.Buffer
	if err := WriteText(&b, p); err != nil {
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
	p := Plan{
		Changes: []Change{
			blocked(mnc("create", KindPolicy, "legacy-auditors"), `external policy "legacy-auditors" is missing: managed elsewhere, akminio never writes it`),
			akc("update", KindProvider, "MinIO", "redirect_uris", "signing_key"),
			withID(akc("delete", KindBinding, "Old group"), "b-1"),
			pending(mnc("update", KindOpenID, "identity_openid:ak", "client_secret")),
			mnc("delete", KindPolicy, "old-policy"),
			{System: SystemAuthentik, Action: "verify", Kind: KindVerification, Name: "alice",
				Fields: []string{"claims [readonly], want [consoleAdmin]", `claimed policy "x" does not exist in MinIO`}},
		},
		Unmanaged: []string{"by-hand", `we"ird`},
	}
	var b bytes.Buffer
	if err := WriteText(&b, p); err != nil {
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
	if err := WriteText(&b, Plan{Unmanaged: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	want := "no drift\nminio      info    policy \"x\" is not managed by akminio\n"
	if b.String() != want {
		t.Errorf("WriteText = %q, want %q", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	p := Plan{
		Changes: []Change{
			mnc("create", KindPolicy, "my-custom-policy"),
			pending(mnc("update", KindOpenID, "identity_openid", "client_secret")),
		},
		Unmanaged: []string{"by-hand"},
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, p); err != nil {
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
	if err := WriteJSON(&b, Plan{}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, `"changes": []`) || !strings.Contains(s, `"drift": 0`) || !strings.Contains(s, `"unmanaged": []`) {
		t.Errorf("empty plan as JSON = %s", s)
	}
}

// TestOutputNeverShowsSecrets plans from states that carry secrets on both sides (differing,
// pending, a provider to create) and checks that neither format prints a value.
func TestOutputNeverShowsSecrets(t *testing.T) {
	const minioSecret = "MINIO-OLD-SECRET-qz81"
	d := fxDesired(t, nil)
	states := map[string]func(*Observed){
		"secret differs": func(o *Observed) { o.MinIO.OpenID.ClientSecret = minioSecret },
		"pending": func(o *Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.State.RestartPending = &PendingRestart{Target: oid, Fingerprint: WantedOpenIDKeys(d, o.Authentik.Provider).Fingerprint()}
		},
		"env blocked": func(o *Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.MinIO.OpenID.EnvKeys = map[string]bool{"client_secret": true}
		},
		"provider missing": func(o *Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.Authentik.Provider = nil
		},
	}
	for name, edit := range states {
		t.Run(name, func(t *testing.T) {
			o := fxSynced(t, d)
			edit(o)
			p := ComputePlan(d, o)
			var text, js bytes.Buffer
			if err := WriteText(&text, p); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "client_secret differs") || !strings.Contains(js.String(), `"client_secret"`) {
				t.Errorf("the secret's drift is not named:\n%s\n%s", text.String(), js.String())
			}
			for _, out := range []string{text.String(), js.String()} {
				for _, secret := range []string{fxProviderSecret, minioSecret, fxCreatedSecret} {
					if strings.Contains(out, secret) {
						t.Errorf("output shows a secret:\n%s", out)
					}
				}
			}
		})
	}
}
