// Package spectest checks HTTP responses of the reference server against the bundled
// openapi/reference.yaml with kin-openapi's openapi3filter, so that every test exchange also
// proves the document tells the truth. It is for tests only.
package spectest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/conflictcheck/conflictcheck/internal/respcheck"
	"github.com/conflictcheck/conflictcheck/openapi"
)

// Validator checks responses against the reference document.
type Validator struct {
	router routers.Router
}

var (
	shared     *Validator
	sharedErr  error
	sharedOnce sync.Once
)

// New returns the validator of openapi/reference.yaml, loaded once per process.
func New() (*Validator, error) {
	sharedOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(openapi.Reference)
		if err != nil {
			sharedErr = fmt.Errorf("load reference.yaml: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			sharedErr = fmt.Errorf("validate reference.yaml: %w", err)
			return
		}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			sharedErr = fmt.Errorf("route reference.yaml: %w", err)
			return
		}
		shared = &Validator{router: router}
	})
	return shared, sharedErr
}

// Check validates one response to req: the status must be declared for the operation, the
// headers and body must match the declared response, and an error must be problem+json whose
// `status` equals the HTTP status. A request that matches no operation is an error too.
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s: no operation in reference.yaml: %w", req.Method, req.URL.Path, err)
	}
	if err := respcheck.Check(req.Context(), route, params, req, status, header, body, respcheck.Options{RequireProblem: true}); err != nil {
		return fmt.Errorf("%s %s → %d: %w\nbody: %s", req.Method, req.URL.Path, status, err, body)
	}
	return nil
}

// Middleware wraps h so that every response it sends is checked, reporting a mismatch with
// tb.Errorf. Requests to paths the document does not describe are checked as such: they fail.
func (v *Validator) Middleware(tb testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		// The request body is spent; the response check needs only the route.
		r.Body = io.NopCloser(bytes.NewReader(nil))
		if err := v.Check(r, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			tb.Errorf("response breaks reference.yaml: %v", err)
		}
	})
}

// recorder copies what a handler sends while passing it on.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
