package aksim

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
