package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
)

const secret = config.Secret("hunter2-Sup3r-s3cret")

// logEverything logs the secret in every way a careless caller might.
func logEverything(log *zap.Logger) {
	cfg := config.Config{}
	cfg.Authentik.Token = secret
	log.Info("plain field", zap.String("x", secret.Reveal()))
	log.Info("struct", zap.Any("cfg", cfg))
	log.Info("reflected map", zap.Any("m", map[string]string{"token": secret.Reveal()}))
	log.Error("call failed", zap.Error(fmt.Errorf("authentik: token %s rejected", secret.Reveal())))
	log.Warn("message with the secret " + secret.Reveal() + " inside")
	log.With(zap.String("child", secret.Reveal())).Info("child logger")
	log.Info("stringer", zap.Stringer("s", secret), zap.ByteString("b", []byte(secret.Reveal())))
	log.Info("wrapped", zap.Error(errors.Join(errors.New("a"), errors.New(secret.Reveal()))))
}

func TestNoSecretInAnyFormat(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(config.Log{Level: "debug", Format: format}, &buf, NewScrubber(secret))
			if err != nil {
				t.Fatal(err)
			}
			logEverything(log)
			out := buf.String()
			if strings.Contains(out, secret.Reveal()) || strings.Contains(out, "hunter2") {
				t.Fatalf("secret in log output:\n%s", out)
			}
			if got := strings.Count(out, config.Redacted); got < 9 {
				t.Errorf("%d redactions, want at least 9:\n%s", got, out)
			}
			if lines := strings.Count(out, "\n"); lines != 8 {
				t.Errorf("%d lines, want 8", lines)
			}
		})
	}
}

func TestJSONStaysValidAndEscapedSecretsAreCaught(t *testing.T) {
	tricky := config.Secret(`a"b\c` + "\x01d")
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "info", Format: "json"}, &buf, NewScrubber(tricky))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("m", zap.String("k", tricky.Reveal()))
	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if entry["k"] != config.Redacted || entry["level"] != "info" || entry["msg"] != "m" {
		t.Errorf("entry = %v", entry)
	}
}

func TestScrubberSetOnReload(t *testing.T) {
	var buf bytes.Buffer
	s := NewScrubber(secret)
	log, _ := New(config.Log{Level: "info", Format: "json"}, &buf, s)
	s.Set("new-secret-after-reload")
	log.Info("x", zap.String("a", "new-secret-after-reload"), zap.String("b", secret.Reveal()))
	if strings.Contains(buf.String(), "new-secret-after-reload") {
		t.Errorf("new secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), secret.Reveal()) {
		t.Errorf("a secret no longer registered is still scrubbed: %s", buf.String())
	}
}

// TestScrubberAddSurvivesReload: a rotation's secrets, added at run time, stay scrubbed
// when a reload replaces the config's secrets.
func TestScrubberAddSurvivesReload(t *testing.T) {
	var buf bytes.Buffer
	s := NewScrubber(secret)
	log, _ := New(config.Log{Level: "info", Format: "json"}, &buf, s)
	s.Add("rotated-client-secret")
	s.Set("config-secret-after-reload")
	log.Info("x", zap.String("a", "rotated-client-secret"), zap.String("b", "config-secret-after-reload"))
	if strings.Contains(buf.String(), "rotated-client-secret") || strings.Contains(buf.String(), "config-secret-after-reload") {
		t.Errorf("a secret leaked: %s", buf.String())
	}
}

func TestLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "warn", Format: "json"}, &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"msg":"shown"`) {
		t.Errorf("output = %s", buf.String())
	}
	if _, err := New(config.Log{Level: "trace", Format: "json"}, &buf, nil); err == nil {
		t.Error("level trace accepted")
	}
	if _, err := New(config.Log{Level: "info", Format: "text"}, &buf, nil); err == nil {
		t.Error("format text accepted")
	}
	buf.Reset()
	log, _ = New(config.Log{Level: "info", Format: "console"}, &buf, nil)
	log.Info("hello", zap.Int("n", 1))
	if !strings.Contains(buf.String(), "\tINFO\thello\t{\"n\": 1}") {
		t.Errorf("console output = %q", buf.String())
	}
}

// TestSecretInEveryEncoding: a secret holding characters that each encoder escapes its own
// way (zap leaves & < > and U+2028 alone, encoding/json escapes them; a JSON body quoted
// in an error is escaped twice; a URL encodes them) is caught in all of them.
func TestSecretInEveryEncoding(t *testing.T) {
	tricky := config.Secret("p&ss\"w<rd\u2028x y")
	body, _ := json.Marshal(map[string]string{"client_secret": tricky.Reveal()})
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(config.Log{Level: "info", Format: format}, &buf, NewScrubber(tricky))
			if err != nil {
				t.Fatal(err)
			}
			log.Info("field", zap.String("k", tricky.Reveal()))
			log.Info("reflected", zap.Any("k", map[string]string{"a": tricky.Reveal()}))
			log.Info("error", zap.Error(errors.New("HTTP 400: "+string(body))))
			log.Info("message " + string(body))
			log.Info("url", zap.Error(errors.New("POST /token?client_secret="+url.QueryEscape(tricky.Reveal()))))
			out := buf.String()
			if strings.Contains(out, "p&ss") || strings.Contains(out, `p\u0026ss`) || strings.Contains(out, "p%26ss") {
				t.Fatalf("secret in log output:\n%s", out)
			}
			if got := strings.Count(out, config.Redacted); got != 5 {
				t.Errorf("%d redactions, want 5:\n%s", got, out)
			}
		})
	}
}

// TestAlertURLsAreSecrets: the config's alert URLs are scrubbed however their credentials
// show up: the URL whole, net/http's error (password masked, query kept), a path token, a
// query value alone.
func TestAlertURLsAreSecrets(t *testing.T) {
	var cfg config.Config
	cfg.Alerts.WebhookURL = "https://bot:pw-8c1f2a@hooks.example/services/T0/B0/XyZsecretPath?token=q-51b7e3d9"
	cfg.Alerts.AlertmanagerURL = "http://am:am-pw-0d3c@am.example:9093"
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "debug", Format: "json"}, &buf, NewScrubber(cfg.SecretValues()...))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cfg.Alerts.WebhookURL)
	log.Error("whole", zap.String("url", cfg.Alerts.WebhookURL), zap.String("am", cfg.Alerts.AlertmanagerURL))
	log.Error("net/http", zap.Error(&url.Error{Op: "Post", URL: u.Redacted(), Err: errors.New("EOF")}))
	log.Error("parts", zap.String("path", u.Path), zap.String("q", u.Query().Get("token")))
	log.Info("unrelated", zap.String("host", "hooks.example"))
	out := buf.String()
	for _, s := range []string{"pw-8c1f2a", "XyZsecretPath", "q-51b7e3d9", "am-pw-0d3c"} {
		if strings.Contains(out, s) {
			t.Errorf("log shows %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, `"host":"hooks.example"`) {
		t.Errorf("a host alone was scrubbed:\n%s", out)
	}
	if got := config.RedactURL(cfg.Alerts.WebhookURL); got != "https://hooks.example" {
		t.Errorf("RedactURL = %q, want scheme and host", got)
	}
}
