package specload

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// generateSpec writes an OpenAPI 3.0 document in JSON with ops operations (a multiple of 5): per
// resource a list, a create (declaring 409, with an x-conflict), a read, a conditional replace
// and a delete, schemas and shared components referenced throughout, as generators write them.
func generateSpec(ops int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"openapi": "3.0.3", "info": {"title": "generated", "version": "1.0.0"}, "paths": {`)
	n := ops / 5
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `
"/res%[1]d": {
 "get": {"operationId": "listRes%[1]d", "summary": "List resource %[1]d", "tags": ["res%[1]d"],
  "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
  "responses": {"200": {"description": "the page", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Res%[1]d"}}}}},
   "default": {"$ref": "#/components/responses/Error"}}},
 "post": {"operationId": "createRes%[1]d", "summary": "Create resource %[1]d", "tags": ["res%[1]d"],
  "x-conflict": {"kind": "duplicate-create", "read": "getRes%[1]d", "key": ["/name"], "bind": {"id": "$response.body#/id"}},
  "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res%[1]dCreate"}}}},
  "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res%[1]d"}}},
   "links": {"get": {"operationId": "getRes%[1]d", "parameters": {"id": "$response.body#/id"}}}},
   "409": {"$ref": "#/components/responses/Conflict"}, "default": {"$ref": "#/components/responses/Error"}}}
},
"/res%[1]d/{id}": {
 "parameters": [{"$ref": "#/components/parameters/Id"}],
 "get": {"operationId": "getRes%[1]d", "responses": {"200": {"description": "the resource", "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res%[1]d"}}}}, "404": {"$ref": "#/components/responses/Error"}}},
 "put": {"operationId": "replaceRes%[1]d", "parameters": [{"$ref": "#/components/parameters/IfMatch"}],
  "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res%[1]dCreate"}}}},
  "responses": {"200": {"description": "replaced", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res%[1]d"}}}},
   "412": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Conflict"}}},
 "delete": {"operationId": "deleteRes%[1]d", "responses": {"204": {"description": "deleted"}, "409": {"$ref": "#/components/responses/Conflict"}}}
}`, i)
	}
	b.WriteString(`}, "components": {"schemas": {
"Problem": {"type": "object", "required": ["type", "title", "status"], "properties": {"type": {"type": "string", "format": "uri"},
 "title": {"type": "string"}, "status": {"type": "integer", "minimum": 100, "maximum": 599}, "detail": {"type": "string"}}}`)
	for i := range n {
		fmt.Fprintf(&b, `,
"Res%[1]dCreate": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The unique name of resource %[1]d."},
 "size": {"type": "integer", "format": "int64", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
 "owner": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}, "email": {"type": "string", "format": "email"}}},
 "state": {"type": "string", "enum": ["new", "active", "retired"]}}},
"Res%[1]d": {"allOf": [{"$ref": "#/components/schemas/Res%[1]dCreate"}, {"type": "object", "required": ["id", "version"],
 "properties": {"id": {"type": "string", "format": "uuid", "readOnly": true}, "version": {"type": "integer", "minimum": 1}, "created": {"type": "string", "format": "date-time"}}}]}`, i)
	}
	b.WriteString(`},
"parameters": {"Id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
 "IfMatch": {"name": "If-Match", "in": "header", "required": true, "schema": {"type": "string"}}},
"headers": {"ETag": {"schema": {"type": "string"}}},
"responses": {"Conflict": {"description": "conflict", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
 "Error": {"description": "error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}}
`)
	return b.Bytes()
}

func TestGeneratedSpec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen.json")
	if err := os.WriteFile(path, generateSpec(50), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := mustLoad(t, path, Options{})
	if len(doc.Operations) != 50 || len(doc.Conflicts) != 10 {
		t.Errorf("%d operations, %d with conflicts; want 50, 10", len(doc.Operations), len(doc.Conflicts))
	}
	if got := doc.Operations[1].ID; got != "createRes0" {
		t.Errorf("Operations[1] = %s, want createRes0", got)
	}
}

// writeGenerated writes the 10,000-operation spec, in JSON or YAML, and returns its path.
func writeGenerated(b *testing.B, format string) string {
	b.Helper()
	data := generateSpec(10_000)
	if format == "yaml" {
		n, err := parseJSON(data)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		writeYAML(&out, n, 0)
		data = out.Bytes()
	}
	path := filepath.Join(b.TempDir(), "generated."+format)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchLoad(b *testing.B, path string, opts Options) {
	b.Helper()
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.Size())
	b.ReportAllocs()
	var ops int
	for b.Loop() {
		doc, err := Load(context.Background(), path, opts)
		if err != nil {
			b.Fatal(err)
		}
		ops = len(doc.Operations)
	}
	b.ReportMetric(float64(ops), "operations")
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm>>20), "MB-peak-RSS")
	}
}

// BenchmarkLoadGenerated loads the generated 10,000-operation spec (target: ≤ 1 s, ≤ 300 MB
// peak RSS with planning). MB-peak-RSS is the process's high-water mark: run one benchmark
// per process (-bench '^BenchmarkLoadGenerated$/json') to read it.
func BenchmarkLoadGenerated(b *testing.B) {
	for _, format := range []string{"json", "yaml"} {
		b.Run(format, func(b *testing.B) { benchLoad(b, writeGenerated(b, format), Options{}) })
	}
}

// BenchmarkLoadReal loads each real spec of /work/shared/specs (target: ≤ 1 s each).
func BenchmarkLoadReal(b *testing.B) {
	for _, f := range realSpecs(b) {
		b.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(b *testing.B) {
			benchLoad(b, f, Options{MaxBytes: 128 << 20})
		})
	}
}

// writeYAML writes a node tree parsed from JSON as block YAML, scalars in JSON's spelling
// (double-quoted strings are YAML too).
func writeYAML(b *bytes.Buffer, n *yaml.Node, indent int) {
	pad := strings.Repeat("  ", indent)
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		for i := 0; i+1 < len(n.Content); i += 2 {
			b.WriteString(pad + strconv.Quote(n.Content[i].Value) + ":")
			writeYAML(b, n.Content[i+1], indent+1)
		}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		for _, c := range n.Content {
			b.WriteString(pad + "-")
			writeYAML(b, c, indent+1)
		}
	default:
		v := n.Value
		if n.Tag == tagStr {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + v + "\n")
	}
}

// peakRSS reads the process's peak resident set size from /proc (Linux), or returns 0.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
