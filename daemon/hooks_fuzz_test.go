package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
)

// hookDaemon is a Daemon built by New but not running: its hook handlers can be called
// directly, and a scheduled run shows as an event waiting on d.hooks.
func hookDaemon(t *testing.T) *Daemon {
	t.Helper()
	d, err := New(Options{Config: testConfig(t), Logger: zap.NewNop(), Registerer: prometheus.NewRegistry(),
		NewRunner: func(*config.Config) (Runner, error) { return &fakeRunner{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// postHook calls a hook handler with body and reports the status, the decoded JSON answer
// and whether a run was scheduled.
func postHook(t *testing.T, h func(*Daemon, http.ResponseWriter, *http.Request), body []byte) (int, map[string]any, bool) {
	t.Helper()
	d := hookDaemon(t)
	rec := httptest.NewRecorder()
	h(d, rec, httptest.NewRequest(http.MethodPost, "/hooks/x", strings.NewReader(string(body))))
	var answer map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("the answer is not a JSON object: %v: %q", err, rec.Body.String())
	}
	scheduled := false
	select {
	case <-d.hooks:
		scheduled = true
	default:
	}
	return rec.Code, answer, scheduled
}

// FuzzMinIOAuditHook: any body gets 200 or 400 with a JSON answer, never a panic; a run is
// scheduled exactly when the answer says triggered, and only for a relevant admin call
// not made by akminio; a decoded stream reads the same whether re-sent as an array or as
// one entry per line.
func FuzzMinIOAuditHook(f *testing.F) {
	for _, s := range []string{
		`{"api":{"name":"AddCannedPolicy"},"userAgent":"mc"}`,
		`[{"api":{"name":"SetConfigKV"},"userAgent":"mc"},{"api":{"name":"ListBuckets"}}]`,
		"{\"api\":{\"name\":\"DelConfigKV\"}}\n{\"api\":{\"name\":\"RemoveCannedPolicy\"},\"userAgent\":\"akminio/v1\"}\n",
		`{"api":{"name":"AddCannedPolicy"},"userAgent":"madmin-go/v3 akminio/v1.2.3"}`,
		`[]`, ``, `null`, `{"api":"x"}`, `[{"api":{"name":1}}]`, `{} [] {}`,
	} {
		f.Add([]byte(s))
	}
	call := func(d *Daemon, w http.ResponseWriter, r *http.Request) { d.handleMinIOHook(w, r) }
	f.Fuzz(func(t *testing.T, body []byte) {
		code, answer, scheduled := postHook(t, call, body)
		entries, err := decodeAudit(body)
		switch {
		case err != nil:
			if code != http.StatusBadRequest || scheduled {
				t.Fatalf("undecodable body: %d, scheduled %v", code, scheduled)
			}
			return
		case code != http.StatusOK:
			t.Fatalf("decodable body answered %d", code)
		}
		relevant := false
		for _, e := range entries {
			if slices.Contains(minioAdminCalls, e.API.Name) && !isOwnUserAgent(e.UserAgent) {
				relevant = true
			}
		}
		if answer["triggered"] != relevant || scheduled != relevant || answer["entries"] != float64(len(entries)) {
			t.Fatalf("answer %v, scheduled %v; want triggered %v for %d entries", answer, scheduled, relevant, len(entries))
		}
		array, _ := json.Marshal(entries)
		var lines []string
		for _, e := range entries {
			b, _ := json.Marshal(e)
			lines = append(lines, string(b))
		}
		for _, again := range [][]byte{array, []byte(strings.Join(lines, "\n"))} {
			got, err := decodeAudit(again)
			if err != nil || !reflect.DeepEqual(got, entries) {
				t.Fatalf("re-sent as %s: %v, %v; want %v", again, got, err, entries)
			}
		}
	})
}

// FuzzAuthentikHook: any body gets a JSON answer, never a panic: 400 (nothing scheduled)
// when it is not authentik's notification body, else 200 (ignored, nothing scheduled) or
// 202 (a run scheduled); a run is scheduled only for a model event that akminio's own
// client did not cause.
func FuzzAuthentikHook(f *testing.F) {
	for _, s := range []string{
		`{"body":"model_updated: {'model': {'app': 'authentik_providers_oauth2', 'model_name': 'oauth2provider', 'pk': 1}, 'http_request': {'user_agent': 'mc'}}","severity":"notice","user_email":"a@b","user_username":"akadmin"}`,
		`{"body":"model_updated: {'model': {'app': 'authentik_providers_oauth2', 'model_name': 'oauth2provider'}, 'http_request': {'user_agent': 'akminio/v1.2.3'}}"}`,
		`{"body":"login: {}"}`, `"a body mapping's string"`, `{"body": `, `{"body": 1, "severity": []}`, `[1,2]`, `null`, ``,
		"{\"body\":\"\\u2028model_deleted: y\"}",
	} {
		f.Add([]byte(s))
	}
	call := func(d *Daemon, w http.ResponseWriter, r *http.Request) { d.handleAuthentikHook(w, r) }
	f.Fuzz(func(t *testing.T, body []byte) {
		code, answer, scheduled := postHook(t, call, body)
		n, err := decodeNotification(body)
		switch {
		case err != nil:
			if code != http.StatusBadRequest || scheduled {
				t.Fatalf("not a notification: %d, scheduled %v", code, scheduled)
			}
		case n.ignored() != "":
			if code != http.StatusOK || scheduled || answer["triggered"] != false {
				t.Fatalf("ignored (%s): %d %v, scheduled %v", n.ignored(), code, answer, scheduled)
			}
		default:
			if code != http.StatusAccepted || !scheduled || !strings.HasPrefix(n.Action, "model_") || isOwnUserAgent(n.UserAgent) {
				t.Fatalf("notification %+v: %d, scheduled %v", n, code, scheduled)
			}
		}
		if !json.Valid(body) && err == nil {
			t.Fatalf("a body that is not JSON decoded as %+v", n)
		}
	})
}
