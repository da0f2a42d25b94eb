package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/spectest"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// client talks to one test server over loopback.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

// resp is a response read whole.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// obj decodes the body as a JSON object.
func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
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
	return &client{t: t, base: srv.URL, hc: srv.Client()}
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

// do sends a request. body is nil (none), a string (sent raw as JSON) or a value to encode;
// hdr holds header name/value pairs, where Content-Type overrides the default.
func (c *client) do(method, path string, body any, hdr ...string) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if http.CanonicalHeaderKey(hdr[i]) == "Content-Type" {
			req.Header.Set(hdr[i], hdr[i+1])
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: data}
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
	out := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, p, b, h := mk(i)
			<-start
			out[i] = c.do(m, p, b, h...)
		}()
	}
	close(start)
	wg.Wait()
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
