package e2eenvtest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// errRecorder is a testing.TB that keeps what Errorf reports.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *errRecorder) Cleanup(func())      {}
func (r *errRecorder) Helper()             {}
func (r *errRecorder) Logf(string, ...any) {}

// TestLeakScanFindsEveryEncoding: a secret as is, JSON-escaped, URL-encoded or in a state
// file is found and named (never shown); rotation.json is skipped; a secret known only at
// the end is found in output recorded before; short values are not scanned for.
func TestLeakScanFindsEveryEncoding(t *testing.T) {
	rec := &errRecorder{TB: t}
	s := NewLeakScan(rec)
	const tricky = `pa"ss/wo+rd&x`
	s.Secret("token", "plain-token-123")
	s.Secret("tricky", tricky)
	s.Secret("short", "abc")
	s.SecretsAtEnd(func() map[string]string { return map[string]string{"late-secret-456": "late"} })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"x":"plain-token-123"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "rotation.json"), []byte(`{"new":"plain-token-123"}`), 0o600)
	s.Dir(dir, func(rel string) bool { return rel == "rotation.json" })
	s.Output("stdout", "ok abc fine")
	s.Output("json", `{"e":"pa\"ss/wo+rd\u0026x"}`)
	s.Output("form", "client_secret="+url.QueryEscape(tricky))
	s.Output("early", "late-secret-456")
	s.CheckNow(rec)
	if len(rec.errs) != 2 {
		t.Fatalf("CheckNow: %q, want the JSON and the URL-encoded finds", rec.errs)
	}
	s.Check()
	s.Check()
	all := strings.Join(rec.errs, "\n")
	for _, want := range []string{"the tricky appears (JSON-escaped) in json", "the tricky appears (URL-encoded) in form",
		"the late appears (as is) in early", "the token appears (as is) in file " + filepath.Join(dir, "state.json")} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if len(rec.errs) != 4 || strings.Contains(all, "rotation.json") || strings.Contains(all, "plain-token-123") {
		t.Errorf("reports:\n%s", all)
	}
}
