package preflight

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// bound is a generous upper bound on one Check with a 1 s timeout: a guard against hangs, not a
// measurement.
const bound = 15 * time.Second

// reference is the reference server's spec.
func reference(t *testing.T) *specload.Document {
	t.Helper()
	doc, err := specload.LoadBytes(t.Context(), "reference.yaml", openapi.Reference, specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// spec loads an OpenAPI 3.0 document whose paths are the YAML paths (indented by 2).
func spec(t *testing.T, servers, paths string) *specload.Document {
	t.Helper()
	src := "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n" + servers + "paths:\n" + paths
	doc, err := specload.LoadBytes(t.Context(), "test.yaml", []byte(src), specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// jsonList is a spec whose one GET, /items, declares a JSON 200.
const jsonList = `  /items:
    get:
      operationId: listItems
      responses:
        '200':
          description: the items
          content:
            application/json:
              schema: {type: array}
`

// check runs Check with a fresh engine of opts (timeout 1 s unless set) and fails the test
// when it takes longer than bound or returns a message of more than one line.
func check(t *testing.T, opts engine.Options, doc *specload.Document, target string, header http.Header) error {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	began := time.Now()
	err := Check(t.Context(), engine.New(opts), doc, target, header)
	if d := time.Since(began); d > bound {
		t.Errorf("Check took %v; want it bounded by the timeouts (under %v)", d, bound)
	}
	if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("message spans lines: %q", err)
	}
	return err
}

// wantPhrases fails unless err holds every phrase.
func wantPhrases(t *testing.T, err error, phrases ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Check = nil; want an error with %q", phrases)
	}
	for _, p := range phrases {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Check = %q\nwant it to hold %q", err, p)
		}
	}
}

// TestCheckAcceptsTheAPI: the reference server passes, and so does any answer that shows an
// API is there: a 404, a 400, a 5xx blip that the next try does not repeat.
func TestCheckAcceptsTheAPI(t *testing.T) {
	ref := reftest.Start(t, fault.None, 0)
	var blips atomic.Int64
	blip := hostile.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet { // auto's HTTP/2 probe
			http.NotFound(w, r)
			return
		}
		if blips.Add(1)%2 == 1 { // each strategy's first try
			hostile.Status(http.StatusBadGateway, nil).ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[]}`)
	}))
	cases := []struct {
		name   string
		target string
		doc    *specload.Document
	}{
		{"reference server", ref.URL, reference(t)},
		{"404 to everything", hostile.Serve(t, hostile.Status(http.StatusNotFound, nil)).URL, reference(t)},
		{"400 to everything", hostile.Serve(t, hostile.Status(http.StatusBadRequest, nil)).URL, reference(t)},
		{"one 502 then the API", blip.URL, reference(t)},
		{"no GET: an HTML base path is reachable", hostile.Serve(t, hostile.HTML).URL, spec(t, "", `  /items:
    post:
      responses: {'201': {description: created}}
`)},
	}
	for _, st := range []engine.Strategy{engine.Auto, engine.Barrier} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", st, c.name), func(t *testing.T) {
				if err := check(t, engine.Options{Strategy: st}, c.doc, c.target, nil); err != nil {
					t.Errorf("Check = %v; want nil", err)
				}
			})
		}
	}
	if got := blips.Load(); got != 4 {
		t.Errorf("the blipping server got %d requests; want 2 per strategy", got)
	}
}

// TestCheckHostileTargets: each hostile target is one line naming the target and what to do,
// within the timeouts, whatever the strategy.
func TestCheckHostileTargets(t *testing.T) {
	doc := reference(t)
	var storm atomic.Int64
	var sent atomic.Int64
	huge := hostile.Serve(t, hostile.Huge(50<<20, &sent))
	untrusted := hostile.TLS(t, hostile.Status(http.StatusNotFound, nil))
	expired, expiredCA := hostile.ExpiredTLS(t, hostile.Status(http.StatusNotFound, nil))
	dns := hostile.NXDOMAIN(t)

	cases := []struct {
		name    string
		target  string
		opts    engine.Options
		doc     *specload.Document
		header  http.Header
		phrases []string
	}{
		{name: "connection refused", target: hostile.Refused(t),
			phrases: []string{": connection refused: is the API running there?"}},
		{name: "host does not resolve", target: "http://nope.invalid:8080", opts: engine.Options{Resolver: hostile.Resolver(dns)},
			phrases: []string{"target http://nope.invalid:8080: host nope.invalid does not resolve"}},
		{name: "untrusted certificate", target: untrusted.URL,
			phrases: []string{"its TLS certificate is not trusted (x509: ", "pass --ca FILE with the CA that signed it, or --insecure to skip verification"}},
		{name: "certificate for another name", target: untrusted.URL,
			opts:    engine.Options{TLS: &tls.Config{RootCAs: hostile.Trust(untrusted), ServerName: "wrong.example", MinVersion: tls.VersionTLS12}},
			phrases: []string{"its TLS certificate is for another host name (x509: ", "wrong.example", "--insecure"}},
		{name: "expired certificate", target: expired.URL,
			opts:    engine.Options{TLS: &tls.Config{RootCAs: expiredCA, MinVersion: tls.VersionTLS12}},
			phrases: []string{"its TLS certificate has expired or is not valid yet (x509: ", "--insecure"}},
		{name: "https to a cleartext server", target: strings.Replace(hostile.Serve(t, hostile.HTML).URL, "http:", "https:", 1),
			phrases: []string{"it does not speak TLS", "is it an http:// URL?"}},
		{name: "accepts and never answers", target: hostile.Silent(t),
			phrases: []string{": no answer within 1s (--timeout) to GET /items?limit=1"}},
		{name: "resets mid-response", target: hostile.Reset(t),
			phrases: []string{": the connection was reset before a complete response to GET /items?limit=1"}},
		{name: "not HTTP", target: hostile.NotHTTP(t),
			phrases: []string{"answers GET /items?limit=1 with a malformed response", "is it an HTTP server?"}},
		{name: "HTML 200 to everything", target: hostile.Serve(t, hostile.HTML).URL,
			phrases: []string{"answers GET /items?limit=1 with 200 OK text/html but the spec declares application/json: is --target the API's base URL (with its path prefix)?"}},
		{name: "HTML with a path prefix in the spec", target: hostile.Serve(t, hostile.HTML).URL,
			doc:     spec(t, "servers: [{url: 'https://api.example.com/v1'}]\n", jsonList),
			phrases: []string{"answers GET /items with 200 OK text/html", "(with its path prefix, /v1 in the spec's servers)"}},
		{name: "5xx storm", target: hostile.Serve(t, gets(&storm, hostile.Status(http.StatusServiceUnavailable, nil))).URL,
			phrases: []string{"answers GET /items?limit=1 with 503 Service Unavailable, 3 times in a row: the API is failing"}},
		{name: "gigantic body", target: huge.URL,
			phrases: []string{"answers GET /items?limit=1 with 200 OK and a body over 1 MiB"}},
		{name: "a smaller body cap", target: huge.URL, opts: engine.Options{MaxBody: 64 << 10},
			phrases: []string{"and a body over 64 KiB"}},
		{name: "JSON declared, text sent", target: hostile.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "OK")
		})).URL,
			phrases: []string{"answers GET /items?limit=1 with 200 OK application/json whose body is not JSON (invalid character", "but the spec declares application/json"}},
		{name: "401", target: hostile.Serve(t, hostile.Status(http.StatusUnauthorized, nil)).URL,
			phrases: []string{"answers GET /items?limit=1 with 401 Unauthorized: pass credentials with --header, --header-file or --auth-command"}},
		{name: "403", target: hostile.Serve(t, hostile.Status(http.StatusForbidden, nil)).URL, header: http.Header{"Authorization": {"Bearer s3cret"}},
			phrases: []string{"with 403 Forbidden: pass credentials"}},
		{name: "redirect", target: hostile.Serve(t, http.RedirectHandler("/login", http.StatusFound)).URL,
			phrases: []string{"answers GET /items?limit=1 with 302 Found to /login: conflictcheck follows no redirect"}},
		{name: "no GET, connection refused", target: hostile.Refused(t),
			doc:     spec(t, "", "  /items:\n    post:\n      responses: {'201': {description: created}}\n"),
			phrases: []string{": connection refused"}},
	}
	for _, st := range []engine.Strategy{engine.Auto, engine.Barrier} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", st, c.name), func(t *testing.T) {
				t.Parallel()
				c.opts.Strategy = st
				if c.doc == nil {
					c.doc = doc
				}
				err := check(t, c.opts, c.doc, c.target, c.header)
				wantPhrases(t, err, append([]string{"target " + c.target}, c.phrases...)...)
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("message quotes a header value: %q", err)
				}
			})
		}
	}
	t.Cleanup(func() {
		if got := storm.Load(); got != 2*tries {
			t.Errorf("the 5xx storm got %d requests; want %d per strategy", got, tries)
		}
		huge.Close() // waits for its handlers: every byte they will write is counted
		if got := sent.Load(); got > 25<<20 {
			t.Errorf("the gigantic body's server wrote %d bytes; want the client to stop reading early", got)
		}
	})
}

// gets is h, counting its GET requests in n (the auto strategy's HTTP/2 probe is no GET).
func gets(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// TestCheckRequest: the read is the first GET needing nothing, else one with its required
// parameters filled with a placeholder; a page size of 1 is asked where the list takes one; the
// caller's headers are sent.
func TestCheckRequest(t *testing.T) {
	placeholder := `conflictcheck-preflight-[0-9a-f]{8}`
	cases := []struct {
		name  string
		paths string
		want  string // regexp of the request URI
	}{
		{"reference spec: the list, one item", "", `^/items\?limit=1$`},
		{"a GET without parameters wins over an earlier one with", `  /things/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: ok}}
  /things:
    get:
      responses: {'200': {description: ok}}
