package specload

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/openapi"
)

// linesYAML has operations with and without operationId, a link naming an operationId (not an
// operation), path-level parameters, a path item given by a local $ref and one by a YAML
// merge key.
const linesYAML = `openapi: 3.1.0
info: {title: lines, version: "1"}
paths:
  /items:
    parameters:
      - {name: q, in: query, schema: {type: string}}
    get:
      responses:
        "200": {description: ok}
    post:
      operationId: createItem
      responses:
        "201":
          description: created
          links:
            self:
              operationId: getItem
  /items/{id}:
    x-note: not an operation
    get:
      operationId: getItem
      responses: {"200": {description: ok}}
    delete:
      operationId: deleteItem
      responses: {"204": {description: gone}}
  /refd:
    $ref: '#/components/pathItems/Refd'
  /merged:
    <<: &shared
      put:
        operationId: putShared
        responses: {"200": {description: ok}}
    patch:
      operationId: patchMerged
      responses: {"200": {description: ok}}
components:
  pathItems:
    Refd:
      post:
        operationId: refdPost
        responses: {"200": {description: ok}}
`

// linesJSON is a JSON document: one operation without operationId, one whose value opens on
// the line after its key, and a local $ref.
const linesJSON = `{
  "openapi": "3.1.0",
  "info": {"title": "lines", "version": "1"},
  "paths": {
    "/orders": {
      "post": {
        "operationId": "createOrder",
        "responses": {"201": {"description": "created"}}
      },
      "get": {"responses": {"200": {"description": "ok"}}}
    },
    "/orders/{id}/cancel": {
      "post":
        {"operationId": "cancelOrder", "responses": {"200": {"description": "ok"}}}
    },
    "/r": {"$ref": "#/components/pathItems/R~1x"}
  },
  "components": {"pathItems": {"R/x": {"delete": {"operationId": "delR", "responses": {}}}}}
}
`

func TestOperationLines(t *testing.T) {
	// A surrogate pair escape is JSON that YAML cannot read: the loader's JSON parser reads
	// it, and gives the line of each operation's value (its "{"), not of its key.
	surrogate := strings.Replace(linesJSON, `"title": "lines"`, `"title": "lines \ud83d\ude00"`, 1)
	tests := []struct {
		name string
		src  string
		want map[string]int
	}{
		{"yaml", linesYAML, map[string]int{
			"GET /items": 7, "POST /items": 10, "createItem": 10,
			"GET /items/{id}": 20, "getItem": 20, "DELETE /items/{id}": 23, "deleteItem": 23,
			"POST /refd": 39, "refdPost": 39,
			"PATCH /merged": 33, "patchMerged": 33, "PUT /merged": 30, "putShared": 30,
		}},
		{"json", linesJSON, map[string]int{
			"POST /orders": 6, "createOrder": 6, "GET /orders": 10,
			"POST /orders/{id}/cancel": 13, "cancelOrder": 13,
			"DELETE /r": 18, "delR": 18,
		}},
		{"json with a byte order mark", "\xef\xbb\xbf" + linesJSON, map[string]int{
			"POST /orders": 6, "createOrder": 6, "GET /orders": 10,
			"POST /orders/{id}/cancel": 13, "cancelOrder": 13,
			"DELETE /r": 18, "delR": 18,
		}},
		{"json yaml cannot read", surrogate, map[string]int{
			"POST /orders": 6, "createOrder": 6, "GET /orders": 10,
			"POST /orders/{id}/cancel": 14, "cancelOrder": 14,
			"DELETE /r": 18, "delR": 18,
		}},
		{"no paths", "openapi: 3.1.0\ninfo: {title: x, version: '1'}\n", map[string]int{}},
		{"not a document", "{\"paths\": [", map[string]int{}},
		{"paths not a mapping", "paths: [a, b]\n", map[string]int{}},
		{"ref cycle and foreign ref", "paths:\n  /a: {$ref: '#/paths/~1a'}\n  /b: {$ref: 'other.yaml#/x'}\n", map[string]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := OperationLines([]byte(tc.src))
			if got == nil {
				t.Fatal("OperationLines returned nil, want a map")
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("OperationLines =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

// TestOperationLinesAliasFanOut checks that merge keys whose aliases fan out 10-fold at each
// of 12 levels (10^12 path items once expanded) are read in bounded time, and still give the
// operation they all lead to.
func TestOperationLinesAliasFanOut(t *testing.T) {
	var b strings.Builder
	b.WriteString("x:\n  l0: &l0 {get: {operationId: leaf}}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d {<<: [%s]}\n", i, i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9)+fmt.Sprintf("*l%d", i-1))
	}
	b.WriteString("paths:\n  /bomb: *l12\n")
	got := OperationLines([]byte(b.String()))
	if want := map[string]int{"GET /bomb": 2, "leaf": 2}; !maps.Equal(got, want) {
		t.Errorf("OperationLines = %v, want %v", got, want)
	}
}

// TestOperationLinesKeyText checks that every line the YAML fixture gives is its method key.
func TestOperationLinesKeyText(t *testing.T) {
	lines := strings.Split(linesYAML, "\n")
	for key, line := range OperationLines([]byte(linesYAML)) {
		method, _, ok := strings.Cut(key, " ")
		if !ok {
			continue
		}
		if got, want := strings.TrimSpace(lines[line-1]), strings.ToLower(method)+":"; got != want {
			t.Errorf("%s: line %d is %q, want %q", key, line, got, want)
		}
	}
}

// TestOperationLinesReference checks the bundled reference spec: every operation the loader
// finds has the line of its method key, and createItem's is the `post:` line just above
// "operationId: createItem" in openapi/reference.yaml.
func TestOperationLinesReference(t *testing.T) {
	src, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != string(openapi.Reference) {
		t.Fatalf("%s differs from the embedded openapi.Reference", referencePath)
	}
	text := strings.Split(string(src), "\n")
	want := slices.IndexFunc(text, func(l string) bool { return strings.TrimSpace(l) == "operationId: createItem" })
	if want < 1 || strings.TrimSpace(text[want-1]) != "post:" {
		t.Fatalf("reference.yaml: no `post:` line above operationId: createItem (index %d)", want)
	}
	// want is the 0-based index of the operationId line, so the 1-based line of `post:`.
	lines := OperationLines(openapi.Reference)
	if got := lines["createItem"]; got != want {
		t.Errorf("createItem at line %d, want %d", got, want)
	}
	if got := lines["POST /items"]; got != want {
		t.Errorf("POST /items at line %d, want %d", got, want)
	}

	doc, err := LoadBytes(context.Background(), "reference.yaml", openapi.Reference, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Operations) == 0 {
		t.Fatal("reference: no operations")
	}
	for _, op := range doc.Operations {
		for _, key := range []string{op.ID, op.Method + " " + op.Path} {
			line, ok := lines[key]
			if !ok {
				t.Errorf("%s: no line", key)
				continue
			}
			if got, want := strings.TrimSpace(text[line-1]), strings.ToLower(op.Method)+":"; got != want {
				t.Errorf("%s: line %d is %q, want %q", key, line, got, want)
			}
		}
	}
	if got, want := len(lines), 2*len(doc.Operations); got != want {
		t.Errorf("%d keys, want %d (operationId and METHOD /path of each operation): %v", got, want, fmt.Sprint(lines))
	}
}
