package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/conflictcheck/conflictcheck/internal/respcheck"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

// client talks to one fake and checks every response against the fake's own document.
type client struct {
	t      *testing.T
	srv    *Server
	router routers.Router
}

// start serves opts and loads its document, which must validate.
func start(t *testing.T, opts Options) *client {
	t.Helper()
	srv := Start(t, opts)
	doc, err := openapi3.NewLoader().LoadFromData([]byte(srv.Spec()))
	if err != nil {
		t.Fatalf("load the spec: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate the spec: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route the spec: %v", err)
	}
	return &client{t: t, srv: srv, router: router}
}

// noRedirect is a client that shows a 303 instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
	close  bool
}

// json is the body decoded as a JSON object.
func (r response) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m
}

// do sends one request; header alternates names and values. The response must match the
// document (status declared, headers, content type, schema, problem status).
func (c *client) do(method, path, body string, header ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	route, params, err := c.router.FindRoute(req)
	switch {
	case err != nil && resp.StatusCode != http.StatusMethodNotAllowed:
		c.t.Fatalf("%s %s: not in the document: %v", method, path, err)
	case err != nil:
		// A method the document does not describe: nothing to check it against.
	default:
		if err := respcheck.Check(req.Context(), route, params, req, resp.StatusCode, resp.Header, b, respcheck.Options{}); err != nil {
			c.t.Errorf("%s %s → %d breaks the document: %v\nbody: %s", method, path, resp.StatusCode, err, b)
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}
}

// want fails unless r has status.
func (c *client) want(r response, status int) response {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func TestSpecLoads(t *testing.T) {
	for _, o := range []Options{
		{}, {IDInLocationOnly: true, Token: "t"}, {CreateStatus: 200}, {PUTCreate: true}, {PUTCreate: true, XConflict: true},
		{VersionField: VersionRev}, {VersionField: VersionRevision, PUTCreate: true}, {VersionField: VersionResourceVersion, XConflict: true},
		{VersionField: VersionLockVersion}, {WeakETag: true}, {RejectBody: RejectText}, {RejectBody: RejectEmpty, DuplicateSeeOther: true, XConflict: true},
	} {
		if _, err := specload.LoadBytes(t.Context(), "fake.yaml", []byte(Spec(o)), specload.Options{}); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Options{
		{CreateStatus: 202}, {VersionField: "/v"}, {RejectBody: "html"}, {Fault: "slow"},
		{WeakETag: true, VersionField: VersionRev}, {PUTCreate: true, DuplicateSeeOther: true}, {PUTCreate: true, IDInLocationOnly: true},
	} {
		if _, err := New(o); err == nil || !strings.HasPrefix(err.Error(), "fakeapi: ") {
			t.Errorf("%+v: err %v, want a fakeapi error", o, err)
		}
	}
}

// TestETag: the default API creates with 201, an id and an ETag, refuses a duplicate name with
// a problem, requires If-Match (428), refuses a stale one (412) and accepts the current one.
func TestETag(t *testing.T) {
	c := start(t, Options{})
	r := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201)
	id, _ := r.json()["id"].(string)
	if id == "" || r.header.Get("Location") != "/widgets/"+id || r.header.Get("ETag") != `"1"` {
		t.Fatalf("create: id %q, Location %q, ETag %q", id, r.header.Get("Location"), r.header.Get("ETag"))
	}
	dup := c.want(c.do("POST", "/widgets", `{"name":"a","color":"blue"}`), 409)
	if p := dup.json(); p["status"] != 409.0 || dup.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("duplicate: %s %s", dup.header.Get("Content-Type"), dup.body)
	}
	c.want(c.do("POST", "/widgets", `{"name":"b","color":"mauve"}`), 422)
	c.want(c.do("POST", "/widgets", `{"name":`), 400)
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"green"}`), 428)
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"green"}`, "If-Match", `"7"`), 412)
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"green"}`, "If-Match", `W/"1"`), 412)
	up := c.want(c.do("PUT", "/widgets/"+id, `{"color":"green"}`, "If-Match", `"1"`), 200)
	if up.header.Get("ETag") != `"2"` || up.json()["color"] != "green" {
		t.Errorf("update: ETag %q, body %s", up.header.Get("ETag"), up.body)
	}
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `"1"`), 412)
	got := c.want(c.do("GET", "/widgets/"+id, ""), 200)
	if got.header.Get("ETag") != `"2"` || got.json()["color"] != "green" || got.json()["name"] != "a" {
		t.Errorf("read: ETag %q, body %s", got.header.Get("ETag"), got.body)
	}
	c.want(c.do("PUT", "/widgets/nope", `{"color":"blue"}`, "If-Match", `"1"`), 404)
	c.want(c.do("POST", "/widgets", `{"name":"b","color":"blue"}`), 201)
	list := c.want(c.do("GET", "/widgets?name=a", ""), 200)
	if items, _ := list.json()["items"].([]any); len(items) != 1 {
		t.Errorf("list by name: %s", list.body)
	}
	if n := c.srv.Live(); n != 2 {
		t.Errorf("live %d, want 2", n)
	}
	c.want(c.do("DELETE", "/widgets/"+id, ""), 204)
	c.want(c.do("DELETE", "/widgets/"+id, ""), 404)
	c.want(c.do("GET", "/widgets/"+id, ""), 404)
	if n := c.srv.Live(); n != 1 {
		t.Errorf("live %d after the delete, want 1", n)
	}
}

// TestCreateConventions: ids only in Location, 200 on create, 303 for a duplicate.
func TestCreateConventions(t *testing.T) {
	t.Run("id in Location only", func(t *testing.T) {
		c := start(t, Options{IDInLocationOnly: true})
		r := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201)
		loc := r.header.Get("Location")
		if len(r.body) != 0 || !strings.HasPrefix(loc, "/widgets/") {
			t.Fatalf("create: body %q, Location %q", r.body, loc)
		}
		if got := c.want(c.do("GET", loc, ""), 200); got.json()["name"] != "a" {
			t.Errorf("read: %s", got.body)
		}
	})
	t.Run("200 on create", func(t *testing.T) {
		c := start(t, Options{CreateStatus: 200})
		c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 200)
	})
	t.Run("303 for a duplicate", func(t *testing.T) {
		c := start(t, Options{DuplicateSeeOther: true})
		r := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201)
		see := c.want(c.do("POST", "/widgets", `{"name":"a","color":"blue"}`), 303)
		if see.header.Get("Location") != r.header.Get("Location") || len(see.body) != 0 {
			t.Errorf("303: Location %q, want %q; body %q", see.header.Get("Location"), r.header.Get("Location"), see.body)
		}
		if n := c.srv.Live(); n != 1 {
			t.Errorf("live %d, want 1", n)
		}
	})
}

// TestPUTCreate: If-None-Match: * creates once, then 412; If-Match updates; POST is gone.
func TestPUTCreate(t *testing.T) {
	c := start(t, Options{PUTCreate: true})
	r := c.want(c.do("PUT", "/widgets/w-1", `{"name":"a","color":"red"}`, "If-None-Match", "*"), 201)
	if r.header.Get("Location") != "/widgets/w-1" || r.header.Get("ETag") != `"1"` || r.json()["id"] != "w-1" {
		t.Fatalf("create: Location %q, ETag %q, body %s", r.header.Get("Location"), r.header.Get("ETag"), r.body)
	}
	c.want(c.do("PUT", "/widgets/w-1", `{"name":"a","color":"red"}`, "If-None-Match", "*"), 412)
	c.want(c.do("PUT", "/widgets/w-1", `{"name":"a","color":"blue"}`), 428)
	c.want(c.do("PUT", "/widgets/w-2", `{"name":"b","color":"blue"}`, "If-Match", `"1"`), 412)
	c.want(c.do("PUT", "/widgets/w-1", `{"name":"a","color":"blue"}`, "If-Match", `"1"`), 200)
	c.want(c.do("PUT", "/widgets/w-3", `{"name":"a","color":"blue"}`), 201)
	c.want(c.do("PUT", "/widgets/bad.id", `{"name":"a","color":"blue"}`), 422)
	if r := c.do("POST", "/widgets", `{"name":"c","color":"red"}`); r.status != 405 {
		t.Errorf("POST: %d, want 405", r.status)
	}
	if n := c.srv.Live(); n != 2 {
		t.Errorf("live %d, want 2", n)
	}
}

// TestVersionFields: each body version convention, its value's shape, and 409 for a stale or
// missing version.
func TestVersionFields(t *testing.T) {
	cases := []struct {
		field       string
		create      string
		update      func(v any) string
		first       any
		advanced    func(before, after any) bool
		readColor   func(m map[string]any) any
		readVersion func(m map[string]any) any
	}{
		{VersionRev, `{"name":"a","color":"red"}`, func(v any) string { return fmt.Sprintf(`{"color":"blue","_rev":%q}`, v) }, nil,
			func(b, a any) bool { return strings.HasPrefix(a.(string), "2-") && strings.HasPrefix(b.(string), "1-") },
			func(m map[string]any) any { return m["color"] }, func(m map[string]any) any { return m["_rev"] }},
		{VersionRevision, `{"name":"a","color":"red"}`, func(v any) string { return fmt.Sprintf(`{"color":"blue","revision":%v}`, v) }, 1.0,
			func(b, a any) bool { return a == 2.0 },
			func(m map[string]any) any { return m["color"] }, func(m map[string]any) any { return m["revision"] }},
		{VersionLockVersion, `{"name":"a","color":"red"}`, func(v any) string { return fmt.Sprintf(`{"color":"blue","lock_version":%v}`, v) }, 0.0,
			func(b, a any) bool { return a == 1.0 },
			func(m map[string]any) any { return m["color"] }, func(m map[string]any) any { return m["lock_version"] }},
		{VersionResourceVersion, `{"metadata":{"name":"a"},"spec":{"color":"red"}}`,
			func(v any) string {
				return fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"color":"blue"}}`, v)
			}, nil,
			func(b, a any) bool { return a.(string) != b.(string) },
			func(m map[string]any) any { return m["spec"].(map[string]any)["color"] },
			func(m map[string]any) any { return m["metadata"].(map[string]any)["resourceVersion"] }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := start(t, Options{VersionField: tc.field})
			r := c.want(c.do("POST", "/widgets", tc.create), 201)
			if r.header.Get("ETag") != "" {
				t.Errorf("a body version API sent ETag %q", r.header.Get("ETag"))
			}
			id := r.json()["id"].(string)
			v1 := tc.readVersion(r.json())
			if tc.first != nil && v1 != tc.first {
				t.Errorf("first version %v, want %v", v1, tc.first)
			}
			c.want(c.do("POST", "/widgets", tc.create), 409)
			c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue","spec":{"color":"blue"}}`), 409)
			up := c.want(c.do("PUT", "/widgets/"+id, tc.update(v1)), 200)
			v2 := tc.readVersion(up.json())
			if !tc.advanced(v1, v2) || tc.readColor(up.json()) != "blue" {
				t.Errorf("update: version %v → %v, body %s", v1, v2, up.body)
			}
			stale := c.want(c.do("PUT", "/widgets/"+id, tc.update(v1)), 409)
			if !strings.Contains(stale.json()["detail"].(string), "stale") {
				t.Errorf("stale: %s", stale.body)
			}
			if got := c.want(c.do("GET", "/widgets/"+id, ""), 200); tc.readVersion(got.json()) != v2 {
				t.Errorf("read: %s, want version %v", got.body, v2)
			}
		})
	}
}

