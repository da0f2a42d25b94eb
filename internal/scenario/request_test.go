package scenario

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

const partsSpec = `openapi: 3.0.3
info: {title: parts, version: "1"}
paths:
  /things/{thingId}/parts:
    parameters:
      - {name: thingId, in: path, required: true, schema: {type: string}}
    post:
      operationId: addPart
      parameters:
        - {name: dryRun, in: query, schema: {type: string}}
        - {name: X-Request-Tag, in: header, schema: {type: string}}
      requestBody:
        content:
          application/merge-patch+json:
            schema: {type: object}
      responses:
        "201": {description: created}
`

func loadParts(t *testing.T) *specload.Document {
	t.Helper()
	doc, err := specload.LoadBytes(t.Context(), "parts.yaml", []byte(partsSpec), specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// withContentType is c with the media type the planner records from the declared body.
func withContentType(c plan.Call, mt string) plan.Call {
	c.ContentType = mt
	return c
}

func TestBuildRequest(t *testing.T) {
	doc := loadParts(t)
	bound := &engine.Exchange{
		Status: http.StatusCreated,
		Header: http.Header{"Location": {"http://api.example/things/loc%2042"}, "Etag": {`"v1"`}},
		Body:   []byte(`{"id": "a b/c", "count": 3, "tags": ["x"]}`),
	}
	call := func(params map[string]string, body any) plan.Call {
		return plan.Call{Operation: "addPart", Method: http.MethodPost, Path: "/things/{thingId}/parts", Params: params, Body: body}
	}
	tests := []struct {
		name     string
		call     plan.Call
		extra    http.Header
		wantPath string
		wantHdr  map[string]string
		wantBody string
		wantErr  string
	}{
		{name: "path param escaped",
			call:     call(map[string]string{"thingId": "$response.body#/id"}, nil),
			wantPath: "/things/a%20b%2Fc/parts"},
		{name: "query and header by declared location",
			call:     call(map[string]string{"thingId": "t1", "dryRun": "yes please", "X-Request-Tag": "$response.header.ETag"}, nil),
			extra:    http.Header{"Authorization": {"Bearer s"}},
			wantPath: "/things/t1/parts?dryRun=yes+please",
			wantHdr:  map[string]string{"X-Request-Tag": `"v1"`, "Authorization": "Bearer s"}},
		{name: "bound values serialised in the parameter's style",
			call:     call(map[string]string{"thingId": "$response.body#/count", "X-Request-Tag": "$response.body#/tags"}, nil),
			wantPath: "/things/3/parts",
			wantHdr:  map[string]string{"X-Request-Tag": "x"}},
		{name: "location-bound path param uses the last segment",
			call:     call(map[string]string{"thingId": "$response.header.Location"}, nil),
			wantPath: "/things/loc%2042/parts"},
		{name: "body expressions evaluated, declared content type",
			call: withContentType(call(map[string]string{"thingId": "t"}, map[string]any{
				"thing": "$response.body#/id", "n": "$response.body#/count", "tags": "$response.body#/tags",
				"nested": map[string]any{"lit": "x", "list": []any{"$statusCode"}}}), "application/merge-patch+json"),
			wantPath: "/things/t/parts",
			wantHdr:  map[string]string{"Content-Type": "application/merge-patch+json"},
			wantBody: `{"n":3,"nested":{"list":[201],"lit":"x"},"tags":["x"],"thing":"a b/c"}`},
		{name: "missing value is an error",
			call:    call(map[string]string{"thingId": "$response.body#/nope"}, nil),
			wantErr: "thingId"},
		{name: "unbound path param is an error",
			call:    call(nil, nil),
			wantErr: "unbound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := BuildRequest(doc, tt.call, bound, tt.extra)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.Path != tt.wantPath {
				t.Errorf("request %s %s, want POST %s", req.Method, req.Path, tt.wantPath)
			}
			for k, v := range tt.wantHdr {
				if got := req.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if req.Header.Get("dryRun") != "" || strings.Contains(req.Path, "X-Request-Tag") {
				t.Errorf("a parameter landed in the wrong place: %s %v", req.Path, req.Header)
			}
			if tt.wantBody != "" {
				var got, want any
				if err := json.Unmarshal(req.Body, &got); err != nil {
					t.Fatalf("body %s: %v", req.Body, err)
				}
				_ = json.Unmarshal([]byte(tt.wantBody), &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("body %s, want %s", req.Body, tt.wantBody)
				}
			} else if req.Body != nil {
				t.Errorf("unexpected body %s", req.Body)
			}
		})
	}
}

func TestBuildRequestFreshAndUnbound(t *testing.T) {
	doc := loadParts(t)
	c := plan.Call{Operation: "addPart", Method: http.MethodPost, Path: "/things/{thingId}/parts",
		Params: map[string]string{"thingId": "t"}, Fresh: []string{"Idempotency-Key"}}
	a, err := BuildRequest(doc, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildRequest(doc, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := a.Header.Get("Idempotency-Key"), b.Header.Get("Idempotency-Key")
	if ka == "" || ka == kb {
		t.Errorf("fresh header values %q and %q, want distinct non-empty", ka, kb)
	}
	c.Params = map[string]string{"thingId": "$response.body#/id"}
	if _, err := BuildRequest(doc, c, nil, nil); err == nil {
		t.Error("an expression with no bound exchange built a request")
	}
}
