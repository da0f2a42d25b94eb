package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/specload"
)

// writeGeneratedSpec writes an OpenAPI 3.0 JSON document with resources × 4 operations (a
// create declaring 409, a read, a conditional replace declaring 412, a delete declaring 409)
// and returns its path.
func writeGeneratedSpec(tb testing.TB, resources int) string {
	tb.Helper()
	schema := map[string]any{
		"type":     "object",
		"required": []string{"name"},
		"properties": map[string]any{
			"id":    map[string]any{"type": "string", "format": "uuid", "readOnly": true},
			"name":  map[string]any{"type": "string", "pattern": "^[a-z]{4,10}-[0-9]{3}$"},
			"count": map[string]any{"type": "integer", "minimum": 0, "maximum": 1000},
			"email": map[string]any{"type": "string", "format": "email"},
		},
	}
	paths := map[string]any{}
	for i := range resources {
		ref := map[string]any{"$ref": fmt.Sprintf("#/components/schemas/R%d", i)}
		body := map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref}}}
		ok := map[string]any{"description": "ok", "content": map[string]any{"application/json": map[string]any{"schema": ref}}}
		paths[fmt.Sprintf("/r%d", i)] = map[string]any{
			"post": map[string]any{"operationId": fmt.Sprintf("create%d", i), "requestBody": body,
				"responses": map[string]any{"201": ok, "409": map[string]any{"description": "taken"}}},
		}
		paths[fmt.Sprintf("/r%d/{id}", i)] = map[string]any{
			"parameters": []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"get":        map[string]any{"operationId": fmt.Sprintf("get%d", i), "responses": map[string]any{"200": ok}},
			"put": map[string]any{"operationId": fmt.Sprintf("replace%d", i), "requestBody": body,
				"parameters": []any{map[string]any{"name": "If-Match", "in": "header", "required": true, "schema": map[string]any{"type": "string"}}},
				"responses":  map[string]any{"200": ok, "412": map[string]any{"description": "stale"}}},
			"delete": map[string]any{"operationId": fmt.Sprintf("delete%d", i),
				"responses": map[string]any{"204": map[string]any{"description": "gone"}, "409": map[string]any{"description": "in use"}}},
		}
	}
	schemas := map[string]any{}
	for i := range resources {
		schemas[fmt.Sprintf("R%d", i)] = schema
	}
	doc := map[string]any{"openapi": "3.0.3", "info": map[string]any{"title": "generated", "version": "1"},
		"paths": paths, "components": map[string]any{"schemas": schemas}}
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "generated.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkPlan10k loads and plans a generated 10,000-operation spec; it reports the peak
// heap in use (peak-MB) next to time and allocations.
func BenchmarkPlan10k(b *testing.B) {
	path := writeGeneratedSpec(b, 2500)
	var peak uint64
	b.ReportAllocs()
	for b.Loop() {
		doc, err := specload.Load(context.Background(), path, specload.Options{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := New(doc, Options{Seed: 1, RunID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Scenarios) < 5000 {
			b.Fatalf("planned %d scenarios, want ≥ 5000", len(p.Scenarios))
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapSys)
	}
	b.ReportMetric(float64(peak)/(1<<20), "heap-sys-MB")
}

// BenchmarkPlanRealSpecs loads and plans each real-world spec of ../shared/specs.
func BenchmarkPlanRealSpecs(b *testing.B) {
	for _, path := range realSpecs(b) {
		b.Run(filepath.Base(path), func(b *testing.B) {
			for b.Loop() {
				doc, err := specload.Load(context.Background(), path, specload.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := New(doc, Options{Seed: 1, RunID: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPlanRealSpecs plans every real-world spec of ../shared/specs without error.
func TestPlanRealSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the large real-world specs")
	}
	for _, path := range realSpecs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			doc, err := specload.Load(context.Background(), path, specload.Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			p, err := New(doc, Options{Seed: 1, RunID: "t"})
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			t.Logf("%d scenarios, %d uncovered, %d warnings", len(p.Scenarios), len(p.Uncovered), len(p.Warnings))
		})
	}
}

// realSpecs lists the real-world specs (../shared/specs next to the repository), skipping
// when they are absent.
func realSpecs(tb testing.TB) []string {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "specs")
	var out []string
	for _, pat := range []string{"*/*.json", "*/*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		out = append(out, m...)
	}
	if len(out) == 0 {
		tb.Skipf("no real-world specs in %s (they live beside the repository, in ../shared/specs)", dir)
	}
	return out
}

func TestGeneratedSpecPlans(t *testing.T) {
	p := planFile(t, writeGeneratedSpec(t, 3), "g")
	if len(p.Scenarios) != 6 || len(p.Uncovered) != 3 {
		t.Errorf("generated spec: %d scenarios, %d uncovered; want 6 (create, replace ×3) and 3 deletes", len(p.Scenarios), len(p.Uncovered))
	}
}
