// Package runtimeexpr parses and evaluates OpenAPI runtime expressions (OpenAPI 3.1 §4.8.20.4),
// the language of Links and of x-conflict's bind and body: `$response.body#/id`,
// `$response.header.Location`, `$request.path.id`, `$statusCode`. kin-openapi validates
// documents but does not evaluate these, so this small package does.
package runtimeexpr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Source is where an expression reads from.
type Source string

// The sources of the runtime expression grammar.
const (
	URL        Source = "url"
	Method     Source = "method"
	StatusCode Source = "statusCode"
	ReqHeader  Source = "request.header"
	ReqQuery   Source = "request.query"
	ReqPath    Source = "request.path"
	ReqBody    Source = "request.body"
	RespHeader Source = "response.header"
	RespBody   Source = "response.body"
)

// Expr is a parsed runtime expression.
type Expr struct {
	Source Source
	// Name is the header, query or path parameter name.
	Name string
	// Pointer is the JSON pointer (RFC 6901) into a body, "" for the whole body.
	Pointer string
	raw     string
}

func (e Expr) String() string { return e.raw }

// IsExpression reports whether s looks like a runtime expression (starts with "$" followed by
// a known source), so that literal strings in a body template are left alone.
func IsExpression(s string) bool {
	if !strings.HasPrefix(s, "$") {
		// Most strings of a body are literals: spare them Parse's error.
		return false
	}
	_, err := Parse(s)
	return err == nil
}

// Parse parses s, e.g. "$response.body#/id".
func Parse(s string) (Expr, error) {
	if !strings.HasPrefix(s, "$") {
		return Expr{}, fmt.Errorf("runtime expression %q: must start with $", s)
	}
	rest := s[1:]
	e := Expr{raw: s}
	switch {
	case rest == "url":
		e.Source = URL
	case rest == "method":
		e.Source = Method
	case rest == "statusCode":
		e.Source = StatusCode
	case strings.HasPrefix(rest, "request.header."), strings.HasPrefix(rest, "response.header."):
		i := strings.Index(rest, ".header.")
		e.Source = Source(rest[:i+len(".header")])
		e.Name = rest[i+len(".header."):]
		if !isToken(e.Name) {
			return Expr{}, fmt.Errorf("runtime expression %q: %q is not a header name", s, e.Name)
		}
	case strings.HasPrefix(rest, "request.query."), strings.HasPrefix(rest, "request.path."):
		src, name, _ := strings.Cut(strings.TrimPrefix(rest, "request."), ".")
		e.Source, e.Name = Source("request."+src), name
		if e.Name == "" {
			return Expr{}, fmt.Errorf("runtime expression %q: missing parameter name", s)
		}
	case rest == "request.body" || rest == "response.body" ||
		strings.HasPrefix(rest, "request.body#") || strings.HasPrefix(rest, "response.body#"):
		src, ptr, _ := strings.Cut(rest, "#")
		e.Source, e.Pointer = Source(src), ptr
		if ptr != "" && !strings.HasPrefix(ptr, "/") {
			return Expr{}, fmt.Errorf("runtime expression %q: %q is not a JSON pointer", s, ptr)
		}
		if err := checkPointer(ptr); err != nil {
			return Expr{}, fmt.Errorf("runtime expression %q: %w", s, err)
		}
	default:
		return Expr{}, fmt.Errorf("runtime expression %q: unknown source (want $url, $method, $statusCode, $request.… or $response.…)", s)
	}
	return e, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("!#$%&'*+.^_`|~-", c)) {
			return false
		}
	}
	return true
}

func checkPointer(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Errorf("bad escape in JSON pointer %q", p)
		}
	}
	return nil
}

// Message is one side of an exchange an expression may read.
type Message struct {
	Header http.Header
	// Body is the raw body; it is decoded as JSON when a body expression needs it.
	Body []byte
}

// Context is the exchange an expression is evaluated against.
type Context struct {
	Method     string
	URL        *url.URL
	PathParams map[string]string
	Request    Message
	StatusCode int
	Response   Message
}

