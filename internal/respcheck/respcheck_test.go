package respcheck

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

const spec = `
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things:
    post:
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {type: object, required: [id], properties: {id: {type: string}}}
        '409':
          description: conflict
          content:
            application/problem+json:
              schema: {type: object, required: [status], properties: {status: {type: integer}}}
        '422':
          description: any body
          content:
            text/plain:
              schema: {type: string}
`

func TestCheck(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	item := doc.Paths.Value("/things")
	route := &routers.Route{Spec: doc, Path: "/things", PathItem: item, Method: http.MethodPost, Operation: item.Post}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/things", nil)
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		opts    Options
		wantErr string
		is      error
	}{
		{"declared success", 201, http.Header{"Content-Type": {"application/json"}}, `{"id":"a"}`, Options{}, "", nil},
		{"body breaks the schema", 201, http.Header{"Content-Type": {"application/json"}}, `{"name":"a"}`, Options{}, "id", nil},
		{"undeclared status", 404, problem, `{"status":404}`, Options{}, "status is not supported", nil},
		{"problem status matches", 409, problem, `{"status":409}`, Options{RequireProblem: true}, "", nil},
		{"problem status differs", 409, problem, `{"status":400}`, Options{}, "problem status member 400, want 409", nil},
		{"declared plain error allowed", 422, http.Header{"Content-Type": {"text/plain"}}, `nope`, Options{}, "", nil},
		{"plain error refused when problems are required", 422, http.Header{"Content-Type": {"text/plain"}}, `nope`, Options{RequireProblem: true}, "text/plain", ErrNotProblem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(context.Background(), route, nil, req, tt.status, tt.header, []byte(tt.body), tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Check = %v, want an error containing %q", err, tt.wantErr)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("Check = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}
