package authentik

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// newerSecretAPI rewrites provider answers into the shape of authentik after its migrations
// 0038_oauth2provider_secret and 0039_remove_oauth2provider__client_secret: no client_secret,
// and "secret", the pk of a separate Secret object (providers/oauth2/models.py with
// authentik/secrets; the OAuth2 provider serializer then lists "secret" and not
// client_secret, as authentik/secrets/tests/test_consumers.py asserts).
func newerSecretAPI(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !strings.HasPrefix(r.URL.Path, "/api/v3/providers/oauth2/") {
		next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code >= 300 || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	move := func(p map[string]any) {
		delete(p, "client_secret")
		p["secret"] = "6f1c2a4e-0000-4000-8000-000000000038"
	}
	if results, ok := body["results"].([]any); ok {
		for _, p := range results {
			move(p.(map[string]any))
		}
	} else {
		move(body)
	}
	out, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// TestProviderAPIWithoutClientSecretFails: against a provider API that keeps the secret
// elsewhere, akminio stops with a clear error naming the provider and the field it found,
// instead of reading the secret as empty (which would plan a wrong diff), and writes nothing.
func TestProviderAPIWithoutClientSecretFails(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := desired()
	obs := f.applyFromNothing(t, d)
	secret := obs.Authentik.Provider.ClientSecret.Reveal()
	f.setWrap(newerSecretAPI)
	writes := f.writes()

	_, err := f.ad.Observe(ctx, d)
	if !errors.Is(err, ErrSecretField) {
		t.Fatalf("Observe error = %v, want ErrSecretField", err)
	}
	for _, want := range []string{`provider "MinIO"`, "client_secret", "(it has secret)", "0038_oauth2provider_secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Observe error %q does not say %q", err, want)
		}
	}
	if _, err := f.ad.ClientSecret(ctx, obs.Authentik.Provider.PK); !errors.Is(err, ErrSecretField) {
		t.Errorf("ClientSecret error = %v, want ErrSecretField", err)
	}
	if bytes.Contains([]byte(err.Error()), []byte(secret)) {
		t.Error("the error holds the client secret")
	}
	if n := f.writes(); n != writes {
		t.Errorf("%d writes after meeting the newer API, want none", n-writes)
	}
}