// ErrMissing is wrapped by Eval when the expression names something the exchange lacks.
var ErrMissing = errors.New("not present")

// Eval evaluates e against c. Body pointers yield the JSON value found (string, float64,
// bool, nil, map or slice); headers, parameters and the URL yield strings.
func (e Expr) Eval(c Context) (any, error) {
	switch e.Source {
	case URL:
		if c.URL == nil {
			return nil, fmt.Errorf("%s: %w", e.raw, ErrMissing)
		}
		return c.URL.String(), nil
	case Method:
		return c.Method, nil
	case StatusCode:
		return c.StatusCode, nil
	case ReqHeader, RespHeader:
		h := c.Request.Header
		if e.Source == RespHeader {
			h = c.Response.Header
		}
		v, ok := h[http.CanonicalHeaderKey(e.Name)]
		if !ok || len(v) == 0 {
			return nil, fmt.Errorf("%s: header %s %w", e.raw, e.Name, ErrMissing)
		}
		return v[0], nil
	case ReqQuery:
		var q url.Values
		if c.URL != nil {
			q = c.URL.Query()
		}
		if !q.Has(e.Name) {
			return nil, fmt.Errorf("%s: query parameter %s %w", e.raw, e.Name, ErrMissing)
		}
		return q.Get(e.Name), nil
	case ReqPath:
		v, ok := c.PathParams[e.Name]
		if !ok {
			return nil, fmt.Errorf("%s: path parameter %s %w", e.raw, e.Name, ErrMissing)
		}
		return v, nil
	case ReqBody, RespBody:
		raw := c.Request.Body
		if e.Source == RespBody {
			raw = c.Response.Body
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s: body is not JSON: %w", e.raw, err)
		}
		v, err := Pointer(doc, e.Pointer)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.raw, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%s: unknown source", e.raw)
}

// tokenUnescaper and tokenEscaper decode and encode one JSON pointer token (RFC 6901 §3/§4).
var (
	tokenUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
	tokenEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
)

// UnescapeToken decodes one JSON pointer reference token ("a~1b" → "a/b").
func UnescapeToken(tok string) string { return tokenUnescaper.Replace(tok) }

// EscapeToken encodes a member name as a JSON pointer reference token ("a/b" → "a~1b").
func EscapeToken(name string) string { return tokenEscaper.Replace(name) }

// Pointer resolves the JSON pointer p (RFC 6901) in doc, a decoded JSON value.
func Pointer(doc any, p string) (any, error) {
	if p == "" {
		return doc, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("JSON pointer %q must start with /", p)
	}
	cur := doc
	for _, tok := range strings.Split(p[1:], "/") {
		tok = UnescapeToken(tok)
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, fmt.Errorf("member %q of %s %w", tok, p, ErrMissing)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, fmt.Errorf("index %q of %s %w", tok, p, ErrMissing)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("%s descends into a scalar: %w", p, ErrMissing)
		}
	}
	return cur, nil
}

// Set stores v at the JSON pointer p inside doc (objects only, created as needed) and
// returns the possibly new root.
func Set(doc any, p string, v any) (any, error) {
	if p == "" {
		return v, nil
	}
	toks := strings.Split(p[1:], "/")
	root, ok := doc.(map[string]any)
	if !ok {
		root = map[string]any{}
	}
	cur := root
	for i, tok := range toks {
		tok = UnescapeToken(tok)
		if i == len(toks)-1 {
			cur[tok] = v
			break
		}
		next, ok := cur[tok].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[tok] = next
		}
		cur = next
	}
	return root, nil
}

// LastSegment is the last path segment of a URL or path: how a path parameter is bound from a
// Location header (`$response.header.Location` → "…/items/42" → "42").
func LastSegment(s string) string {
	if u, err := url.Parse(s); err == nil && u.Path != "" {
		s = u.Path
	}
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	if un, err := url.PathUnescape(s); err == nil {
		return un
	}
	return s
}

// Clone deep-copies a decoded JSON value (objects and arrays; scalars are shared), so that a
// body template can be filled in without changing the template.
func Clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = Clone(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = Clone(x)
		}
		return out
	}
	return v
}
