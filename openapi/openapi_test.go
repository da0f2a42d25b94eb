package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/openapi"
)

const (
	problemJSON  = "application/problem+json"
	appJSON      = "application/json"
	problemURN   = "urn:conflictcheck:problem:"
	xConflict    = "x-conflict"
	xConflictURL = "urn:conflictcheck:schema:x-conflict"
	responseBody = "$response.body#"
)

// loadReference parses and resolves the bundled reference document.
func loadReference(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Reference)
	if err != nil {
		t.Fatalf("loading reference.yaml: %v", err)
	}
	return doc
}

// compileXConflict compiles the bundled x-conflict JSON Schema.
func compileXConflict(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.XConflictSchema))
	if err != nil {
		t.Fatalf("parsing x-conflict.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(xConflictURL, doc); err != nil {
		t.Fatalf("adding x-conflict schema: %v", err)
	}
	sch, err := c.Compile(xConflictURL)
	if err != nil {
		t.Fatalf("compiling x-conflict schema: %v", err)
	}
	return sch
}

// schemaOpts are the options every example is validated with: uuid is checked too.
func schemaOpts(extra ...openapi3.SchemaValidationOption) []openapi3.SchemaValidationOption {
	return append([]openapi3.SchemaValidationOption{
		openapi3.MultiErrors(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
	}, extra...)
}

// operationRef is one operation of the document with where it lives.
type operationRef struct {
	method, path string
	item         *openapi3.PathItem
	op           *openapi3.Operation
}

// operations indexes the document's operations by operationId.
func operations(t *testing.T, doc *openapi3.T) map[string]operationRef {
	t.Helper()
	ops := map[string]operationRef{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			if prev, dup := ops[op.OperationID]; dup {
				t.Errorf("operationId %s used by %s %s and %s %s", op.OperationID, prev.method, prev.path, method, path)
			}
			ops[op.OperationID] = operationRef{method: method, path: path, item: item, op: op}
		}
	}
	return ops
}

// parameters returns the operation's parameters, path-level ones included, by "in:name".
func (o operationRef) parameters() map[string]*openapi3.Parameter {
	ps := map[string]*openapi3.Parameter{}
	for _, list := range []openapi3.Parameters{o.item.Parameters, o.op.Parameters} {
		for _, p := range list {
			ps[p.Value.In+":"+p.Value.Name] = p.Value
		}
	}
	return ps
}

