package authentik

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/reconcile"
)

// bodyPolicy says how much of an error response's body may go into an error message.
type bodyPolicy int

const (
	// bodyExcerpt includes the first bytes of the body: authentik's 400 answers name the
	// field that is wrong. For endpoints whose objects hold no secret.
	bodyExcerpt bodyPolicy = iota
	// bodyFieldNames includes only the top-level keys of a JSON body. For provider
	// endpoints: a provider object carries client_secret, so its bodies never go into an
	// error, but the names of the fields a 400 complains about are safe and useful.
	bodyFieldNames
)

// maxExcerpt is how many bytes of a response body an error quotes at most.
const maxExcerpt = 300

// callError wraps the error of a generated-client call as "<what>: HTTP <status>: <body>".
// resp is nil on transport errors, which are wrapped as they are (they carry the URL, never
// a header, so never the token).
func callError(what string, resp *http.Response, err error, p bodyPolicy) error {
	var gen *api.GenericOpenAPIError
	if !errors.As(err, &gen) {
		return fmt.Errorf("%s: %w", what, err)
	}
	status := "invalid response"
	if resp != nil {
		status = "HTTP " + resp.Status
		if resp.StatusCode < 300 {
			// A 2xx whose body did not decode into the model.
			if p == bodyFieldNames {
				return fmt.Errorf("%s: %s: response does not match authentik's API", what, status)
			}
			return fmt.Errorf("%s: %s: response does not match authentik's API: %s", what, status, gen.Error())
		}
	}
	if resp != nil && resp.Header.Get(refusedHeader) != "" {
		// Never sent: akminio's own write fence refused it (lease.Fence, ha).
		return fmt.Errorf("%s: %s", what, resp.Header.Get(refusedHeader))
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) {
		// The retry transport has retried it already: transient, the next run may pass.
		return reconcile.Transient(plainCallError(what, status, gen, p))
	}
	if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s: %s: the token was refused (check authentik.token)", what, status)
	}
	return plainCallError(what, status, gen, p)
}

// plainCallError is "<what>: <status>[: <detail of the body>]", unwrapping to gen.
func plainCallError(what, status string, gen *api.GenericOpenAPIError, p bodyPolicy) error {
	if detail := bodyDetail(gen.Body(), p); detail != "" {
		return &responseError{msg: fmt.Sprintf("%s: %s: %s", what, status, detail), gen: gen}
	}
	return &responseError{msg: fmt.Sprintf("%s: %s", what, status), gen: gen}
}

// responseError is an error answer of authentik. Its message is callError's (the body
// quoted per the body policy); Unwrap gives the generated client's error, so that code can
// read the whole body (errors.As) without it reaching a message.
type responseError struct {
	msg string
	gen *api.GenericOpenAPIError
}

func (e *responseError) Error() string { return e.msg }
func (e *responseError) Unwrap() error { return e.gen }

// bodyDetail renders an error body per p.
func bodyDetail(body []byte, p bodyPolicy) string {
	if len(body) == 0 {
		return ""
	}
	if p == bodyFieldNames {
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil || len(obj) == 0 {
			return ""
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return "authentik rejected fields: " + strings.Join(keys, ", ")
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > maxExcerpt {
		cut := maxExcerpt
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// statusOf returns the HTTP status of a call, 0 when there was no response.
func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// refusedHeader is lease.RefusedHeader: the answer akminio's write fence makes up for a
// write it did not send (the package does not import lease).
const refusedHeader = "X-Akminio-Refused"