// TestWeakETag: weak tags never satisfy If-Match (strong comparison) but "*" does.
func TestWeakETag(t *testing.T) {
	c := start(t, Options{WeakETag: true})
	r := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201)
	id := r.json()["id"].(string)
	if r.header.Get("ETag") != `W/"1"` {
		t.Fatalf("ETag %q, want W/\"1\"", r.header.Get("ETag"))
	}
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `W/"1"`), 412)
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `"1"`), 412)
	if r := c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `*`), 200); r.header.Get("ETag") != `W/"2"` {
		t.Errorf("ETag after the update %q", r.header.Get("ETag"))
	}
}

// TestRejectBodies: every rejection in each wording, and Connection: close.
func TestRejectBodies(t *testing.T) {
	for _, rb := range []RejectBody{RejectText, RejectEmpty} {
		t.Run(string(rb), func(t *testing.T) {
			c := start(t, Options{RejectBody: rb, ConnectionClose: true})
			c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201)
			r := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 409)
			switch rb {
			case RejectText:
				if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.HasPrefix(string(r.body), "409 Conflict: ") {
					t.Errorf("text: %q %q", r.header.Get("Content-Type"), r.body)
				}
			case RejectEmpty:
				if r.header.Get("Content-Type") != "" || len(r.body) != 0 {
					t.Errorf("empty: %q %q", r.header.Get("Content-Type"), r.body)
				}
			}
			if !r.close {
				t.Error("the response did not close the connection")
			}
		})
	}
}