// hasParameter reports whether the operation has a parameter of that name, wherever it is.
func (o operationRef) hasParameter(name string) bool {
	for _, p := range o.parameters() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// success returns the operation's 2xx response.
func (o operationRef) success() (int, *openapi3.Response) {
	for code, r := range o.op.Responses.Map() {
		if n, err := strconv.Atoi(code); err == nil && n/100 == 2 {
			return n, r.Value
		}
	}
	return 0, nil
}

// successSchema returns the JSON schema of the operation's 2xx response, if it has a body.
func (o operationRef) successSchema() *openapi3.Schema {
	if _, r := o.success(); r != nil {
		if mt := r.Content.Get(appJSON); mt != nil && mt.Schema != nil {
			return mt.Schema.Value
		}
	}
	return nil
}

// requestSchema returns the JSON schema of the operation's request body, if it has one.
func (o operationRef) requestSchema() *openapi3.Schema {
	if o.op.RequestBody == nil {
		return nil
	}
	if mt := o.op.RequestBody.Value.Content.Get(appJSON); mt != nil && mt.Schema != nil {
		return mt.Schema.Value
	}
	return nil
}

// property returns the schema at a JSON pointer of properties (through allOf), or nil.
func property(s *openapi3.Schema, pointer string) *openapi3.Schema {
	if pointer == "" {
		return s
	}
	if s == nil || !strings.HasPrefix(pointer, "/") {
		return nil
	}
	tok, rest, _ := strings.Cut(pointer[1:], "/")
	if rest != "" {
		rest = "/" + rest
	}
	tok = runtimeexpr.UnescapeToken(tok)
	if p, ok := s.Properties[tok]; ok {
		return property(p.Value, rest)
	}
	for _, sub := range s.AllOf {
		if found := property(sub.Value, "/"+tok+rest); found != nil {
			return found
		}
	}
	return nil
}

// problemTypes returns the problem type URNs a problem response schema admits.
func problemTypes(s *openapi3.Schema) []string {
	var urns []string
	alts := []*openapi3.Schema{s}
	if len(s.OneOf) > 0 {
		alts = nil
		for _, sub := range s.OneOf {
			alts = append(alts, sub.Value)
		}
	}
	for _, alt := range alts {
		for _, sub := range alt.AllOf {
			if typ := sub.Value.Properties["type"]; typ != nil {
				for _, e := range typ.Value.Enum {
					urns = append(urns, fmt.Sprint(e))
				}
			}
		}
	}
	slices.Sort(urns)
	return urns
}

// xConflicts returns the x-conflict values of the document by operationId, as plain JSON values
// (decoded with json.Number, as jsonschema expects).
func xConflicts(t *testing.T, doc *openapi3.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	for id, o := range operations(t, doc) {
		raw, ok := o.op.Extensions[xConflict]
		if !ok {
			continue
		}
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatalf("%s: marshalling x-conflict: %v", id, err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: decoding x-conflict: %v", id, err)
		}
		out[id] = v
	}
	return out
}

// scenarios flattens an x-conflict value (an object or a list of them).
func scenarios(v any) []map[string]any {
	switch v := v.(type) {
	case map[string]any:
		return []map[string]any{v}
	case []any:
		var out []map[string]any
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// mustJSON decodes a JSON literal of a test table the way jsonschema does.
func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		t.Fatalf("bad JSON in test table: %v\n%s", err, s)
	}
	return v
}

func TestReferenceIsValidOpenAPI30(t *testing.T) {
	doc := loadReference(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("reference.yaml is not a valid OpenAPI document: %v", err)
	}
	if got, want := doc.OpenAPI, "3.0.3"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	if got, want := doc.Info.Title, "conflictcheck reference inventory API"; got != want {
		t.Errorf("info.title = %q, want %q", got, want)
	}
	for _, s := range doc.Servers {
		if s.URL != "/" {
			t.Errorf("server %q: want only the relative server /", s.URL)
		}
	}
}

// apiOperation is one operation of API.md: where it lives and what it answers.
type apiOperation struct {
	id, method, path string
	success          int
	problems         map[int][]string // status → problem names (several: oneOf)
	headers          map[int][]string // status → response headers
	params           map[string]bool  // "in:name" → required
	body             string           // request schema component, "" for none
}

// apiOperations is API.md's operation list; every operation also declares 500 and 503.
var apiOperations = []apiOperation{
	{
		id: "createItem", method: "POST", path: "/items", success: 201, body: "ItemCreate",
		problems: map[int][]string{400: {"malformed-request"}, 409: {"sku-taken"}, 413: {"content-too-large"},
			415: {"unsupported-media-type"}, 422: {"validation-failed"}},
		headers: map[int][]string{201: {"ETag", "Location"}},
	},
	{
		id: "listItems", method: "GET", path: "/items", success: 200,
		problems: map[int][]string{400: {"malformed-request"}},
		params:   map[string]bool{"query:sku": false, "query:limit": false},
	},
	{
		id: "getItem", method: "GET", path: "/items/{id}", success: 200,
		problems: map[int][]string{404: {"not-found"}},
		headers:  map[int][]string{200: {"ETag"}},
		params:   map[string]bool{"path:id": true},
	},
	{
		id: "replaceItem", method: "PUT", path: "/items/{id}", success: 200, body: "ItemReplace",
		problems: map[int][]string{400: {"malformed-request"}, 404: {"not-found"}, 412: {"precondition-failed"},
			413: {"content-too-large"}, 415: {"unsupported-media-type"}, 422: {"validation-failed"},
			428: {"precondition-required"}},
		headers: map[int][]string{200: {"ETag"}},
		params:  map[string]bool{"path:id": true, "header:If-Match": false},
	},
	{
		id: "patchItem", method: "PATCH", path: "/items/{id}", success: 200, body: "ItemPatch",
		problems: map[int][]string{400: {"malformed-request"}, 404: {"not-found"}, 409: {"version-mismatch"},
			412: {"precondition-failed"}, 413: {"content-too-large"}, 415: {"unsupported-media-type"}, 422: {"validation-failed"}},
		headers: map[int][]string{200: {"ETag"}},
		params:  map[string]bool{"path:id": true, "header:If-Match": false},
	},
	{
		id: "deleteItem", method: "DELETE", path: "/items/{id}", success: 204,
		problems: map[int][]string{400: {"malformed-request"}, 404: {"not-found"}, 409: {"item-in-use"}, 412: {"precondition-failed"}},
		params:   map[string]bool{"path:id": true, "header:If-Match": false},
	},
	{
		id: "createOrder", method: "POST", path: "/orders", success: 201, body: "OrderCreate",
		problems: map[int][]string{400: {"malformed-request"}, 409: {"idempotency-key-in-flight", "insufficient-stock"},
			413: {"content-too-large"}, 415: {"unsupported-media-type"},
			422: {"idempotency-key-reused", "unknown-item", "validation-failed"}},
		headers: map[int][]string{201: {"Idempotent-Replayed", "Location"}, 409: {"Idempotent-Replayed"}},
		params:  map[string]bool{"header:Idempotency-Key": false},
	},
	{
		id: "getOrder", method: "GET", path: "/orders/{id}", success: 200,
		problems: map[int][]string{404: {"not-found"}},
		params:   map[string]bool{"path:id": true},
	},
	{
		id: "cancelOrder", method: "POST", path: "/orders/{id}/cancel", success: 200,
		problems: map[int][]string{404: {"not-found"}, 409: {"invalid-transition"}},
		params:   map[string]bool{"path:id": true},
	},
	{
		id: "shipOrder", method: "POST", path: "/orders/{id}/ship", success: 200,
		problems: map[int][]string{404: {"not-found"}, 409: {"invalid-transition"}},
		params:   map[string]bool{"path:id": true},
	},
}

// TestTablesFollowAPIMarkdown keeps the tables of this file in step with API.md, the
// authoritative contract: every operation line and every problem row must be in a table.
func TestTablesFollowAPIMarkdown(t *testing.T) {
	md, err := os.ReadFile("API.md")
	if err != nil {
		t.Fatalf("reading API.md: %v", err)
	}
	opLine := regexp.MustCompile("(?m)^- `([A-Z]+) ([^`]+)` \\[(\\w+)\\]")
	var ops []string
	for _, m := range opLine.FindAllStringSubmatch(string(md), -1) {
		ops = append(ops, m[3]+" "+m[1]+" "+m[2])
	}
	var wantOps []string
	for _, o := range apiOperations {
		wantOps = append(wantOps, o.id+" "+o.method+" "+o.path)
	}
	slices.Sort(ops)
	slices.Sort(wantOps)
	if !slices.Equal(ops, wantOps) {
		t.Errorf("API.md operations = %v, table has %v", ops, wantOps)
	}

	problemRow := regexp.MustCompile(`(?m)^\| ([a-z-]+) \| (\d{3}) \|`)
	var problems, wantProblems []string
	for _, m := range problemRow.FindAllStringSubmatch(string(md), -1) {
		problems = append(problems, m[1]+" "+m[2])
	}
	for _, p := range apiProblems {
		wantProblems = append(wantProblems, fmt.Sprintf("%s %d", p.name, p.status))
	}
	slices.Sort(problems)
	slices.Sort(wantProblems)
	if !slices.Equal(problems, wantProblems) {
		t.Errorf("API.md problems = %v, table has %v", problems, wantProblems)
	}
}

func TestOperationsMatchAPI(t *testing.T) {
	doc := loadReference(t)
	ops := operations(t, doc)
	if got, want := len(ops), len(apiOperations); got != want {
		t.Errorf("document has %d operations, API.md has %d", got, want)
	}
	for _, want := range apiOperations {
		t.Run(want.id, func(t *testing.T) {
			o, ok := ops[want.id]
			if !ok {
				t.Fatalf("no operation %s", want.id)
			}
			if o.method != want.method || o.path != want.path {
				t.Errorf("%s is %s %s, want %s %s", want.id, o.method, o.path, want.method, want.path)
			}
			if o.op.Summary == "" || o.op.Description == "" {
				t.Errorf("%s needs a summary and a description", want.id)
			}

			problems := maps.Clone(want.problems)
			problems[500] = []string{"internal"}
			problems[503] = []string{"unavailable"}
			wantStatuses := []int{want.success}
			for code := range problems {
				wantStatuses = append(wantStatuses, code)
			}
			slices.Sort(wantStatuses)
			var gotStatuses []int
			for code := range o.op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("response %q: want explicit statuses only", code)
					continue
				}
				gotStatuses = append(gotStatuses, n)
			}
			slices.Sort(gotStatuses)
			if !slices.Equal(gotStatuses, wantStatuses) {
				t.Errorf("statuses = %v, want %v", gotStatuses, wantStatuses)
			}

			for code, names := range problems {
				r := o.op.Responses.Status(code)
				if r == nil {
					continue // reported above
				}
				if got := slices.Sorted(maps.Keys(r.Value.Content)); !slices.Equal(got, []string{problemJSON}) {
					t.Errorf("%d content types = %v, want only %s", code, got, problemJSON)
					continue
				}
				var wantURNs []string
				for _, n := range names {
					wantURNs = append(wantURNs, problemURN+n)
				}
				slices.Sort(wantURNs)
				if got := problemTypes(r.Value.Content.Get(problemJSON).Schema.Value); !slices.Equal(got, wantURNs) {
					t.Errorf("%d problems = %v, want %v", code, got, wantURNs)
				}
				if len(names) > 1 && len(r.Value.Content.Get(problemJSON).Schema.Value.OneOf) != len(names) {
					t.Errorf("%d: want a oneOf of %d problems", code, len(names))
				}
			}

			succ := o.op.Responses.Status(want.success)
			if succ != nil {
				types := slices.Sorted(maps.Keys(succ.Value.Content))
				wantTypes := []string{appJSON}
				if want.success == 204 {
					wantTypes = nil
				}
				if !slices.Equal(types, wantTypes) {
					t.Errorf("%d content types = %v, want %v", want.success, types, wantTypes)
				}
			}
			for _, code := range wantStatuses {
				r := o.op.Responses.Status(code)
				if r == nil {
					continue
				}
				got := slices.Sorted(maps.Keys(r.Value.Headers))
				if wantH := want.headers[code]; !slices.Equal(got, wantH) {
					t.Errorf("%d headers = %v, want %v", code, got, wantH)
				}
			}

			gotParams := map[string]bool{}
			for key, p := range o.parameters() {
				gotParams[key] = p.Required
			}
			wantParams := want.params
			if wantParams == nil {
				wantParams = map[string]bool{}
			}
			if !maps.Equal(gotParams, wantParams) {
				t.Errorf("parameters (in:name → required) = %v, want %v", gotParams, wantParams)
			}

			switch {
			case want.body == "" && o.op.RequestBody != nil:
				t.Errorf("unexpected request body")
			case want.body != "":
				if o.op.RequestBody == nil || !o.op.RequestBody.Value.Required {
					t.Fatalf("want a required request body")
				}
				mt := o.op.RequestBody.Value.Content
				if got := slices.Sorted(maps.Keys(mt)); !slices.Equal(got, []string{appJSON}) {
					t.Errorf("request content types = %v, want only %s", got, appJSON)
				}
				if ref := mt.Get(appJSON).Schema.Ref; ref != "#/components/schemas/"+want.body {
					t.Errorf("request schema = %q, want %s", ref, want.body)
				}
			}
		})
	}
}

