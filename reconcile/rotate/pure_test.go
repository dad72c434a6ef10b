package rotate

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	O, N, X := HoldsOld, HoldsNew, HoldsOther
	cases := []struct {
		step string
		ak   Holding
		mc   Holding
		want Decision
	}{
		{StepPrepared, O, O, Back},
		{StepPrepared, N, O, Forward}, // crashed after the PATCH, before the step was saved
		{StepAuthentikSet, N, O, Forward},
		{StepMinIOWritten, N, O, Forward},
		{StepMinIORestarted, N, N, Forward},
		{StepConfirmed, N, N, Forward},
		{StepMinIOWriting, N, X, Forward},
		{StepMinIOWritten, O, N, Forward}, // impossible by the order; one PATCH settles it
		{StepRollingBack, N, O, Back},
		{StepRollingBack, O, N, Back},
		{StepRollingBack, O, O, Back},
		{StepRollingBack, N, N, Forward},
		{StepMinIOWritten, O, O, Back},
		{StepMinIOWritten, X, N, Abandon},
		{StepRollingBack, X, O, Abandon},
	}
	for _, c := range cases {
		if got := Decide(c.step, c.ak, c.mc); got != c.want {
			t.Errorf("Decide(%s, authentik %s, MinIO %s) = %v, want %v", c.step, c.ak, c.mc, got, c.want)
		}
	}
}

func TestNewSecret(t *testing.T) {
	s, err := NewSecret(rand.Reader)
	if err != nil || len(s.Reveal()) != SecretLength || strings.Trim(s.Reveal(), SecretAlphabet) != "" {
		t.Fatalf("NewSecret = %d chars, %v", len(s.Reveal()), err)
	}
	// Bytes 248..255 are rejected, not folded onto the first characters.
	in := append(bytes.Repeat([]byte{255, 248}, 64), bytes.Repeat([]byte{0, 61, 62, 247}, 64)...)
	s, err = NewSecret(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("A9A9", 32); s.Reveal() != want {
		t.Errorf("NewSecret = %q, want %q", s.Reveal(), want)
	}
	if _, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{250}, 1000))); err == nil {
		t.Error("NewSecret from a source of rejected bytes did not fail")
	}
}

func TestNewSecretUniform(t *testing.T) {
	counts := map[rune]int{}
	const rounds = 200 // 25,600 characters, ~413 per letter
	for range rounds {
		s, err := NewSecret(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Reveal() {
			counts[r]++
		}
	}
	exp := float64(rounds*SecretLength) / float64(len(SecretAlphabet))
	chi := 0.0
	for _, r := range SecretAlphabet {
		d := float64(counts[r]) - exp
		chi += d * d / exp
	}
	// 61 degrees of freedom: p(chi2 > 110) < 1e-4. Modulo bias (bytes 248..255 folded onto
	// the first 8 characters) gives well over 200 at this size.
	if chi > 110 {
		t.Errorf("chi-square %.1f over %d characters: not uniform", chi, rounds*SecretLength)
	}
}

func TestIntentRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := &Intent{Old: "o1", New: "n1", Step: StepMinIOWritten, ProviderPK: 3, Provider: "MinIO",
		Target: "identity_openid:x", MinIOTouched: true, StartedAt: time.Unix(10, 0).UTC(), LastError: "e"}
	if err := saveIntent(dir, in); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIntent(dir)
	if err != nil || got.Old != "o1" || got.New != "n1" || got.Step != in.Step || got.ProviderPK != 3 ||
		got.Target != in.Target || !got.MinIOTouched || !got.StartedAt.Equal(in.StartedAt) || got.LastError != "e" {
		t.Fatalf("LoadIntent = %+v, %v", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %d entries", len(ents))
	}
	if err := os.WriteFile(IntentPath(dir), []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIntent(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("LoadIntent of an incomplete file: %v", err)
	}
}

// TestPlantedIntentIsRefused: a rotation intent akminio cannot have written (readable by
// others, or a symbolic link to a file elsewhere) is refused, never acted on.
func TestPlantedIntentIsRefused(t *testing.T) {
	dir := t.TempDir()
	body := []byte(`{"version":1,"old_secret":"o","new_secret":"attacker-chosen","provider_pk":3,"target":"identity_openid"}`)
	if err := os.WriteFile(IntentPath(dir), body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(IntentPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if in, err := LoadIntent(dir); in != nil || err == nil || !strings.Contains(err.Error(), "has mode 0644") {
		t.Errorf("LoadIntent of a 0644 intent: %+v, %v; want it refused", in, err)
	}
	elsewhere := filepath.Join(t.TempDir(), "intent.json")
	if err := os.WriteFile(elsewhere, body, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(IntentPath(dir))
	if err := os.Symlink(elsewhere, IntentPath(dir)); err != nil {
		t.Fatal(err)
	}
	if in, err := LoadIntent(dir); in != nil || err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("LoadIntent through a symbolic link: %+v, %v; want it refused", in, err)
	}
}
