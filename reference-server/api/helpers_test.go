package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/racetest"
	"github.com/conflictcheck/conflictcheck/internal/spectest"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// client talks to one test server over loopback.
type client struct {
	t  testing.TB
	rc *racetest.Client
}

// resp is a response read whole.
type resp struct{ racetest.Reply }

// obj decodes the body as a JSON object.
func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	m := r.Object()
	if m == nil {
		t.Fatalf("body %q is not a JSON object", r.Body)
	}
	return m
}

// str returns a string member of the body.
func (r resp) str(t testing.TB, name string) string {
	t.Helper()
	s, _ := r.obj(t)[name].(string)
	return s
}

// num returns a numeric member of the body.
func (r resp) num(t testing.TB, name string) int64 {
	t.Helper()
	f, _ := r.obj(t)[name].(float64)
	return int64(f)
}

// newServer starts the API over st with the given fault on a loopback test server. With
// validate, every response is checked against reference.yaml.
func newServer(t testing.TB, st store.Store, f fault.Name, validate bool) *client {
	t.Helper()
	var h http.Handler = api.New(st, api.Options{Fault: f})
	if validate {
		v, err := spectest.New()
		if err != nil {
			t.Fatal(err)
		}
		h = v.Middleware(t, h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &client{t: t, rc: &racetest.Client{HTTP: srv.Client(), Bases: []string{srv.URL}}}
}

// newFaulty starts the API on a memory store with the fault's store and HTTP defects, without
// response validation (some faults break the document on purpose).
func newFaulty(t testing.TB, name fault.Name) *client {
	t.Helper()
	f, err := fault.Parse(string(name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: "memory", RaceWindow: 20 * time.Millisecond}
	st, err := server.OpenStore(t.Context(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, st, name, false)
}

// do sends a request; see racetest.Request for body and hdr.
func (c *client) do(method, path string, body any, hdr ...string) resp {
	c.t.Helper()
	r := c.rc.Do(c.t.Context(), 0, racetest.Request{Method: method, Path: path, Body: body, Header: hdr})
	if r.Err != nil {
		c.t.Fatal(r.Err)
	}
	return resp{r}
}

// want fails unless the response has the status (and, for a problem, the problem name).
func want(t testing.TB, r resp, status int, problem string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d; want %d\nbody: %s", r.Status, status, r.Body)
	}
	if problem != "" {
		if got := r.str(t, "type"); got != "urn:conflictcheck:problem:"+problem {
			t.Fatalf("problem type = %q; want %s\nbody: %s", got, problem, r.Body)
		}
	}
}

// item is a request body for createItem.
func item(sku string, stock int) map[string]any {
	return map[string]any{"sku": sku, "name": "name of " + sku, "price": 1250, "stock": stock}
}

// mustCreate creates an item and returns the response.
func (c *client) mustCreate(sku string, stock int) resp {
	c.t.Helper()
	r := c.do("POST", "/items", item(sku, stock))
	want(c.t, r, 201, "")
	return r
}

// collide sends the requests built by mk(i) for i in [0, n) at once and returns the responses.
func (c *client) collide(n int, mk func(i int) (method, path string, body any, hdr []string)) []resp {
	c.t.Helper()
	replies := c.rc.Collide(c.t.Context(), n, func(i int) racetest.Request {
		m, p, b, h := mk(i)
		return racetest.Request{Method: m, Path: p, Body: b, Header: h}
	})
	out := make([]resp, n)
	for i, r := range replies {
		if r.Err != nil {
			c.t.Fatal(r.Err)
		}
		out[i] = resp{r}
	}
	return out
}

// statuses counts responses by status.
func statuses(rs []resp) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}
