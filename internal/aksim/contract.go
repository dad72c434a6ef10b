package aksim

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// openapiGz is authentik's OpenAPI document exactly as shipped in
// goauthentik.io/api/v3@v3.2026050.3 (api/openapi.yaml), gzip-compressed.
// TestEmbeddedSpecMatchesModule checks it still equals the module's copy.
//
//go:embed openapi.yaml.gz
var openapiGz []byte

// apiPrefix is where authentik serves its REST API; the document's single
// server URL.
const apiPrefix = "/api/v3"

// servedPrefixes are the API paths the simulator implements. The contract
// is pruned to them: every other path answers 404 rather than pretending.
var servedPrefixes = []string{
	"/core/users/",
	"/core/groups/",
	"/core/applications/",
	"/providers/oauth2/",
	"/propertymappings/provider/scope/",
	"/crypto/certificatekeypairs/",
	"/flows/instances/",
	"/policies/bindings/",
	"/events/transports/",
	"/events/rules/",
	"/policies/event_matcher/",
	"/propertymappings/notification/",
}

// contract is the parsed document and a router over it, built once per process.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	contractOnce sync.Once
	contractVal  *contract
	contractErr  error
)

// loadContract parses the embedded OpenAPI document once per process.
func loadContract() (*contract, error) {
	contractOnce.Do(func() {
		contractVal, contractErr = parseContract()
	})
	return contractVal, contractErr
}

func parseContract() (*contract, error) {
	zr, err := gzip.NewReader(bytes.NewReader(openapiGz))
	if err != nil {
		return nil, fmt.Errorf("aksim: open embedded openapi.yaml.gz: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("aksim: read embedded openapi.yaml.gz: %w", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("aksim: parse authentik OpenAPI document: %w", err)
	}
	kept := openapi3.NewPaths()
	for path, item := range doc.Paths.Map() {
		for _, p := range servedPrefixes {
			if strings.HasPrefix(path, p) {
				kept.Set(path, item)
			}
		}
	}
	doc.Paths = kept
	// The router matches the path below /api/v3 (see findRoute), so the
	// relative server URL is dropped here.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, fmt.Errorf("aksim: build router over authentik OpenAPI document: %w", err)
	}
	return &contract{doc: doc, router: router}, nil
}

// findRoute finds the operation for a request under /api/v3.
func (c *contract) findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	u := *r.URL
	u.Path = strings.TrimPrefix(r.URL.Path, apiPrefix)
	u.RawPath = ""
	shadow := r.Clone(r.Context())
	shadow.URL = &u
	return c.router.FindRoute(shadow)
}

// authError is the detail authentik answers (with 403) when the bearer
// token is missing or wrong.
type authError struct{ detail string }

func (e *authError) Error() string { return e.detail }

// requestOptions returns the validation options for requests, checking the
// bearer token the way authentik's TokenAuthentication does.
func requestOptions(token string) *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			return checkBearer(in.RequestValidationInput.Request.Header.Get("Authorization"), token)
		},
	}
}

// checkBearer mirrors authentik's validate_auth/bearer_auth messages.
func checkBearer(header, token string) error {
	h := strings.TrimSpace(header)
	if h == "" || !strings.Contains(h, " ") {
		return &authError{"Authentication credentials were not provided."}
	}
	typ, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(typ, "bearer") {
		return &authError{"Unsupported authentication type"}
	}
	if cred == "" {
		return &authError{"Malformed header"}
	}
	if cred != token {
		return &authError{"Token invalid/expired"}
	}
	return nil
}