// apiProblems is API.md's problem table, with a valid value for each extension member.
var apiProblems = []struct {
	name    string
	status  int
	members map[string]any
}{
	{"malformed-request", 400, nil},
	{"not-found", 404, nil},
	{"content-too-large", 413, nil},
	{"unsupported-media-type", 415, nil},
	{"validation-failed", 422, map[string]any{"errors": []any{map[string]any{"field": "/sku", "message": "required"}}}},
	{"unknown-item", 422, map[string]any{"itemId": "3f2b8c1e-4d5a-4e6f-8a7b-9c0d1e2f3a4b"}},
	{"idempotency-key-reused", 422, map[string]any{"idempotencyKey": "k-1"}},
	{"precondition-required", 428, nil},
	{"precondition-failed", 412, map[string]any{"currentETag": `"v2"`, "currentVersion": 2}},
	{"sku-taken", 409, map[string]any{"sku": "SKU-1", "existingId": "3f2b8c1e-4d5a-4e6f-8a7b-9c0d1e2f3a4b"}},
	{"version-mismatch", 409, map[string]any{"currentVersion": 2, "currentETag": `"v2"`}},
	{"item-in-use", 409, map[string]any{"blockingOrders": []any{"7c9e6679-7425-40de-944b-e07fc1f90ae7"}}},
	{"insufficient-stock", 409, map[string]any{"available": 0, "requested": 1}},
	{"idempotency-key-in-flight", 409, map[string]any{"idempotencyKey": "k-1"}},
	{"invalid-transition", 409, map[string]any{"currentStatus": "shipped"}},
	{"internal", 500, nil},
	{"unavailable", 503, nil},
}

