// Package preflight proves, before any scenario runs, that a target serves the API its document
// describes: one read of the API sent through the firing engine and judged, so that a target
// that is down, misaddressed, untrusted, failing or not the API is one clear line (exit 2)
// rather than every check of every scenario failing.
package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

// tries is how many times the read is sent while the target answers it with a 5xx, so that one
// blip does not fail a run.
const tries = 3

// retryPause is the pause before the second try; the third waits twice as long.
var retryPause = 250 * time.Millisecond

// maxDetail bounds the part of a message quoted from a transport error, which may quote the
// target's own bytes.
const maxDetail = 200

// pageParams are the names of optional query parameters that bound a list's length: the read
// asks for one item so that a big collection does not look like a gigantic body.
var pageParams = []string{"limit", "per_page", "perpage", "page_size", "pagesize", "max_results", "maxresults", "$top", "top"}

// Check proves target serves the API of doc before any scenario runs, returning one clear line
// (no newline) for exit 2 when it does not. It sends, through eng (its TLS, timeout and body
// cap apply) with header added, one GET of doc: one without required parameters when there is
// one (a collection's list), else one with its required parameters filled with a value no
// resource has (a 404 then proves the API is there). A transport failure, a 5xx on each of
// three tries, 401 or 403, a redirect, a body over the engine's cap, an HTML page where the
// operation declares none, or a body that is not the JSON it declares fails the check; any
// other answer passes. A doc without a GET only has its target's base path reached.
func Check(ctx context.Context, eng *engine.Engine, doc *specload.Document, target string, header http.Header) error {
	p := pick(doc, header)
	for try := 1; ; try++ {
		out, err := eng.Fire(ctx, []string{target}, []engine.Request{p.req})
		if err != nil {
			return err
		}
		x := &out.Exchanges[0]
		if x.Err != nil {
			return transportError(ctx, eng, target, p, x.Err)
		}
		if p.op == nil {
			return nil
		}
		if x.Status < 500 || try == tries {
			return p.judge(eng, target, x, try)
		}
		t := time.NewTimer(time.Duration(try) * retryPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("target %s: preflight stopped: %w", target, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// probe is the read Check sends: the request, how messages name it, and its operation (nil
// when doc has no GET and the base path is read instead).
type probe struct {
	req    engine.Request
	name   string
	op     *specload.Operation
	prefix string // the path of doc's first server URL, when it has one: a hint for a wrong --target
}

// pick chooses the read to send: the first GET without required parameters, else the first
// whose only required parameters are in its path, else the first GET at all, its required
// parameters filled with a unique placeholder.
func pick(doc *specload.Document, header http.Header) probe {
	p := probe{prefix: serverPrefix(doc)}
	var chosen *specload.Operation
	best := 3
	for i := range doc.Operations {
		op := &doc.Operations[i]
		if op.Method != http.MethodGet {
			continue
		}
		if r := rank(*op); r < best {
			chosen, best = op, r
		}
	}
	if chosen == nil {
		p.req = engine.Request{Method: http.MethodGet, Path: "/", Header: header.Clone()}
		p.name = "GET /"
		return p
	}
	p.op = chosen
	p.req = request(*chosen, header)
	p.name = "GET " + p.req.Path
	return p
}

// rank orders GETs by what they need: 0 nothing, 1 path parameters only, 2 more.
func rank(op specload.Operation) int {
	r := 0
	if strings.Contains(op.Path, "{") {
		r = 1
	}
	for _, prm := range op.Parameters() {
		switch {
		case prm.In == openapi3.ParameterInPath:
			r = max(r, 1)
		case prm.Required:
			r = 2
		}
	}
	return r
}

// request is the GET of op with its path and required parameters filled with a placeholder
// no resource has, and a page size of 1 where op takes one.
func request(op specload.Operation, header http.Header) engine.Request {
	placeholder := "conflictcheck-preflight-" + randomHex()
	path := op.Path
	query := url.Values{}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for _, prm := range op.Parameters() {
		switch {
		case prm.In == openapi3.ParameterInPath:
			path = strings.ReplaceAll(path, "{"+prm.Name+"}", url.PathEscape(placeholder))
		case prm.In == openapi3.ParameterInQuery && !prm.Required && slices.Contains(pageParams, strings.ToLower(prm.Name)):
			query.Set(prm.Name, "1")
		case !prm.Required:
			// left out: the API's default applies
		case prm.In == openapi3.ParameterInQuery:
			query.Set(prm.Name, placeholder)
		case prm.In == openapi3.ParameterInHeader && h.Get(prm.Name) == "":
			h.Set(prm.Name, placeholder)
		}
	}
	path = undeclared.ReplaceAllLiteralString(path, url.PathEscape(placeholder))
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return engine.Request{Method: http.MethodGet, Path: path, Header: h}
}

// undeclared matches a path template's parameter that no parameter declares.
var undeclared = regexp.MustCompile(`\{[^/{}]*\}`)

// randomHex is 8 random hex digits.
func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// serverPrefix is the path of doc's first server URL ("/v1"), "" when it has none.
func serverPrefix(doc *specload.Document) string {
	if doc.T == nil || len(doc.T.Servers) == 0 || doc.T.Servers[0] == nil {
		return ""
	}
	u, err := url.Parse(doc.T.Servers[0].URL)
	if err != nil || strings.Contains(u.Path, "{") {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// transportError is the line for a read that got no complete response.
func transportError(ctx context.Context, eng *engine.Engine, target string, p probe, te *engine.TransportError) error {
	if ctx.Err() != nil {
		return fmt.Errorf("target %s: preflight stopped: %w", target, context.Cause(ctx))
	}
	detail := oneLine(te.Message)
	switch te.Kind {
	case engine.ErrDial:
		switch te.Cause {
		case engine.CauseRefused:
			return fmt.Errorf("target %s: connection refused: is the API running there?", target)
		case engine.CauseNoSuchHost:
			return fmt.Errorf("target %s: host %s does not resolve", target, host(target))
		case engine.CauseLookup:
			return fmt.Errorf("target %s: looking up host %s failed (%s)", target, host(target), detail)
		}
		return fmt.Errorf("target %s: cannot connect (%s)", target, detail)
	case engine.ErrTLS:
		if i := strings.Index(detail, "x509: "); i >= 0 {
			detail = detail[i:]
		}
		switch te.Cause {
		case engine.CauseUntrusted:
			return fmt.Errorf("target %s: its TLS certificate is not trusted (%s): pass --ca FILE with the CA that signed it, or --insecure to skip verification", target, detail)
		case engine.CauseHostname:
			return fmt.Errorf("target %s: its TLS certificate is for another host name (%s): target a name it is valid for, or pass --insecure to skip verification", target, detail)
		case engine.CauseExpired:
			return fmt.Errorf("target %s: its TLS certificate has expired or is not valid yet (%s): renew it, or pass --insecure to skip verification", target, detail)
		case engine.CauseNotTLS:
			return fmt.Errorf("target %s: it does not speak TLS (%s): is it an http:// URL?", target, detail)
		}
		return fmt.Errorf("target %s: the TLS handshake failed (%s)", target, detail)
	case engine.ErrTimeout:
		return fmt.Errorf("target %s: no answer within %v (--timeout) to %s", target, eng.Timeout(), p.name)
	case engine.ErrReset:
		return fmt.Errorf("target %s: the connection was reset before a complete response to %s (%s)", target, p.name, detail)
	}
	return fmt.Errorf("target %s answers %s with a malformed response (%s): is it an HTTP server?", target, p.name, strings.TrimPrefix(detail, "malformed response: "))
}

// judge is Check's verdict on a complete response to the read, the last of sent.
func (p probe) judge(eng *engine.Engine, target string, x *engine.Exchange, sent int) error {
	status := statusText(x.Status)
	switch {
	case x.Status >= 500:
		return fmt.Errorf("target %s answers %s with %s, %d times in a row: the API is failing, so nothing can be checked", target, p.name, status, sent)
	case x.Status == http.StatusUnauthorized, x.Status == http.StatusForbidden:
		return fmt.Errorf("target %s answers %s with %s: pass credentials with --header, --header-file or --auth-command", target, p.name, status)
	case x.Status >= 300 && x.Status < 400 && x.Status != http.StatusNotModified:
		to := ""
		if loc := x.Header.Get("Location"); loc != "" {
			to = " to " + oneLine(loc)
		}
		return fmt.Errorf("target %s answers %s with %s%s: conflictcheck follows no redirect; %s", target, p.name, status, to, p.baseHint())
	case x.Truncated:
		return fmt.Errorf("target %s answers %s with %s and a body over %s, more than conflictcheck reads of a response: %s", target, p.name, status, size(eng.MaxBody()), p.baseHint())
	case x.Status < 200 || x.Status >= 300 || x.Status == http.StatusNoContent:
		return nil
	}
	declared := declaredTypes(p.op, x.Status)
	if len(declared) == 0 {
		return nil
	}
	ct := x.Header.Get("Content-Type")
	got := oneLine(mediaType(ct))
	if isHTML(got) && !slices.ContainsFunc(declared, func(d string) bool { return matches(d, got) }) {
		return fmt.Errorf("target %s answers %s with %s %s but the spec declares %s: %s", target, p.name, status, got, strings.Join(declared, " or "), p.baseHint())
	}
	if !slices.ContainsFunc(declared, func(d string) bool { return !isJSON(d) }) && len(strings.TrimSpace(string(x.Body))) > 0 {
		var v any
		if err := json.Unmarshal(x.Body, &v); err != nil {
			if got == "" {
				got = "no Content-Type"
			}
			return fmt.Errorf("target %s answers %s with %s %s whose body is not JSON (%s) but the spec declares %s: %s", target, p.name, status, got, oneLine(err.Error()), strings.Join(declared, " or "), p.baseHint())
		}
	}
	return nil
}

// baseHint asks whether --target is the API's base URL, naming the spec's path prefix when it
// has one.
func (p probe) baseHint() string {
	if p.prefix != "" {
		return fmt.Sprintf("is --target the API's base URL (with its path prefix, %s in the spec's servers)?", p.prefix)
	}
	return "is --target the API's base URL (with its path prefix)?"
}

// declaredTypes are the media types op declares for a response with status: those of the
// response for that status (or its range), else of its default response, else of every 2xx
// response; sorted, without parameters.
func declaredTypes(op *specload.Operation, status int) []string {
	if op == nil || op.Op == nil || op.Op.Responses == nil {
		return nil
	}
	rs := op.Op.Responses
	refs := []*openapi3.ResponseRef{rs.Status(status)}
	if !hasContent(refs[0]) {
		refs = []*openapi3.ResponseRef{rs.Default()}
	}
	if !hasContent(refs[0]) {
		refs = nil
		for code, r := range rs.Map() {
			if strings.HasPrefix(code, "2") {
				refs = append(refs, r)
			}
		}
	}
	var out []string
	for _, r := range refs {
		if !hasContent(r) {
			continue
		}
		for t := range r.Value.Content {
			if mt := mediaType(t); mt != "" && !slices.Contains(out, mt) {
				out = append(out, mt)
			}
		}
	}
	slices.Sort(out)
	return out
}

func hasContent(r *openapi3.ResponseRef) bool {
	return r != nil && r.Value != nil && len(r.Value.Content) > 0
}

// mediaType is the type/subtype of a Content-Type, lower case, without parameters.
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// matches reports whether the declared media range d covers media type t.
func matches(d, t string) bool {
	if d == t || d == "*/*" {
		return true
	}
	main, ok := strings.CutSuffix(d, "/*")
	return ok && strings.HasPrefix(t, main+"/")
}

func isHTML(t string) bool { return t == "text/html" || t == "application/xhtml+xml" }

// isJSON reports whether media type t is JSON: application/json, text/json, or a +json suffix.
func isJSON(t string) bool {
	_, sub, _ := strings.Cut(t, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// statusText is "503 Service Unavailable", or the bare code when it has no name.
func statusText(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// size is n bytes in the largest binary unit that divides it.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// host is target's host name, or target itself when it does not parse.
func host(target string) string {
	if u, err := url.Parse(target); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return target
}

// oneLine is s on one line, cut to maxDetail bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxDetail {
		return s
	}
	n := maxDetail
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