`, `^/things$`},
		{"path parameters filled", `  /things/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      responses: {'200': {description: ok}}
`, `^/things/` + placeholder + `$`},
		{"path parameters win over a required query", `  /search:
    get:
      parameters: [{name: q, in: query, required: true, schema: {type: string}}]
      responses: {'200': {description: ok}}
  /things/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: ok}}
`, `^/things/` + placeholder + `$`},
		{"a path parameter nobody declares filled too", `  /things/{id}:
    get:
      responses: {'200': {description: ok}}
`, `^/things/` + placeholder + `$`},
		{"a required query filled, optional ones left out", `  /search:
    get:
      parameters:
        - {name: q, in: query, required: true, schema: {type: string}}
        - {name: sort, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
`, `^/search\?q=` + placeholder + `$`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := reference(t)
			if c.paths != "" {
				doc = spec(t, "", c.paths)
			}
			var (
				mu   sync.Mutex
				uris []string
				auth []string
			)
			srv := hostile.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				uris, auth = append(uris, r.RequestURI), append(auth, r.Header.Get("Authorization"))
				mu.Unlock()
				http.NotFound(w, r)
			}))
			if err := check(t, engine.Options{Strategy: engine.LastByte}, doc, srv.URL, http.Header{"Authorization": {"Bearer t"}}); err != nil {
				t.Fatalf("Check = %v; want nil (a 404 shows the API is there)", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(uris) != 1 || !regexp.MustCompile(c.want).MatchString(uris[0]) {
				t.Errorf("requests %q; want one matching %s", uris, c.want)
			}
			if len(auth) != 1 || auth[0] != "Bearer t" {
				t.Errorf("Authorization sent %q; want the caller's", auth)
			}
		})
	}
}

// TestCheckStopsWithTheContext: a cancelled run says so instead of blaming the target.
func TestCheckStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	target := hostile.Silent(t)
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	err := Check(ctx, engine.New(engine.Options{Timeout: time.Minute}), reference(t), target, nil)
	wantPhrases(t, err, "target "+target+": preflight stopped: context canceled")
	if d := time.Since(began); d > bound {
		t.Errorf("Check took %v after the context ended", d)
	}
}