func TestProblemSchemas(t *testing.T) {
	doc := loadReference(t)
	byURN := map[string]*openapi3.Schema{}
	for name, s := range doc.Components.Schemas {
		if !strings.HasSuffix(name, "Problem") || name == "Problem" {
			continue
		}
		urns := problemTypes(s.Value)
		if len(urns) != 1 {
			t.Errorf("schema %s: want exactly one type URN, got %v", name, urns)
			continue
		}
		if len(s.Value.AllOf) != 2 || s.Value.AllOf[0].Ref != "#/components/schemas/Problem" {
			t.Errorf("schema %s: want allOf [Problem, {members}]", name)
		}
		byURN[urns[0]] = s.Value
	}
	if got, want := len(byURN), len(apiProblems); got != want {
		t.Errorf("%d problem schemas, API.md lists %d", got, want)
	}
	base := doc.Components.Schemas["Problem"].Value
	if got, want := slices.Sorted(slices.Values(base.Required)), []string{"detail", "status", "title", "type"}; !slices.Equal(got, want) {
		t.Errorf("Problem requires %v, want %v", got, want)
	}

	for _, p := range apiProblems {
		t.Run(p.name, func(t *testing.T) {
			s, ok := byURN[problemURN+p.name]
			if !ok {
				t.Fatalf("no schema with type %s", problemURN+p.name)
			}
			var required []string
			for _, sub := range s.AllOf[1:] {
				required = append(required, sub.Value.Required...)
			}
			slices.Sort(required)
			if want := slices.Sorted(maps.Keys(p.members)); !slices.Equal(required, want) {
				t.Errorf("required members = %v, want %v", required, want)
			}

			valid := func() map[string]any {
				v := map[string]any{"type": problemURN + p.name, "title": "T", "status": p.status, "detail": "D", "instance": "extra members are allowed"}
				maps.Copy(v, p.members)
				return v
			}
			if err := s.VisitJSON(valid(), schemaOpts()...); err != nil {
				t.Errorf("a valid %s problem is rejected: %v", p.name, err)
			}
			invalid := map[string]func(map[string]any){
				"wrong status": func(v map[string]any) { v["status"] = p.status + 1 },
				"wrong type":   func(v map[string]any) { v["type"] = problemURN + "other" },
				"no detail":    func(v map[string]any) { delete(v, "detail") },
			}
			for m := range p.members {
				invalid["no "+m] = func(v map[string]any) { delete(v, m) }
			}
			for what, spoil := range invalid {
				v := valid()
				spoil(v)
				if err := s.VisitJSON(v, schemaOpts()...); err == nil {
					t.Errorf("%s: a problem with %s is accepted", p.name, what)
				}
			}
		})
	}
}

