package scenario

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/synth"
)

// BuildRequest turns a call into a request, evaluating its expressions against the bound
// exchange (nil when the call binds to nothing), placing each parameter where the document
// declares it, filling Fresh headers with unique values, and adding the extra headers.
func BuildRequest(doc *specload.Document, c plan.Call, bound *engine.Exchange, extra http.Header) (engine.Request, error) {
	op := FindOperation(doc, c)
	declared := declaredParams(op)
	ctx := evalContext(bound)

	path := c.Path
	query := url.Values{}
	header := http.Header{}
	for _, name := range slices.Sorted(maps.Keys(c.Params)) {
		p := declared[name]
		if p == nil {
			p = &openapi3.Parameter{Name: name, In: openapi3.ParameterInQuery}
			if strings.Contains(c.Path, "{"+name+"}") {
				p.In = openapi3.ParameterInPath
			}
		}
		v, err := paramValue(p, c.Params[name], ctx)
		if err != nil {
			return engine.Request{}, fmt.Errorf("%s parameter %s: %w", callName(c), name, err)
		}
		switch p.In {
		case openapi3.ParameterInPath:
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
		case openapi3.ParameterInHeader:
			header.Set(name, v)
		case openapi3.ParameterInCookie:
			header.Add("Cookie", (&http.Cookie{Name: name, Value: v}).String())
		default:
			query.Set(name, v)
		}
	}
	if strings.Contains(path, "{") {
		return engine.Request{}, fmt.Errorf("%s: path %s has an unbound parameter", callName(c), path)
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	for _, name := range c.Fresh {
		header.Set(name, "conflictcheck-"+uuid.NewString())
	}
	for k, vs := range extra {
		for _, v := range vs {
			header.Add(k, v)
		}
	}

	var body []byte
	if c.Body != nil {
		v, err := evalBody(c.Body, ctx)
		if err != nil {
			return engine.Request{}, fmt.Errorf("%s body: %w", callName(c), err)
		}
		body, err = json.Marshal(v)
		if err != nil {
			return engine.Request{}, fmt.Errorf("%s body: encode JSON: %w", callName(c), err)
		}
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", contentType(op))
		}
	}
	return engine.Request{Method: c.Method, Path: path, Header: header, Body: body}, nil
}

func callName(c plan.Call) string {
	if c.Operation != "" {
		return c.Operation
	}
	return c.Method + " " + c.Path
}

// FindOperation is the document's operation c calls: by operationId, else method and path;
// nil when doc has none.
func FindOperation(doc *specload.Document, c plan.Call) *specload.Operation {
	if doc == nil {
		return nil
	}
	for i, op := range doc.Operations {
		if c.Operation != "" && op.ID == c.Operation {
			return &doc.Operations[i]
		}
	}
	for i, op := range doc.Operations {
		if op.Method == c.Method && op.Path == c.Path {
			return &doc.Operations[i]
		}
	}
	return nil
}

// declaredParams maps the name of each parameter op declares (path-item level, then operation
// level, which overrides) to its declaration.
func declaredParams(op *specload.Operation) map[string]*openapi3.Parameter {
	out := map[string]*openapi3.Parameter{}
	if op == nil {
		return out
	}
	var lists []openapi3.Parameters
	if op.Item != nil {
		lists = append(lists, op.Item.Parameters)
	}
	if op.Op != nil {
		lists = append(lists, op.Op.Parameters)
	}
	for _, ps := range lists {
		for _, ref := range ps {
			if ref != nil && ref.Value != nil {
				out[ref.Value.Name] = ref.Value
			}
		}
	}
	return out
}

// contentType is the JSON media type op's request body declares, application/json by default.
func contentType(op *specload.Operation) string {
	if op == nil || op.Op == nil || op.Op.RequestBody == nil || op.Op.RequestBody.Value == nil {
		return "application/json"
	}
	var types []string
	for mt := range op.Op.RequestBody.Value.Content {
		types = append(types, mt)
	}
	sort.Strings(types)
	for _, mt := range types {
		if mt == "application/json" {
			return mt
		}
	}
	for _, mt := range types {
		if strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json") {
			return mt
		}
	}
	return "application/json"
}

// evalContext is the runtime-expression view of an exchange.
func evalContext(x *engine.Exchange) runtimeexpr.Context {
	if x == nil {
		return runtimeexpr.Context{}
	}
	c := runtimeexpr.Context{
		Method:     x.Request.Method,
		Request:    runtimeexpr.Message{Header: x.Request.Header, Body: x.Request.Body},
		StatusCode: x.Status,
		Response:   runtimeexpr.Message{Header: x.Header, Body: x.Body},
	}
	if u, err := url.Parse(x.Request.URL); err == nil {
		c.URL = u
	}
	return c
}

// paramValue is raw, a value the planner already serialised, or, when raw is a runtime
// expression, its value serialised in p's style by synth.FormatParam as the planner does; a
// value bound from a header (a Location URL) into the path is that URL's last segment.
func paramValue(p *openapi3.Parameter, raw string, ctx runtimeexpr.Context) (string, error) {
	if !runtimeexpr.IsExpression(raw) {
		return raw, nil
	}
	e, err := runtimeexpr.Parse(raw)
	if err != nil {
		return "", err
	}
	v, err := e.Eval(ctx)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", fmt.Errorf("%s is null", raw)
	}
	if s, ok := v.(string); ok && p.In == openapi3.ParameterInPath && (e.Source == runtimeexpr.RespHeader || e.Source == runtimeexpr.ReqHeader) {
		v = runtimeexpr.LastSegment(s)
	}
	return synth.FormatParam(p, v)
}

// evalBody copies body, replacing every string value that is a runtime expression by its
// value (any JSON type).
func evalBody(body any, ctx runtimeexpr.Context) (any, error) {
	switch t := body.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			ev, err := evalBody(v, ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = ev
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			ev, err := evalBody(v, ctx)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = ev
		}
		return out, nil
	case string:
		if !runtimeexpr.IsExpression(t) {
			return t, nil
		}
		e, err := runtimeexpr.Parse(t)
		if err != nil {
			return nil, err
		}
		v, err := e.Eval(ctx)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && (e.Source == runtimeexpr.RespHeader) && strings.EqualFold(e.Name, "Location") {
			return runtimeexpr.LastSegment(s), nil
		}
		return v, nil
	}
	return body, nil
}