// validationBody turns a kin-openapi request error into authentik's 400
// body: {"field": ["message"]} or {"non_field_errors": ["message"]}.
func validationBody(err error) map[string]any {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		field, msg := "non_field_errors", re.Reason
		var se *openapi3.SchemaError
		if errors.As(re.Err, &se) && re.Parameter == nil && se.SchemaField == "enum" {
			return choiceError(se)
		}
		if errors.As(re.Err, &se) {
			msg = se.Reason
			if se.SchemaField == "required" {
				msg = "This field is required."
			}
			if ptr := se.JSONPointer(); len(ptr) > 0 {
				field = ptr[0]
				if len(ptr) > 1 {
					msg = strings.Join(ptr[1:], ".") + ": " + msg
				}
			}
		} else if re.Err != nil && msg == "" {
			msg = re.Err.Error()
		}
		if re.Parameter != nil {
			field = re.Parameter.Name
		}
		if msg == "" {
			msg = re.Error()
		}
		return map[string]any{field: []string{msg}}
	}
	return map[string]any{"non_field_errors": []string{err.Error()}}
}

// choiceError is DRF's answer to a body value outside a ChoiceField's choices
// (such as a redirect URI's matching_mode, providers/oauth2/api/providers.py
// RedirectURISerializer): {"field": ["\"x\" is not a valid choice."]}, and for an
// item of a list of objects {"field": [{}, ..., {"key": [...]}]}, one entry per item
// up to the invalid one (DRF lists every item; later ones are left out here).
func choiceError(se *openapi3.SchemaError) map[string]any {
	msg := []string{`"` + fmt.Sprint(se.Value) + `" is not a valid choice.`}
	ptr := se.JSONPointer()
	if len(ptr) == 0 {
		return map[string]any{"non_field_errors": msg}
	}
	if len(ptr) == 3 {
		if idx, err := strconv.Atoi(ptr[1]); err == nil && idx >= 0 && idx < 1000 {
			items := make([]any, idx+1)
			for i := range idx {
				items[i] = map[string]any{}
			}
			items[idx] = map[string]any{ptr[2]: msg}
			return map[string]any{ptr[0]: items}
		}
	}
	return map[string]any{ptr[0]: msg}
}

// validateResponse checks a recorded response against the operation's
// declared responses and returns a description of any violation. A status
// the operation does not declare is a violation, with one exception taken
// from the real server: authentik answers 404 {"detail": "..."} for a
// missing object or page on every operation although its document
// declares 404 on only a few; such a 404 must have the GenericError shape.
func validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	err := undeclaredNotFound(in, status, body)
	if err == nil {
		rin := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 status,
			Header:                 header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		rin.SetBodyBytes(body)
		err = openapi3filter.ValidateResponse(ctx, rin)
	}
	if errors.Is(err, errDeclaredElsewhere) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("aksim: response to %s %s (status %d) violates the authentik OpenAPI contract: %w",
			in.Request.Method, in.Request.URL.Path, status, err)
	}
	return nil
}

// errDeclaredElsewhere marks an undeclared 404 that matched authentik's
// GenericError shape: valid, and not to be checked again.
var errDeclaredElsewhere = errors.New("undeclared 404 with the GenericError shape")

// undeclaredNotFound checks a 404 that the operation does not declare
// against components/schemas/GenericError. It returns nil when the
// operation's own responses apply, errDeclaredElsewhere when the body is
// a valid GenericError, and the schema error otherwise.
func undeclaredNotFound(in *openapi3filter.RequestValidationInput, status int, body []byte) error {
	if status != http.StatusNotFound || in.Route.Operation.Responses.Status(status) != nil {
		return nil
	}
	ref := in.Route.Spec.Components.Schemas["GenericError"]
	if ref == nil || ref.Value == nil {
		return errors.New("authentik OpenAPI document has no GenericError schema")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("404 body is not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("404 body is not a GenericError: %w", err)
	}
	return errDeclaredElsewhere
}

// requestProperties lists the property names of an operation's JSON
// request body schema; only these are taken from a request body, as DRF
// ignores unknown and read-only keys.
func requestProperties(route *routers.Route) map[string]bool {
	out := map[string]bool{}
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return out
	}
	mt := rb.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return out
	}
	for name := range mt.Schema.Value.Properties {
		out[name] = true
	}
	return out
}

// sortedKeys returns a map's keys in order; used for deterministic errors.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
