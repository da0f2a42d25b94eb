package specload

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/conflictcheck/conflictcheck/openapi"
)

func addSeeds(f *testing.F) {
	f.Add(openapi.Reference)
	files, _ := filepath.Glob("testdata/hostile/*")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"get": {"operationId": "a", "x-conflict": {"kind": "transition"}}}}}`,
		`{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"post": {"operationId": "a", "responses": {"200": {"description": "ok"}}}}}}`,
		"openapi: 3.0.3\npaths:\n  /a: {$ref: '#/paths/~1a'}\n",
		"openapi: 3.0.3\ncomponents: {schemas: {A: {$ref: '#/components/schemas/A'}}}\n",
		`{"a": "\ud83d\ude00\u0000\"", "b": [1e5, -0.5, 12345678901234567890]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzLoad loads arbitrary bytes: it must never panic, and an error must be one line.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := LoadBytes(context.Background(), "<bytes>", data, Options{MaxBytes: 1 << 20})
		if err != nil {
			oneLineError(t, "<bytes>", err)
			return
		}
		if doc.T == nil {
			t.Fatal("no document and no error")
		}
		for _, o := range doc.Operations {
			if o.Op == nil || o.Item == nil || o.ID == "" {
				t.Fatalf("incomplete operation %+v", o)
			}
		}
	})
}

// FuzzParseJSON checks parseJSON against encoding/json: the same documents are valid, and they
// hold the same values.
func FuzzParseJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		n, err := parseJSON(data)
		var want any
		wantErr := json.Unmarshal(data, &want)
		if err != nil {
			var je *jsonError
			if errors.As(err, &je) && je.final {
				return // depth or range, which encoding/json may judge otherwise
			}
			if wantErr == nil {
				t.Fatalf("parseJSON refuses what encoding/json accepts: %v", err)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("parseJSON accepts what encoding/json refuses (%v)", wantErr)
		}
		got, err := toAny(n, nil)
		if err != nil {
			t.Fatalf("toAny: %v", err)
		}
		if got = floats(got); !reflect.DeepEqual(got, want) {
			t.Fatalf("parseJSON = %#v\nencoding/json = %#v", got, want)
		}
		// And back: appendJSON writes what encoding/json reads as the same value.
		b, err := appendJSON(nil, n)
		if err != nil {
			t.Fatalf("appendJSON: %v", err)
		}
		var again any
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("appendJSON wrote %s (%v)", b, err)
		}
	})
}

// floats turns json.Numbers into float64s, as encoding/json decodes them.
func floats(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = floats(e)
		}
	case []any:
		for i, e := range v {
			v[i] = floats(e)
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return string(v)
		}
		return f
	}
	return v
}
