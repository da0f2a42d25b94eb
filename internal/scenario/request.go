package scenario

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/synth"
)

// FreshPlaceholder is how a request that is not sent shows a Fresh header's value, which a
// run fills with a unique value per racer.
const FreshPlaceholder = "{unique per racer}"

// BuildRequest turns a call into a request, evaluating its expressions against the bound
// exchange (nil when the call binds to nothing), placing each parameter where the document
// declares it, filling Fresh headers with unique values, and adding the extra headers.
func BuildRequest(doc *specload.Document, c plan.Call, bound *engine.Exchange, extra http.Header) (engine.Request, error) {
	return buildRequest(doc, c, bound, extra, nil)
}

// buildPlaceholders is BuildRequest for a request that is shown, not sent (a dry run): each
// runtime expression stands, unescaped, where its value would go, as placeholder renders it
// (e.g. "{$response.body#/id of createItem}"), and Fresh headers hold FreshPlaceholder.
func buildPlaceholders(doc *specload.Document, c plan.Call, extra http.Header, placeholder func(expr string) string) (engine.Request, error) {
	return buildRequest(doc, c, nil, extra, placeholder)
}

// buildRequest is BuildRequest, or, when placeholder is not nil, buildPlaceholders.
func buildRequest(doc *specload.Document, c plan.Call, bound *engine.Exchange, extra http.Header, placeholder func(string) string) (engine.Request, error) {
	op, _ := doc.Operation(c.Operation)
	declared := declaredParams(op)
	ctx := evalContext(bound)

	path := c.Path
	bare := c.Path // path without its placeholders: a brace left in it is an unbound parameter
	query := url.Values{}
	rawQuery := map[string]bool{} // query parameters holding a placeholder, left unescaped
	header := http.Header{}
	pathParams := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Params)) {
		p := declared[name]
		if p == nil {
			p = &openapi3.Parameter{Name: name, In: openapi3.ParameterInQuery}
			if strings.Contains(c.Path, "{"+name+"}") {
				p.In = openapi3.ParameterInPath
			}
		}
		raw := c.Params[name]
		shown := placeholder != nil && runtimeexpr.IsExpression(raw)
		var v string
		if shown {
			v = placeholder(raw)
		} else {
			var err error
			if v, err = paramValue(p, raw, ctx); err != nil {
				return engine.Request{}, fmt.Errorf("%s parameter %s: %w", callName(c), name, err)
			}
		}
		switch p.In {
		case openapi3.ParameterInPath:
			if shown {
				path = strings.ReplaceAll(path, "{"+name+"}", v)
				bare = strings.ReplaceAll(bare, "{"+name+"}", "")
				break
			}
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
			bare = strings.ReplaceAll(bare, "{"+name+"}", url.PathEscape(v))
			pathParams[name] = v
		case openapi3.ParameterInHeader:
			header.Set(name, v)
		case openapi3.ParameterInCookie:
			header.Add("Cookie", (&http.Cookie{Name: name, Value: v}).String())
		default:
			query.Set(name, v)
			rawQuery[name] = shown
		}
	}
	if strings.Contains(bare, "{") {
		return engine.Request{}, fmt.Errorf("%s: path %s has an unbound parameter", callName(c), path)
	}
	if len(query) > 0 {
		path += "?" + encodeQuery(query, rawQuery)
	}
	for _, name := range c.Fresh {
		if placeholder != nil {
			header.Set(name, FreshPlaceholder)
			continue
		}
		header.Set(name, "conflictcheck-"+uuid.NewString())
	}
	for k, vs := range extra {
		for _, v := range vs {
			header.Add(k, v)
		}
	}

	var body []byte
	if c.Body != nil {
		v, err := evalBody(c.Body, ctx, placeholder)
		if err != nil {
			return engine.Request{}, fmt.Errorf("%s body: %w", callName(c), err)
		}
		body, err = json.Marshal(v)
		if err != nil {
			return engine.Request{}, fmt.Errorf("%s body: encode JSON: %w", callName(c), err)
		}
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", cmp.Or(c.ContentType, "application/json"))
		}
	}
	req := engine.Request{Method: c.Method, Path: path, Header: header, Body: body}
	if len(pathParams) > 0 {
		req.PathParams = pathParams
	}
	return req, nil
}

// encodeQuery is query.Encode, except that the values of the raw parameters (placeholders)
// are left unescaped so that they read as written.
func encodeQuery(query url.Values, raw map[string]bool) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(query)) {
		for _, v := range query[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			if raw[k] {
				b.WriteString(v)
			} else {
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}

func callName(c plan.Call) string {
	if c.Operation != "" {
		return c.Operation
	}
	return c.Method + " " + c.Path
}

// declaredParams maps the name of each parameter op takes (its own overriding its path
// item's) to its declaration.
func declaredParams(op specload.Operation) map[string]*openapi3.Parameter {
	out := map[string]*openapi3.Parameter{}
	for _, prm := range op.Parameters() {
		if _, ok := out[prm.Name]; !ok {
			out[prm.Name] = prm
		}
	}
	return out
}

// evalContext is the runtime-expression view of an exchange.
func evalContext(x *engine.Exchange) runtimeexpr.Context {
	if x == nil {
		return runtimeexpr.Context{}
	}
	c := runtimeexpr.Context{
		Method:     x.Request.Method,
		Request:    runtimeexpr.Message{Header: x.Request.Header, Body: x.Request.Body},
		PathParams: x.Request.PathParams,
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
// value (any JSON type), or, when placeholder is not nil, by the placeholder it renders.
func evalBody(body any, ctx runtimeexpr.Context, placeholder func(string) string) (any, error) {
	switch t := body.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			ev, err := evalBody(v, ctx, placeholder)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = ev
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			ev, err := evalBody(v, ctx, placeholder)
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
		if placeholder != nil {
			return placeholder(t), nil
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