// wantXConflict is the x-conflict value each operation must carry.
var wantXConflict = map[string]string{
	"createItem":  `{"kind": "duplicate-create", "expect": [409], "read": "getItem", "key": ["/sku"], "bind": {"id": "$response.body#/id"}}`,
	"replaceItem": `{"kind": "stale-update", "version": {"header": "ETag"}, "subject": "createItem", "read": "getItem", "expect": [412], "bind": {"id": "$response.body#/id"}}`,
	"patchItem":   `{"kind": "stale-update", "version": {"field": "/version"}, "subject": "createItem", "read": "getItem", "expect": [409], "bind": {"id": "$response.body#/id"}}`,
	"deleteItem":  `{"kind": "delete-in-use", "subject": "createItem", "dependent": "createOrder", "resolve": "cancelOrder", "read": "getItem", "expect": [409, 422], "bind": {"id": "$response.body#/id"}}`,
	"createOrder": `[
		{"kind": "idempotency-key", "header": "Idempotency-Key", "subject": "createItem", "read": "getOrder", "expect": [409], "body": {"itemId": "$response.body#/id", "quantity": 1}},
		{"kind": "capacity", "subject": "createItem", "invariant": {"read": "getItem", "field": "/stock", "min": 0}, "expect": [409], "body": {"itemId": "$response.body#/id", "quantity": 1}}
	]`,
	"cancelOrder": `{"kind": "transition", "racers": ["cancelOrder", "shipOrder"], "subject": "createOrder", "read": "getOrder", "expect": [409], "bind": {"id": "$response.body#/id"}}`,
}

func TestXConflictValuesInReference(t *testing.T) {
	doc := loadReference(t)
	sch := compileXConflict(t)
	got := xConflicts(t, doc)
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wantXConflict)); !slices.Equal(g, w) {
		t.Errorf("operations with x-conflict = %v, want %v", g, w)
	}
	for id, wantJSON := range wantXConflict {
		t.Run(id, func(t *testing.T) {
			v, ok := got[id]
			if !ok {
				t.Fatalf("%s has no x-conflict", id)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("x-conflict of %s does not match its schema:\n%v", id, err)
			}
			if want := mustJSON(t, wantJSON); !reflect.DeepEqual(v, want) {
				t.Errorf("x-conflict of %s =\n%v\nwant\n%v", id, v, want)
			}
		})
	}
}

