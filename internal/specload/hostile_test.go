package specload

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileCase is one document of the hostile corpus: a file of testdata/hostile, or one the
// test generates (too big to commit, or naming a listener's address).
type hostileCase struct {
	file string                                // under testdata/hostile
	gen  func(t *testing.T, dir string) string // writes the document, returns its path
	opts Options
	want string // in the error; "" means the document must load
}

// deepJSON nests n arrays inside the info object of an otherwise valid document.
func deepJSON(n int) string {
	return `{"openapi": "3.0.3", "info": {"title": "t", "version": "1", "x-deep": ` +
		strings.Repeat("[", n) + strings.Repeat("]", n) + `}, "paths": {}}`
}

// deepYAML nests n flow sequences, then n block mappings.
func deepYAML(n int, block bool) string {
	if !block {
		return "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\nx-deep: " +
			strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
	}
	var b strings.Builder
	b.WriteString("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\nx-deep:\n")
	for i := range n {
		b.WriteString(strings.Repeat(" ", i+1))
		b.WriteString("a:\n")
	}
	return b.String()
}

func hostileCorpus(listener string) map[string]hostileCase {
	gen := func(name, content string) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string { return writeFile(t, dir, name, content) }
	}
	return map[string]hostileCase{
		"empty":               {file: "empty.yaml", want: "empty document"},
		"whitespace":          {gen: gen("blank.json", " \n\t\n"), want: "empty document"},
		"binary junk":         {file: "binary.bin", want: "binary data (a NUL byte at offset 8)"},
		"not UTF-8":           {gen: gen("latin1.yaml", "openapi: 3.0.3\ninfo: {title: caf\xe9}\n"), want: "not UTF-8 text"},
		"billion laughs":      {file: "billion-laughs.yaml", want: "aliases expand to more than 500000 nodes"},
		"alias cycle":         {file: "alias-cycle.yaml", want: "invalid YAML"},
		"100k-deep JSON":      {gen: gen("deep.json", deepJSON(100_000)), want: "exceeded max depth of 10000"},
		"100k-deep YAML flow": {gen: gen("deep-flow.yaml", deepYAML(100_000, false)), want: "exceeded max depth of 10000"},
		"11k-deep YAML block": {gen: gen("deep-block.yaml", deepYAML(11_000, true)), want: "exceeded max depth of 10000"},
		"deep but legal JSON": {gen: gen("deep-ok.json", deepJSON(5_000))},
		"truncated JSON":      {file: "truncated.json", want: "invalid JSON at line 2, column 1: unexpected end of input"},
		"unresolvable $ref":   {file: "unresolvable-ref.yaml", want: `$ref "#/components/schemas/Nope" at /paths/~1items/get/responses/200/content/application~1json/schema: no such location in the document`},
		"recursive schemas":   {file: "recursive-schema.yaml"},
		"reference cycle": {gen: gen("cycle.json", `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
			"paths": {"/a": {"get": {"operationId": "a", "parameters": [{"$ref": "#/components/parameters/A"}], "responses": {}}}},
			"components": {"parameters": {"A": {"$ref": "#/components/parameters/B"}, "B": {"$ref": "#/components/parameters/A"}}}}`),
			want: `a: parameter $ref "#/components/parameters/A" resolves to nothing (a cycle of references?)`},
		"4900-deep schema": {gen: gen("deep-schema.json", `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {},
			"components": {"schemas": {"Deep": `+strings.Repeat(`{"type": "object", "properties": {"a": `, 4900)+`{"type": "string"}`+
			strings.Repeat(`}}`, 4900)+`}}}`)},
		"remote $ref":           {file: "remote-ref.yaml", want: `$ref "https://schemas.example.invalid/item.yaml#/Item" at /paths/~1items/get/responses/200/content/application~1json/schema: refused`},
		"loopback $ref":         {gen: gen("loopback.yaml", refSpecYAML("http://"+listener+"/item.yaml#/Item")), want: "refused"},
		"absolute $ref":         {file: "absolute-ref.yaml", want: `$ref "/etc/passwd" at /paths/~1items/get/responses/200/content/application~1json/schema: refused: an absolute path`},
		"escaping $ref":         {file: "escaping-ref.yaml", want: `$ref "../../../../../../../../etc/passwd" at /paths/~1items/get/responses/200/content/application~1json/schema: refused: the file is outside the spec's folder`},
		"file: $ref":            {file: "file-url-ref.yaml", want: `$ref "file:///etc/passwd" at /paths/~1items/get/responses/200/content/application~1json/schema: refused: a file: reference`},
		"huge description":      {gen: hugeDescription, opts: Options{MaxBytes: 10 << 20}, want: "larger than the 10 MiB limit"},
		"huge description, cap": {gen: hugeDescription},
		"unknown x-conflict kind": {file: "unknown-kind.yaml",
			want: `createItem: x-conflict.kind: "dupe" is not one of duplicate-create, stale-update, transition, delete-in-use, idempotency-key, capacity`},
		"unknown x-conflict field": {file: "unknown-field.yaml", want: `createItem: x-conflict[1].retries: unknown field`},
		"unknown operationId":      {file: "unknown-operation.yaml", want: `createItem: x-conflict.read: unknown operationId "getThing"`},
		"unknown operationId in a list": {gen: gen("unknown-in-list.yaml", `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /orders:
    post:
      operationId: createOrder
      x-conflict:
        - {kind: idempotency-key}
        - {kind: capacity, invariant: {read: getStock, field: /stock, min: 0}}
      responses: {"201": {description: created}}
`), want: `createOrder: x-conflict[1].invariant.read: unknown operationId "getStock"`},
		"duplicate operationIds": {file: "duplicate-operationid.yaml", want: `duplicate operationId "getItem": GET /items and GET /items/{id}`},
		"Swagger 1.2":            {file: "swagger12.json", want: "swaggerVersion 1.2: Swagger 1.x is not supported"},
		"OpenAPI 4":              {file: "openapi4.yaml", want: `unsupported OpenAPI version "4.0.0" (supported: 3.0.x, 3.1.x, 3.2.x and Swagger 2.0)`},
		"no version":             {file: "no-version.yaml", want: `not an OpenAPI document: it has no "openapi" or "swagger" version field`},
		"a list":                 {file: "top-level-list.yaml", want: "the top level is a list, not a mapping"},
		"a string":               {gen: gen("string.json", `"openapi"`), want: "the top level is a scalar, not a mapping"},
		"infinity":               {file: "infinity.yaml", want: "line 4: .inf is not a JSON number"},
		"null key":               {file: "null-key.yaml", want: "line 4: a mapping key is null"},
		"number out of range":    {gen: gen("big.json", `{"openapi": "3.0.3", "x-n": 1e999}`), want: "number 1e999 is out of range"},
		"duplicate YAML keys":    {gen: gen("dup.yaml", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\npaths: {}\n"), want: `"paths" already defined`},
	}
}

// hugeDescription writes a valid spec with a 50 MB description.
func hugeDescription(t *testing.T, dir string) string {
	p := filepath.Join(dir, "huge.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, `{"openapi": "3.0.3", "info": {"title": "t", "version": "1", "description": "`)
	line := strings.Repeat("all work and no play makes jack a dull boy ", 100)
	for n := 0; n < 50<<20; n += len(line) {
		f.WriteString(line)
	}
	fmt.Fprint(f, `"}, "paths": {}}`)
	return p
}

// TestHostileCorpus loads every hostile document: each fails with one line naming its cause (or
// loads, where it is legal), without a panic, in bounded time and memory, and without
// contacting the loopback listener any document points at.
func TestHostileCorpus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var contacted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			contacted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		if n := contacted.Load(); n != 0 {
			t.Errorf("the loopback listener was contacted %d times", n)
		}
	})

	dir := t.TempDir()
	for name, tc := range hostileCorpus(ln.Addr().String()) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata/hostile", tc.file)
			if tc.gen != nil {
				path = tc.gen(t, dir)
			}
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := Load(ctx, path, tc.opts)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("Load did not return within 60 s")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<30 {
				t.Errorf("Load allocated %d MiB", alloc>>20)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a legal document is refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want an error saying %q", tc.want)
			}
			if msg := oneLineError(t, path, err); !strings.Contains(msg, tc.want) {
				t.Errorf("error\n%s\ndoes not say\n%s", msg, tc.want)
			}
		})
	}
}