// TestAlreadyApplied: a stale If-Match whose body equals the stored state gets 200 and changes
// nothing; one that would change it gets 412.
func TestAlreadyApplied(t *testing.T) {
	c := start(t, Options{AlreadyApplied: true})
	id := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201).json()["id"].(string)
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `"1"`), 200)
	r := c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue"}`, "If-Match", `"1"`), 200)
	if r.header.Get("ETag") != `"2"` {
		t.Errorf("already applied: ETag %q, want the current \"2\"", r.header.Get("ETag"))
	}
	c.want(c.do("PUT", "/widgets/"+id, `{"color":"green"}`, "If-Match", `"1"`), 412)
}

// TestFaults: LostUpdate applies stale updates; DuplicateRace stores duplicates of one name
// that the correct API refuses.
func TestFaults(t *testing.T) {
	t.Run("lost update", func(t *testing.T) {
		for _, o := range []Options{{Fault: LostUpdate}, {Fault: LostUpdate, VersionField: VersionRevision}} {
			c := start(t, o)
			id := c.want(c.do("POST", "/widgets", `{"name":"a","color":"red"}`), 201).json()["id"].(string)
			c.want(c.do("PUT", "/widgets/"+id, `{"color":"blue","revision":1}`, "If-Match", `"1"`), 200)
			c.want(c.do("PUT", "/widgets/"+id, `{"color":"green","revision":1}`, "If-Match", `"1"`), 200)
		}
	})
	creates := func(t *testing.T, o Options, n int) (won int, live int) {
		srv := Start(t, o)
		var wg sync.WaitGroup
		var mu sync.Mutex
		gate := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-gate
				resp, err := http.Post(srv.URL+"/widgets", "application/json", strings.NewReader(`{"name":"same","color":"red"}`))
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		close(gate)
		wg.Wait()
		return won, srv.Live()
	}
	t.Run("duplicate race", func(t *testing.T) {
		// A wide window, so that every racer checks before any stores on a busy machine.
		won, live := creates(t, Options{Fault: DuplicateRace, RaceWindow: 300 * time.Millisecond}, 4)
		if won < 2 || live != won {
			t.Errorf("%d creates won, %d stored; want several duplicates", won, live)
		}
		won, live = creates(t, Options{}, 4)
		if won != 1 || live != 1 {
			t.Errorf("correct API: %d creates won, %d stored; want 1", won, live)
		}
	})
	t.Run("duplicate race on PUT", func(t *testing.T) {
		srv := Start(t, Options{PUTCreate: true, Fault: DuplicateRace, RaceWindow: 300 * time.Millisecond})
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		gate := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-gate
				req, _ := http.NewRequest("PUT", srv.URL+"/widgets/w1", strings.NewReader(`{"name":"a","color":"red"}`))
				req.Header.Set("If-None-Match", "*")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		close(gate)
		wg.Wait()
		if won < 2 {
			t.Errorf("%d PUT creates won, want several", won)
		}
	})
}