func TestXConflictSchemaAccepts(t *testing.T) {
	sch := compileXConflict(t)
	for name, value := range map[string]string{
		"only kind":                          `{"kind": "transition"}`,
		"idempotency-key, no header":         `{"kind": "idempotency-key", "subject": "createItem"}`,
		"stale-update, inferred":             `{"kind": "stale-update"}`,
		"capacity with max only":             `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock", "max": 10.5}}`,
		"key of whole body":                  `{"kind": "duplicate-create", "key": [""], "concurrency": 256}`,
		"escaped pointer":                    `{"kind": "duplicate-create", "key": ["/a~1b/c~0d"]}`,
		"runtime expressions":                `{"kind": "transition", "bind": {"id": "$response.header.Location", "q": "$request.query.x", "b": "$request.body"}}`,
		"body of any JSON":                   `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock", "min": 0}, "body": [1, "x", null]}`,
		"one-element list":                   `[{"kind": "delete-in-use", "dependent": "createOrder"}]`,
		"only a kind (the rest is inferred)": `{"kind": "capacity"}`,
		"delete-in-use, dependent inferred":  `{"kind": "delete-in-use"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := sch.Validate(mustJSON(t, value)); err != nil {
				t.Errorf("%s is rejected:\n%v", value, err)
			}
		})
	}
}

func TestXConflictSchemaRejects(t *testing.T) {
	sch := compileXConflict(t)
	for _, tc := range []struct {
		name, value string
		field       string // must appear in the error
	}{
		{"unknown kind", `{"kind": "dupe"}`, "/kind"},
		{"status out of range", `{"kind": "duplicate-create", "expect": [42]}`, "/expect/0"},
		{"unknown field", `{"kind": "duplicate-create", "retries": 3}`, "retries"},
		{"version with header and field", `{"kind": "stale-update", "version": {"header": "ETag", "field": "/version"}}`, "/version"},
		{"empty racers", `{"kind": "transition", "racers": []}`, "/racers"},
		{"no kind", `{"expect": [409]}`, "kind"},
		{"empty expect", `{"kind": "duplicate-create", "expect": []}`, "/expect"},
		{"repeated expect", `{"kind": "duplicate-create", "expect": [409, 409]}`, "/expect"},
		{"empty version", `{"kind": "stale-update", "version": {}}`, "/version"},
		{"version field not a pointer", `{"kind": "stale-update", "version": {"field": "version"}}`, "/version/field"},
		{"key not a pointer", `{"kind": "duplicate-create", "key": ["sku"]}`, "/key/0"},
		{"bind not an expression", `{"kind": "duplicate-create", "bind": {"id": "id"}}`, "/bind/id"},
		{"empty subject", `{"kind": "stale-update", "subject": ""}`, "/subject"},
		{"concurrency too low", `{"kind": "transition", "concurrency": 1}`, "/concurrency"},
		{"concurrency not integer", `{"kind": "transition", "concurrency": 2.5}`, "/concurrency"},
		{"invariant without field", `{"kind": "capacity", "invariant": {"read": "getItem", "min": 0}}`, "/invariant"},
		{"invariant without bound", `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock"}}`, "/invariant"},
		{"key on another kind", `{"kind": "stale-update", "key": ["/sku"]}`, "/key"},
		{"racers on another kind", `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock", "min": 0}, "racers": ["a"]}`, "/racers"},
		{"header with a space", `{"kind": "idempotency-key", "header": "Idempotency Key"}`, "/header"},
		{"empty list", `[]`, "minItems"},
		{"bad element in list", `[{"kind": "transition"}, {"kind": "dupe"}]`, "/1/kind"},
		{"not an object", `"duplicate-create"`, "object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sch.Validate(mustJSON(t, tc.value))
			if err == nil {
				t.Fatalf("%s is accepted", tc.value)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.field) {
				t.Errorf("the error does not name %q:\n%s", tc.field, msg)
			}
		})
	}
}

