package minio

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/miniotest"
	"github.com/akminio/akminio/reconcile"
)

func openIDChange(target string) []reconcile.Change {
	return []reconcile.Change{{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate,
		Kind: reconcile.KindOpenID, Name: target, RestartRequired: true}}
}

func provider(secret string) *reconcile.ObservedProvider {
	return &reconcile.ObservedProvider{ClientID: "akminio-client", ClientSecret: config.Secret(secret)}
}

// TestOpenIDReadsBackStaleUntilRestart proves the platform facts the engine is built on:
// a write to identity_openid asks for a restart, reads back the old values until then, and
// the new ones (client_secret included) right after Restart returns.
func TestOpenIDReadsBackStaleUntilRestart(t *testing.T) {
	configURL, _ := discovery(t)
	s := miniotest.Start(t)
	a, n := newAdapter(t, s)
	ctx := testCtx(t)
	const target = "identity_openid:authentik"
	d := desired(target, configURL)
	d.OpenID.RedirectURI = "http://127.0.0.1:9001/oauth_callback"
	obs := &reconcile.Observed{Authentik: reconcile.AuthentikState{Provider: provider("first secret=1")}}

	w, err := a.Apply(ctx, d, obs, openIDChange(target), nil)
	restart := w.Restart
	if err != nil || !restart {
		t.Fatalf("Apply: restart=%v err=%v, want a restart asked for", restart, err)
	}
	if st, err := a.Observe(ctx, d); err != nil || st.OpenID != nil {
		t.Fatalf("before restart: OpenID=%+v err=%v, want the stale (unconfigured) target", st.OpenID, err)
	}

	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	n.n.Store(0)
	st, err := a.Observe(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.n.Load(); got != 2 {
		t.Errorf("Observe right after Restart sent %d requests, want 2 (MinIO not ready?)", got)
	}
	want := reconcile.WantedOpenIDKeys(d, obs.Authentik.Provider)
	if st.OpenID == nil || st.OpenID.OpenIDKeys != want {
		t.Fatalf("after restart: %+v\nwant %+v", st.OpenID, want)
	}
	if st.OpenID.ClientSecret.Reveal() != "first secret=1" {
		t.Error("the export does not carry the client secret")
	}
	if len(st.OpenID.EnvKeys) != 0 {
		t.Errorf("EnvKeys = %v, want none", st.OpenID.EnvKeys)
	}

	// Rotation's helper: the new secret reads back only after the next restart.
	if restart, err := a.SetClientSecret(ctx, target, "second"); err != nil || !restart {
		t.Fatalf("SetClientSecret: restart=%v err=%v", restart, err)
	}
	if o, err := a.ReadOpenID(ctx, target); err != nil || o.ClientSecret.Reveal() != "first secret=1" {
		t.Fatalf("before restart: err=%v, want the old secret still read back", err)
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := a.ReadOpenID(ctx, target)
	if err != nil || o.ClientSecret.Reveal() != "second" || o.ClientID != "akminio-client" {
		t.Fatalf("after restart: %+v err=%v, want the new secret and the other keys kept", o, err)
	}
}

// TestEnvSetKeysAreMarked starts MinIO with identity_openid set by its environment.
func TestEnvSetKeysAreMarked(t *testing.T) {
	configURL, _ := discovery(t)
	s := miniotest.Start(t, miniotest.WithEnv(
		"MINIO_IDENTITY_OPENID_CONFIG_URL="+configURL,
		"MINIO_IDENTITY_OPENID_CLIENT_ID=from-env",
		"MINIO_IDENTITY_OPENID_CLAIM_NAME=groups"))
	a, _ := newAdapter(t, s)
	st, err := a.Observe(testCtx(t), desired("identity_openid", configURL))
	if err != nil {
		t.Fatal(err)
	}
	if st.OpenID == nil {
		t.Fatal("the env-configured target reads as unconfigured")
	}
	if st.OpenID.ConfigURL != configURL || st.OpenID.ClientID != "from-env" || st.OpenID.ClaimName != "groups" || st.OpenID.Enable != "on" {
		t.Errorf("values = %+v, want the environment's", st.OpenID.OpenIDKeys)
	}
	if got, want := slices.Sorted(maps.Keys(st.OpenID.EnvKeys)), []string{"claim_name", "client_id", "config_url"}; !slices.Equal(got, want) {
		t.Errorf("EnvKeys = %v, want %v", got, want)
	}
}

// TestErrorsNeverShowTheSecret makes MinIO refuse writes (an unreachable config_url, a value
// its format cannot carry) and checks that no error shows the secret.
func TestErrorsNeverShowTheSecret(t *testing.T) {
	configURL, srv := discovery(t)
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	ctx := testCtx(t)
	const secret = "Zq7SECRETvalue9"
	d := desired("identity_openid", srv.URL+"/missing/"+secret)
	obs := &reconcile.Observed{Authentik: reconcile.AuthentikState{Provider: provider(secret)}}

	_, err := a.Apply(ctx, d, obs, openIDChange("identity_openid"), nil)
	if err == nil {
		t.Fatal("MinIO accepted a config_url that does not answer")
	}
	if !strings.Contains(err.Error(), "minio: set identity_openid") || strings.Contains(err.Error(), secret) {
		t.Errorf("error = %q: want it to say what failed, without the secret", err)
	}

	d.OpenID.ConfigURL = configURL
	obs.Authentik.Provider = provider(secret + `"`)
	_, err = a.Apply(ctx, d, obs, openIDChange("identity_openid"), nil)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("error = %v: want it to name client_secret, without the secret", err)
	}
}

// TestRestartFailsWhileTheProviderIsDown: MinIO does not initialise IAM while the OpenID
// provider at config_url does not answer, so Restart cannot report it ready.
func TestRestartFailsWhileTheProviderIsDown(t *testing.T) {
	configURL, srv := discovery(t)
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	d := desired("identity_openid", configURL)
	obs := &reconcile.Observed{Authentik: reconcile.AuthentikState{Provider: provider("s")}}
	if _, err := a.Apply(testCtx(t), d, obs, openIDChange("identity_openid"), nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	err := a.Restart(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not get ready") || !errors.Is(err, ErrNotReady) {
		t.Fatalf("Restart = %v, want it to fail waiting for readiness", err)
	}

	// Observe gives a transient error at once, after one request timeout (madmin retried
	// the 503s within it), not after several.
	quick, err := New(config.MinIO{Endpoint: s.Endpoint, AccessKey: config.Secret(s.AccessKey),
		SecretKey: config.Secret(s.SecretKey), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = quick.Observe(testCtx(t), d)
	if !errors.Is(err, ErrNotReady) {
		t.Errorf("Observe = %v, want ErrNotReady", err)
	}
	if took := time.Since(start); took > 3500*time.Millisecond {
		t.Errorf("Observe took %s, want one 2s attempt", took)
	}
}

// TestObserveNeverSeesAStartingServerAsUnconfigured restarts MinIO behind the adapter's back
// and observes as fast as it can meanwhile: every observation that succeeds must show the
// configured target, never the empty config a starting MinIO serves at first.
func TestObserveNeverSeesAStartingServerAsUnconfigured(t *testing.T) {
	configURL, _ := discovery(t)
	s := miniotest.Start(t)
	a, _ := newAdapter(t, s)
	ctx := testCtx(t)
	d := desired("identity_openid", configURL)
	obs := &reconcile.Observed{Authentik: reconcile.AuthentikState{Provider: provider("s")}}
	if _, err := a.Apply(ctx, d, obs, openIDChange("identity_openid"), nil); err != nil {
		t.Fatal(err)
	}
	s.RestartInPlace(t) // now configured

	before := s.Starts()
	if err := s.Admin(t).ServiceRestartV2(ctx); err != nil {
		t.Fatal(err)
	}
	var afterRestart, failed int
	for afterRestart < 3 && ctx.Err() == nil {
		restarted := s.Starts() > before
		st, err := a.Observe(ctx, d)
		switch {
		case err != nil:
			failed++
		case st.OpenID == nil:
			t.Fatalf("an observation during the restart (restarted=%v) shows the target unconfigured", restarted)
		case restarted:
			afterRestart++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if afterRestart < 3 {
		t.Fatalf("no observation of the restarted server (%d failed): %v", failed, ctx.Err())
	}
}