// TestHooks: the request log, rate limits, tokens and delays.
func TestHooks(t *testing.T) {
	t.Run("log", func(t *testing.T) {
		c := start(t, Options{})
		c.do("POST", "/widgets", `{"name":"a","color":"red"}`, "X-Trace", "1")
		c.do("GET", "/widgets?name=a", "")
		reqs := c.srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests logged, want 2", len(reqs))
		}
		if r := reqs[0]; r.Method != "POST" || r.Path != "/widgets" || r.Header.Get("X-Trace") != "1" || r.Status != 201 || !strings.Contains(string(r.Body), `"a"`) {
			t.Errorf("first: %+v", r)
		}
		if r := reqs[1]; r.Method != "GET" || r.Query != "name=a" || r.Status != 200 {
			t.Errorf("second: %+v", r)
		}
	})
	t.Run("every third", func(t *testing.T) {
		c := start(t, Options{RateLimit: &RateLimit{Every: 3, RetryAfter: "2"}})
		var got []int
		for range 6 {
			r := c.do("GET", "/widgets", "")
			got = append(got, r.status)
			if r.status == 429 && r.header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
		if fmt.Sprint(got) != "[200 200 429 200 200 429]" {
			t.Errorf("statuses %v", got)
		}
	})
	t.Run("window", func(t *testing.T) {
		c := start(t, Options{RateLimit: &RateLimit{First: 2}})
		var got []int
		for i := range 5 {
			if i == 3 {
				c.srv.Throttle(1)
			}
			r := c.do("GET", "/widgets", "")
			got = append(got, r.status)
			if r.status == 429 && r.header.Get("Retry-After") != DefaultRetryAfter {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
		if fmt.Sprint(got) != "[429 429 200 429 200]" {
			t.Errorf("statuses %v", got)
		}
		c.srv.ThrottleFor(time.Hour)
		c.want(c.do("GET", "/widgets", ""), 429)
		c.srv.ThrottleFor(0)
		c.want(c.do("GET", "/widgets", ""), 200)
	})
	t.Run("token", func(t *testing.T) {
		c := start(t, Options{Token: "one"})
		r := c.want(c.do("GET", "/widgets", ""), 401)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		c.want(c.do("GET", "/widgets", "", "Authorization", "Bearer one"), 200)
		c.srv.RotateToken("two")
		c.want(c.do("GET", "/widgets", "", "Authorization", "Bearer one"), 401)
		c.want(c.do("GET", "/widgets", "", "Authorization", "Bearer two"), 200)
	})
	t.Run("delay", func(t *testing.T) {
		srv := Start(t, Options{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/widgets", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			t.Fatalf("a request to an API delayed by an hour answered %d", resp.StatusCode)
		}
	})
}
