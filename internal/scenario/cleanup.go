package scenario

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

// cleanupBound bounds a scenario's whole cleanup, which runs even after the run was
// interrupted or its deadline passed; what is not deleted by then is reported as left over.
const cleanupBound = 60 * time.Second

// track records the resource a successful create made, once: a POST on a collection, or a
// PUT-to-create with a client-chosen id (a PUT that answered 201 Created, or any 2xx to one
// sent with If-None-Match: *).
func (r *runner) track(c plan.Call, x engine.Exchange) {
	if !x.OK() {
		return
	}
	var path, template string
	switch {
	case c.Method == http.MethodPost:
		path, template = r.resourcePath(c, x)
	case c.Method == http.MethodPut && (x.Status == http.StatusCreated || x.Request.Header.Get("If-None-Match") == "*"):
		path, template = requestPath(x), c.Path
	}
	if path == "" {
		return
	}
	key := x.Target + " " + path
	if r.seen[key] {
		return
	}
	r.seen[key] = true
	r.created = append(r.created, resource{target: x.Target, path: path, delete: hasOperation(r.env.Doc, http.MethodDelete, template)})
}

// requestPath is the path x's request was sent to, relative to its target's base path.
func requestPath(x engine.Exchange) string {
	u, err := url.Parse(x.Request.URL)
	if err != nil {
		return ""
	}
	return relativePath(u.EscapedPath(), x.Target)
}

// relativePath is path with target's base path removed.
func relativePath(path, target string) string {
	if base, err := url.Parse(target); err == nil {
		if prefix := strings.TrimSuffix(base.EscapedPath(), "/"); prefix != "" {
			path = strings.TrimPrefix(path, prefix)
		}
	}
	return path
}

// resourcePath is the path of the resource a POST on a collection created (from its Location
// header, else the collection's item read filled with the body's id) and its template; empty
// when c is not a create.
func (r *runner) resourcePath(c plan.Call, x engine.Exchange) (string, string) {
	template, param := itemTemplate(r.env.Doc, c.Path)
	if template == "" {
		return "", ""
	}
	if loc := x.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Path != "" {
			return relativePath(u.EscapedPath(), x.Target), template
		}
	}
	ctx := evalContext(&x)
	p := &openapi3.Parameter{Name: param, In: openapi3.ParameterInPath}
	for _, name := range []string{param, "id"} {
		if s, err := paramValue(p, "$response.body#/"+name, ctx); err == nil && s != "" {
			return strings.ReplaceAll(template, "{"+param+"}", url.PathEscape(s)), template
		}
	}
	return "", ""
}

// itemTemplate is the path template of one item of the collection at path (a GET on path
// plus one parameter segment) and that parameter's name; empty when there is none.
func itemTemplate(doc *specload.Document, path string) (string, string) {
	if doc == nil {
		return "", ""
	}
	prefix := strings.TrimSuffix(path, "/") + "/"
	for _, op := range doc.Operations {
		if op.Method != http.MethodGet || !strings.HasPrefix(op.Path, prefix) {
			continue
		}
		rest := op.Path[len(prefix):]
		if strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}") && !strings.Contains(rest, "/") {
			return op.Path, rest[1 : len(rest)-1]
		}
	}
	return "", ""
}

// hasOperation reports whether doc has an operation with method on the path template.
func hasOperation(doc *specload.Document, method, template string) bool {
	if doc == nil {
		return false
	}
	for _, op := range doc.Operations {
		if op.Method == method && op.Path == template {
			return true
		}
	}
	return false
}

// cleanup deletes, newest first, what the scenario created, best effort and bounded; what it
// cannot delete goes to Leftovers. It runs even when ctx is done (an interrupt, the run's
// deadline), under its own bound, and its requests are never refused by the request budget.
func (r *runner) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(engine.Unbudgeted(context.WithoutCancel(ctx)), cleanupBound)
	defer cancel()
	sent := 0
	for i := len(r.created) - 1; i >= 0; i-- {
		res := r.created[i]
		u := strings.TrimSuffix(res.target, "/") + res.path
		if !res.delete || sent >= maxCleanup || ctx.Err() != nil {
			r.res.Leftovers = append(r.res.Leftovers, u)
			continue
		}
		sent++
		x, err := r.exchange(ctx, "cleanup", res.target, func() (engine.Request, error) {
			h, err := r.headers(ctx)
			return engine.Request{Method: http.MethodDelete, Path: res.path, Header: h}, err
		})
		if x != nil {
			r.res.Cleanup = append(r.res.Cleanup, *x)
		}
		if err != nil || !x.OK() && x.Status != http.StatusNotFound && x.Status != http.StatusGone {
			r.res.Leftovers = append(r.res.Leftovers, u)
		}
	}
}