func TestXConflictReferencesResolve(t *testing.T) {
	doc := loadReference(t)
	ops := operations(t, doc)
	for id, value := range xConflicts(t, doc) {
		self := ops[id]
		for i, sc := range scenarios(value) {
			t.Run(fmt.Sprintf("%s/%d", id, i), func(t *testing.T) {
				opRef := func(field string, v any) (operationRef, bool) {
					name, _ := v.(string)
					o, ok := ops[name]
					if !ok {
						t.Errorf("%s %q names no operation", field, v)
					}
					return o, ok
				}
				related := []operationRef{self}
				for _, f := range []string{"subject", "read", "dependent", "resolve"} {
					if v, ok := sc[f]; ok {
						if o, ok := opRef(f, v); ok {
							related = append(related, o)
						}
					}
				}
				racers, _ := sc["racers"].([]any)
				for _, r := range racers {
					if o, ok := opRef("racers", r); ok {
						related = append(related, o)
					}
				}
				inv, _ := sc["invariant"].(map[string]any)
				if inv != nil {
					if o, ok := opRef("invariant.read", inv["read"]); ok {
						related = append(related, o)
						field, _ := inv["field"].(string)
						if property(o.successSchema(), field) == nil {
							t.Errorf("invariant.field %s is not in the response of %s", field, inv["read"])
						}
					}
				}

				// Runtime expressions read the response of the subject, or of this operation.
				source := self
				if s, ok := ops[fmt.Sprint(sc["subject"])]; ok {
					source = s
				}
				sourceField := func(where string, expr string) *openapi3.Schema {
					if !strings.HasPrefix(expr, responseBody) {
						return nil
					}
					f := property(source.successSchema(), strings.TrimPrefix(expr, responseBody))
					if f == nil {
						t.Errorf("%s %s: no such field in the response of %s", where, expr, source.op.OperationID)
					}
					return f
				}
				bind, _ := sc["bind"].(map[string]any)
				for name, expr := range bind {
					if !slices.ContainsFunc(related, func(o operationRef) bool { return o.hasParameter(name) }) {
						t.Errorf("bind.%s is a parameter of no operation of the scenario", name)
					}
					sourceField("bind."+name, fmt.Sprint(expr))
				}
				if body, ok := sc["body"].(map[string]any); ok {
					req := self.requestSchema()
					for name, v := range body {
						target := property(req, "/"+name)
						if target == nil {
							t.Errorf("body.%s is not in the request schema of %s", name, id)
							continue
						}
						if s, ok := v.(string); ok && strings.HasPrefix(s, "$") {
							if from := sourceField("body."+name, s); from != nil && (!slices.Equal(from.Type.Slice(), target.Type.Slice()) || from.Format != target.Format) {
								t.Errorf("body.%s: %s is %v/%s, the request wants %v/%s", name, s, from.Type.Slice(), from.Format, target.Type.Slice(), target.Format)
							}
							continue
						}
						plain := v
						if n, ok := v.(json.Number); ok {
							plain, _ = n.Float64()
						}
						if err := target.VisitJSON(plain, schemaOpts(openapi3.VisitAsRequest())...); err != nil {
							t.Errorf("body.%s: %v", name, err)
						}
					}
				}
				if keys, ok := sc["key"].([]any); ok {
					for _, k := range keys {
						if property(self.requestSchema(), fmt.Sprint(k)) == nil {
							t.Errorf("key %s is not in the request schema of %s", k, id)
						}
					}
				}
				if version, ok := sc["version"].(map[string]any); ok {
					read, ok := ops[fmt.Sprint(sc["read"])]
					if !ok {
						t.Fatalf("a stale-update needs read")
					}
					_, readResp := read.success()
					if h, ok := version["header"].(string); ok {
						if readResp.Headers[h] == nil {
							t.Errorf("version.header %s is not a header of %s's response", h, read.op.OperationID)
						}
						if h == "ETag" && !self.hasParameter("If-Match") {
							t.Errorf("version.header ETag, but %s has no If-Match parameter", id)
						}
					}
					if f, ok := version["field"].(string); ok {
						if property(self.requestSchema(), f) == nil || property(read.successSchema(), f) == nil {
							t.Errorf("version.field %s must be in %s's request and %s's response", f, id, read.op.OperationID)
						}
					}
				}
				if h, ok := sc["header"].(string); ok {
					if p := self.parameters()["header:"+h]; p == nil {
						t.Errorf("header %s is not a header parameter of %s", h, id)
					}
				}
				expect, _ := sc["expect"].([]any)
				if len(expect) == 0 {
					t.Errorf("want an explicit expect")
				}
			})
		}
	}
}

