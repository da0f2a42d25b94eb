// Package respcheck checks one HTTP response against the response its OpenAPI operation
// declares (kin-openapi's openapi3filter) and, for problem+json, that the body's `status`
// member equals the HTTP status (RFC 9457 §3.1.4). The reference server's tests and the
// conflict-body check both judge responses this way.
package respcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Options tune Check.
type Options struct {
	// RequireProblem makes every status ≥ 400 a failure unless its body is problem+json.
	RequireProblem bool
}

// ErrNotProblem is wrapped when RequireProblem finds an error response of another media type.
var ErrNotProblem = errors.New("not application/problem+json")

// Check validates a response to req, an exchange of route's operation (pathParams are the
// values of the route's path parameters, when known): the status must be declared, headers and
// body must match the declared response, and a problem+json body's status must be the HTTP one.
func Check(ctx context.Context, route *routers.Route, pathParams map[string]string, req *http.Request, status int, header http.Header, body []byte, opts Options) error {
	if header == nil {
		header = http.Header{}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt != "application/problem+json" {
		if opts.RequireProblem && status >= 400 {
			return fmt.Errorf("Content-Type %q: %w", header.Get("Content-Type"), ErrNotProblem)
		}
		return nil
	}
	var p struct {
		Status any `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("problem body: %w", err)
	}
	if f, ok := p.Status.(float64); !ok || int(f) != status {
		b, _ := json.Marshal(p.Status)
		return fmt.Errorf("problem status member %s, want %d", b, status)
	}
	return nil
}
