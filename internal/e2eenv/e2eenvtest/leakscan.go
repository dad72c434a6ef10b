package e2eenvtest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// LeakReportEnv names a file to which every LeakScan appends one line of figures when it
// checks (secrets, outputs, bytes, found), for docs/reliability.md.
const LeakReportEnv = "AKMINIO_LEAK_REPORT"

// minSecretLen is the shortest value scanned for: shorter ones occur by chance.
const minSecretLen = 8

// LeakScan collects every output of a test that runs the akminio binary (stdout, stderr,
// logs, /status, /metrics, plan JSON, alert payloads) and the files akminio writes, and
// when the test ends fails it if any of them holds a secret the test knows: as is,
// JSON-escaped, URL-encoded or Go-quoted. One scan serves a test; Scan(env) is the one of
// an environment that Start made, and Akminio records into it by itself.
type LeakScan struct {
	t testing.TB

	mu       sync.Mutex
	secrets  map[string]string // value -> what it is
	late     []func() map[string]string
	outputs  []output
	dirs     []dirScan
	checked  bool
	reported map[[2]string]bool // (output index, secret) pairs already reported
}

type output struct{ what, text string }

type dirScan struct {
	dir  string
	skip func(rel string) bool
}

// NewLeakScan returns a scan that checks when t ends (or at Check).
func NewLeakScan(t testing.TB) *LeakScan {
	s := &LeakScan{t: t, secrets: map[string]string{}}
	t.Cleanup(s.Check)
	return s
}

// Secret adds a secret to scan for; what names it in a failure (never its value).
func (s *LeakScan) Secret(what, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value != "" {
		s.secrets[value] = what
	}
}

// SecretsAtEnd adds secrets known only when the test ends (a provider's client secret after
// a rotation); f runs at Check, before the scan.
func (s *LeakScan) SecretsAtEnd(f func() map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.late = append(s.late, f)
}

// Output records something akminio produced; what says where it came from.
func (s *LeakScan) Output(what, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outputs = append(s.outputs, output{what, text})
}

// Dir scans every file under dir when the test ends, but those for which skip (given the
// path relative to dir) says true.
func (s *LeakScan) Dir(dir string, skip func(rel string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirs = append(s.dirs, dirScan{dir, skip})
}

// CheckNow scans what is recorded so far for the secrets known so far and reports what it
// finds on t (a subtest that wants to fail by itself); Check at the end scans everything
// again, reporting only what CheckNow did not.
func (s *LeakScan) CheckNow(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scan(t)
}

// Check scans everything (the files under Dir included, and the secrets of SecretsAtEnd)
// once; later calls do nothing. It fails the test for every secret found, naming the
// secret and the output, never the value, and logs the figures (appended to the file
// $AKMINIO_LEAK_REPORT names, if set).
func (s *LeakScan) Check() {
	s.t.Helper()
	s.mu.Lock()
	if s.checked {
		s.mu.Unlock()
		return
	}
	s.checked = true
	late, dirs := s.late, s.dirs
	s.mu.Unlock()
	for _, f := range late {
		for v, what := range f() {
			s.Secret(what, v)
		}
	}
	for _, d := range dirs {
		_ = filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(d.dir, path)
			if d.skip != nil && d.skip(rel) {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil {
				s.Output("file "+path, string(b))
			}
			return nil
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	values := s.scan(s.t)
	bytes := 0
	for _, o := range s.outputs {
		bytes += len(o.text)
	}
	s.t.Logf("leak scan: %d secrets in %d outputs (%d bytes): %d found", len(values), len(s.outputs), bytes, len(s.reported))
	if path := os.Getenv(LeakReportEnv); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s\t%d\t%d\t%d\t%d\n", s.t.Name(), len(values), len(s.outputs), bytes, len(s.reported))
			f.Close()
		}
	}
}

// scan checks every output for every secret, reporting on t each find not reported yet;
// s.mu is held. It returns the secrets scanned for.
func (s *LeakScan) scan(t testing.TB) []string {
	t.Helper()
	var values []string
	for v := range s.secrets {
		if len(v) >= minSecretLen {
			values = append(values, v)
		}
	}
	sort.Strings(values)
	if s.reported == nil {
		s.reported = map[[2]string]bool{}
	}
	for i, o := range s.outputs {
		for _, v := range values {
			key := [2]string{strconv.Itoa(i), v}
			if form, ok := leaked(o.text, v); ok && !s.reported[key] {
				s.reported[key] = true
				t.Errorf("leak scan: the %s appears (%s) in %s", s.secrets[v], form, o.what)
			}
		}
	}
	return values
}

// leaked reports whether text holds v in one of the encodings an output could carry.
func leaked(text, v string) (string, bool) {
	j, _ := json.Marshal(v)
	forms := []struct{ name, s string }{
		{"as is", v},
		{"JSON-escaped", string(j[1 : len(j)-1])},
		{"URL-encoded", url.QueryEscape(v)},
		{"Go-quoted", strings.Trim(strconv.Quote(v), `"`)},
	}
	for _, f := range forms {
		if strings.Contains(text, f.s) {
			return f.name, true
		}
	}
	return "", false
}