func TestLinksResolve(t *testing.T) {
	doc := loadReference(t)
	ops := operations(t, doc)
	wantLinks := map[string][]string{
		"createItem":  {"deleteItem", "getItem", "patchItem", "replaceItem"},
		"createOrder": {"cancelOrder", "getOrder", "shipOrder"},
	}
	for id, o := range ops {
		_, r := o.success()
		var targets []string
		for name, l := range r.Links {
			target, ok := ops[l.Value.OperationID]
			if !ok {
				t.Errorf("%s link %s: no operation %q", id, name, l.Value.OperationID)
				continue
			}
			targets = append(targets, target.op.OperationID)
			for param, expr := range l.Value.Parameters {
				if !target.hasParameter(param) {
					t.Errorf("%s link %s: %s has no parameter %s", id, name, target.op.OperationID, param)
				}
				ptr, ok := strings.CutPrefix(fmt.Sprint(expr), responseBody)
				if !ok || property(o.successSchema(), ptr) == nil {
					t.Errorf("%s link %s: %v is not a field of the response", id, name, expr)
				}
			}
		}
		slices.Sort(targets)
		if !slices.Equal(targets, wantLinks[id]) {
			t.Errorf("%s links to %v, want %v", id, targets, wantLinks[id])
		}
	}
}

func TestExamplesMatchSchemas(t *testing.T) {
	doc := loadReference(t)
	check := func(t *testing.T, where string, mt *openapi3.MediaType, opts []openapi3.SchemaValidationOption) int {
		t.Helper()
		n := 0
		visit := func(name string, v any) {
			n++
			if err := mt.Schema.Value.VisitJSON(v, opts...); err != nil {
				t.Errorf("%s example %s does not match its schema: %v", where, name, err)
			}
		}
		if mt.Example != nil {
			visit("example", mt.Example)
		}
		for name, ex := range mt.Examples {
			visit(name, ex.Value.Value)
		}
		return n
	}
	for id, o := range operations(t, doc) {
		t.Run(id, func(t *testing.T) {
			if o.op.RequestBody != nil {
				for ct, mt := range o.op.RequestBody.Value.Content {
					if check(t, "request "+ct, mt, schemaOpts(openapi3.VisitAsRequest())) == 0 {
						t.Errorf("request %s has no example", ct)
					}
				}
			}
			for code, r := range o.op.Responses.Map() {
				for ct, mt := range r.Value.Content {
					if check(t, code+" "+ct, mt, schemaOpts(openapi3.VisitAsResponse())) == 0 {
						t.Errorf("response %s %s has no example", code, ct)
					}
				}
			}
		})
	}
	t.Run("parameters and headers", func(t *testing.T) {
		for name, p := range doc.Components.Parameters {
			if p.Value.Example != nil {
				if err := p.Value.Schema.Value.VisitJSON(p.Value.Example, schemaOpts()...); err != nil {
					t.Errorf("parameter %s example: %v", name, err)
				}
			}
		}
		for name, h := range doc.Components.Headers {
			if h.Value.Example != nil {
				if err := h.Value.Schema.Value.VisitJSON(h.Value.Example, schemaOpts()...); err != nil {
					t.Errorf("header %s example: %v", name, err)
				}
			}
		}
	})
	t.Run("request schemas reject bad bodies", func(t *testing.T) {
		schemas := doc.Components.Schemas
		for _, tc := range []struct {
			schema string
			body   map[string]any
		}{
			{"ItemCreate", map[string]any{"sku": "SKU-1", "name": "Widget", "price": 1, "stock": 1, "color": "red"}},
			{"ItemCreate", map[string]any{"sku": "-bad", "name": "Widget", "price": 1, "stock": 1}},
			{"ItemCreate", map[string]any{"sku": "SKU-1", "name": "Widget", "price": -1, "stock": 1}},
			{"ItemCreate", map[string]any{"sku": "SKU-1", "name": "Widget", "price": 1, "stock": 1000000001}},
			{"ItemReplace", map[string]any{"name": "Widget", "price": 1}},
			{"ItemPatch", map[string]any{"price": 1}},
			{"ItemPatch", map[string]any{"version": 0}},
			{"OrderCreate", map[string]any{"itemId": "not-a-uuid", "quantity": 1}},
			{"OrderCreate", map[string]any{"itemId": "3f2b8c1e-4d5a-4e6f-8a7b-9c0d1e2f3a4b", "quantity": 1001}},
		} {
			if err := schemas[tc.schema].Value.VisitJSON(tc.body, schemaOpts(openapi3.VisitAsRequest())...); err == nil {
				t.Errorf("%s accepts %v", tc.schema, tc.body)
			}
		}
		if err := schemas["ItemPatch"].Value.VisitJSON(map[string]any{"version": 1}, schemaOpts(openapi3.VisitAsRequest())...); err != nil {
			t.Errorf("ItemPatch with only a version is rejected: %v", err)
		}
	})
}
