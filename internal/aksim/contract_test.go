package aksim

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// TestEmbeddedSpecMatchesModule keeps the embedded contract identical to
// the OpenAPI document of the goauthentik.io/api/v3 version in go.mod.
func TestEmbeddedSpecMatchesModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "goauthentik.io/api/v3").Output()
	if err != nil {
		t.Fatalf("locate goauthentik.io/api/v3 with go list: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(openapiGz))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("internal/aksim/openapi.yaml.gz differs from the module's api/openapi.yaml; regenerate with: gzip -9 -c \"$(go list -m -f '{{.Dir}}' goauthentik.io/api/v3)/api/openapi.yaml\" > internal/aksim/openapi.yaml.gz")
	}
}

// TestResponseViolationReported proves the response check can fail: a
// Group without its required keys is a violation, a complete one is not.
func TestResponseViolationReported(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v3/core/groups/1b4e28ba-2fa1-11d2-883f-0016d3cca427/", nil)
	route, params, err := c.findRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	h := map[string][]string{"Content-Type": {"application/json"}}
	bad := []byte(`{"pk":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","name":"x"}`)
	if err := validateResponse(context.Background(), in, 200, h, bad); err == nil || !strings.Contains(err.Error(), "num_pk") {
		t.Fatalf("incomplete Group: got %v, want a violation naming num_pk", err)
	}
	good := []byte(`{"pk":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","num_pk":1,"name":"x","parents_obj":null,
		"users_obj":null,"roles_obj":[],"inherited_roles_obj":null,"children":[],"children_obj":null}`)
	if err := validateResponse(context.Background(), in, 200, h, good); err != nil {
		t.Fatalf("complete Group reported: %v", err)
	}
}

// TestViolationReachesOnViolation wires a server whose handler answers a
// broken body and checks OnViolation hears about it.
func TestViolationReachesOnViolation(t *testing.T) {
	var got []error
	s := New(Options{OnViolation: func(err error) { got = append(got, err) }})
	orig := apiHandlers["flows_instances_retrieve"]
	apiHandlers["flows_instances_retrieve"] = func(*Server, *call) (int, any) { return 200, map[string]any{"slug": 5} }
	defer func() { apiHandlers["flows_instances_retrieve"] = orig }()
	req := httptest.NewRequest("GET", "/api/v3/flows/instances/x/", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	s.ServeHTTP(httptest.NewRecorder(), req)
	if len(got) != 1 {
		t.Fatalf("OnViolation called %d times, want 1", len(got))
	}
}

// TestUndeclaredStatusIsViolation: a status the operation does not declare
// is a violation (kin-openapi lets it pass unless told otherwise), except
// authentik's undeclared 404, which must still be a GenericError.
func TestUndeclaredStatusIsViolation(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v3/core/groups/1b4e28ba-2fa1-11d2-883f-0016d3cca427/", nil)
	route, params, err := c.findRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	h := map[string][]string{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		status int
		body   string
		ok     bool
	}{
		{500, `{"detail":"boom"}`, false},
		{409, `{"detail":"conflict"}`, false},
		{404, `{"detail":"No Group matches the given query."}`, true},
		{404, `{"name":["x"]}`, false},
		{403, `{"detail":"Token invalid/expired"}`, true},
		{403, `{"name":["x"]}`, false},
	} {
		err := validateResponse(context.Background(), in, tc.status, h, []byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("status %d body %s: got %v, want ok=%v", tc.status, tc.body, err, tc.ok)
		}
	}
}

// TestUnsimulatedOperationIsViolation: an operation the contract keeps but
// the simulator does not implement fails the test that reached it.
func TestUnsimulatedOperationIsViolation(t *testing.T) {
	var got []error
	s := New(Options{OnViolation: func(err error) { got = append(got, err) }})
	req := httptest.NewRequest("GET", "/api/v3/core/users/1/used_by/", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 501 || len(got) != 1 || !strings.Contains(got[0].Error(), "core_users_used_by_list") {
		t.Fatalf("got %d and violations %v, want 501 and one violation naming the operation", rec.Code, got)
	}
}

// TestCloseWaitsForRequests: a response still being computed when Close is
// called is validated and reported before Close returns, never after (where
// aksimtest's t.Errorf would panic).
func TestCloseWaitsForRequests(t *testing.T) {
	var mu sync.Mutex
	var got []error
	s := New(Options{OnViolation: func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }})
	entered, release := make(chan struct{}), make(chan struct{})
	orig := apiHandlers["flows_instances_retrieve"]
	apiHandlers["flows_instances_retrieve"] = func(*Server, *call) (int, any) {
		close(entered)
		<-release
		return 200, map[string]any{"slug": 5}
	}
	defer func() { apiHandlers["flows_instances_retrieve"] = orig }()
	if err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	go func() {
		req, _ := http.NewRequest("GET", s.URL()+"/api/v3/flows/instances/x/", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("violations reported before Close returned: %d, want 1", len(got))
	}
}
