package reconcile_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/render"
)

// TestOutputNeverShowsSecrets plans from states that carry secrets on both sides (differing,
// pending, a provider to create) and checks that neither format prints a value.
func TestOutputNeverShowsSecrets(t *testing.T) {
	const minioSecret = "MINIO-OLD-SECRET-qz81"
	d := reconcile.FxDesired(t, nil)
	states := map[string]func(*reconcile.Observed){
		"secret differs": func(o *reconcile.Observed) { o.MinIO.OpenID.ClientSecret = minioSecret },
		"pending": func(o *reconcile.Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.State.RestartPending = &reconcile.PendingRestart{Target: reconcile.FxOpenIDTarget, Fingerprint: reconcile.WantedOpenIDKeys(d, o.Authentik.Provider).Fingerprint()}
		},
		"env blocked": func(o *reconcile.Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.MinIO.OpenID.EnvKeys = map[string]bool{"client_secret": true}
		},
		"provider missing": func(o *reconcile.Observed) {
			o.MinIO.OpenID.ClientSecret = minioSecret
			o.Authentik.Provider = nil
		},
	}
	for name, edit := range states {
		t.Run(name, func(t *testing.T) {
			o := reconcile.FxSynced(t, d)
			edit(o)
			p := reconcile.ComputePlan(d, o)
			var text, js bytes.Buffer
			if err := render.Text(&text, p); err != nil {
				t.Fatal(err)
			}
			if err := render.JSON(&js, p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "client_secret differs") || !strings.Contains(js.String(), `"client_secret"`) {
				t.Errorf("the secret's drift is not named:\n%s\n%s", text.String(), js.String())
			}
			for _, out := range []string{text.String(), js.String()} {
				for _, secret := range []string{reconcile.FxProviderSecret, minioSecret, reconcile.FxCreatedSecret} {
					if strings.Contains(out, secret) {
						t.Errorf("output shows a secret:\n%s", out)
					}
				}
			}
		})
	}
}

// akc and mnc are changes of authentik and MinIO, as reconcile's plan tests write them.
