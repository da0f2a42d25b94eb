package runtimeexpr

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestParseAndEval(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1/items/7?limit=5")
	c := Context{
		Method:     "POST",
		URL:        u,
		PathParams: map[string]string{"id": "7"},
		Request:    Message{Header: http.Header{"If-Match": {`"v1"`}}, Body: []byte(`{"sku":"A-1","tags":["x","y"]}`)},
		StatusCode: 201,
		Response: Message{
			Header: http.Header{"Location": {"/items/42"}, "Etag": {`"v2"`}},
			Body:   []byte(`{"id":"42","a/b":{"m~n":3},"n":null}`),
		},
	}
	tests := []struct {
		expr string
		want any
	}{
		{"$url", "http://127.0.0.1/items/7?limit=5"},
		{"$method", "POST"},
		{"$statusCode", 201},
		{"$request.header.If-Match", `"v1"`},
		{"$request.query.limit", "5"},
		{"$request.path.id", "7"},
		{"$request.body#/sku", "A-1"},
		{"$request.body#/tags/1", "y"},
		{"$response.header.Location", "/items/42"},
		{"$response.header.ETag", `"v2"`},
		{"$response.body#/id", "42"},
		{"$response.body#/a~1b/m~0n", float64(3)},
		{"$response.body#/n", nil},
		{"$response.body", map[string]any{"id": "42", "a/b": map[string]any{"m~n": float64(3)}, "n": nil}},
	}
	for _, tt := range tests {
		e, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if e.String() != tt.expr {
			t.Errorf("String() = %q, want %q", e.String(), tt.expr)
		}
		got, err := e.Eval(c)
		if err != nil {
			t.Errorf("Eval(%q): %v", tt.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
		}
	}
}

func TestEvalMissing(t *testing.T) {
	c := Context{Response: Message{Body: []byte(`{"id":"1","list":[1]}`), Header: http.Header{}}}
	for _, expr := range []string{"$response.body#/nope", "$response.body#/list/3", "$response.body#/id/x", "$response.header.Location", "$request.path.id", "$request.query.q", "$url"} {
		e, err := Parse(expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		if _, err := e.Eval(c); !errors.Is(err, ErrMissing) {
			t.Errorf("Eval(%q) error = %v, want ErrMissing", expr, err)
		}
	}
	e, _ := Parse("$response.body#/id")
	if _, err := e.Eval(Context{Response: Message{Body: []byte("<html>")}}); err == nil || errors.Is(err, ErrMissing) {
		t.Errorf("non-JSON body: error = %v, want a decode error", err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "id", "$", "$foo", "$request.body#id", "$response.header.", "$response.header.a b", "$request.path.", "$request.body#/a~2", "$response.status"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", s)
		}
		if IsExpression(s) {
			t.Errorf("IsExpression(%q) = true", s)
		}
	}
}

func TestSetAndLastSegment(t *testing.T) {
	got, _ := Set(map[string]any{"a": 1}, "/b/c", "x")
	want := map[string]any{"a": 1, "b": map[string]any{"c": "x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Set = %#v, want %#v", got, want)
	}
	for in, want := range map[string]string{
		"https://api.example.com/items/42": "42",
		"/items/42/":                       "42",
		"/items/a%20b":                     "a b",
		"42":                               "42",
	} {
		if got := LastSegment(in); got != want {
			t.Errorf("LastSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokens(t *testing.T) {
	for name, tok := range map[string]string{"a/b": "a~1b", "m~n": "m~0n", "~1": "~01", "plain": "plain"} {
		if got := EscapeToken(name); got != tok {
			t.Errorf("EscapeToken(%q) = %q, want %q", name, got, tok)
		}
		if got := UnescapeToken(tok); got != name {
			t.Errorf("UnescapeToken(%q) = %q, want %q", tok, got, name)
		}
	}
}
