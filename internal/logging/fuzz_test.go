package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
)

// FuzzScrubber logs a secret in every encoding the scrubber handles (raw in the message, a
// zap string field, encoding/json with and without HTML escaping inside an error, a
// URL-encoded form body inside an error, zap.Any of a map) in both formats, and checks the
// secret survives in none of them: JSON lines are decoded and every string value is
// searched for the secret as is, JSON-escaped and URL-encoded, and URL-decoded too.
func FuzzScrubber(f *testing.F) {
	for _, s := range []string{"hunter2-Sup3r-s3cret", `a"b\c` + "\x01d-long", "<tag>&amp;'x'", "line\u2028sep\u2029x",
		"ünïcødé-secret", "sp ace+plus%pct", "tab\there\nnewline", "\x7f\x00nul-and-del", `{"json":"inside"}`} {
		f.Add(s, "prefix ")
	}
	f.Fuzz(func(t *testing.T, secret, prefix string) {
		if !utf8.ValidString(secret) {
			t.Skip("not text: config refuses a secret that is not valid UTF-8")
		}
		if len(secret) < 8 || strings.Contains(config.Redacted, secret) {
			t.Skip("too short to be told apart from the log's own text")
		}
		forms := independentForms(secret)
		for _, format := range []string{"json", "console"} {
			clean := logAll(t, format, nil, "NEUTRAL-VALUE", prefix)
			for _, form := range forms {
				if strings.Contains(clean, form) {
					t.Skip("the secret is part of the log's own text")
				}
			}
			out := logAll(t, format, NewScrubber(config.Secret(secret)), secret, prefix)
			for _, form := range forms {
				if strings.Contains(out, form) {
					t.Fatalf("%s: secret %q survives as %q in:\n%s", format, secret, form, out)
				}
			}
			if format != "json" {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var entry map[string]any
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("scrubbing broke a JSON line: %v: %s", err, line)
				}
				for _, v := range stringValues(entry) {
					u, _ := url.QueryUnescape(v)
					for _, form := range forms {
						if strings.Contains(v, form) || strings.Contains(u, form) {
							t.Fatalf("secret %q survives in decoded value %q", secret, v)
						}
					}
				}
			}
		}
	})
}

// independentForms are the secret's encodings computed with the standard library alone
// (not with the scrubber's own helpers).
func independentForms(secret string) []string {
	forms := []string{secret, url.QueryEscape(secret)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret)
		q := strings.TrimSpace(b.String())
		forms = append(forms, q[1:len(q)-1])
	}
	return forms
}

func logAll(t *testing.T, format string, s *Scrubber, secret, prefix string) string {
	t.Helper()
	var buf bytes.Buffer
	log, err := New(config.Log{Level: "debug", Format: format}, &buf, s)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"client_secret": secret})
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"client_secret": secret})
	log.Info(prefix + secret)
	log.Info("field", zap.String("token", secret), zap.ByteString("bytes", []byte(secret)))
	log.Error("json body", zap.Error(fmt.Errorf("authentik: 400 %s", body)))
	log.Error("plain json body", zap.Error(errors.New("authentik: 400 "+strings.TrimSpace(plain.String()))))
	log.Warn("form", zap.Error(errors.New("POST /application/o/token/: client_secret="+url.QueryEscape(secret)+"&x=1")))
	log.Info("any", zap.Any("m", map[string]string{"token": secret}))
	return buf.String()
}

// stringValues returns every string in a decoded JSON value, keys included.
func stringValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(out, k)
			out = append(out, stringValues(e)...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringValues(e)...)
		}
		return out
	}
	return nil
}
