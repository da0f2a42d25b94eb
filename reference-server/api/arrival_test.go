package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/racetest"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// arrivals records every OnArrival call.
type arrivals struct {
	mu    sync.Mutex
	calls []arrivalCall
}

type arrivalCall struct {
	method, tag string
	at          time.Time
}

func (a *arrivals) record(r *http.Request, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, arrivalCall{method: r.Method, tag: r.Header.Get("X-Tag"), at: at})
}

func (a *arrivals) snapshot() []arrivalCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]arrivalCall(nil), a.calls...)
}

// newArrivalServer serves the correct API with the recorder as OnArrival.
func newArrivalServer(t *testing.T, maxBody int64) (*client, *arrivals) {
	t.Helper()
	rec := &arrivals{}
	srv := httptest.NewServer(api.New(store.NewMemory(store.Options{}), api.Options{MaxBodyBytes: maxBody, OnArrival: rec.record}))
	t.Cleanup(srv.Close)
	return &client{t: t, rc: &racetest.Client{HTTP: srv.Client(), Bases: []string{srv.URL}}}, rec
}

func TestOnArrivalOncePerRequestAndBodyIntact(t *testing.T) {
	c, rec := newArrivalServer(t, 0)
	tests := []struct {
		method, path, tag, body string
		status                  int
		wantInBody              string
	}{
		{"POST", "/items", "create", `{"sku":"A-1","name":"a","price":1,"stock":2}`, 201, `"sku":"A-1"`},
		{"GET", "/items", "list", "", 200, `"sku":"A-1"`},
		{"POST", "/items", "bad", `{"sku":`, 400, "not valid JSON"},
		{"DELETE", "/nowhere", "unrouted", "", 404, "not-found"},
	}
	for i, tt := range tests {
		var body any
		if tt.body != "" {
			body = tt.body
		}
		r := c.do(tt.method, tt.path, body, "X-Tag", tt.tag)
		if r.Status != tt.status || !strings.Contains(string(r.Body), tt.wantInBody) {
			t.Fatalf("%s %s = %d %s; want %d with %q", tt.method, tt.path, r.Status, r.Body, tt.status, tt.wantInBody)
		}
		calls := rec.snapshot()
		if len(calls) != i+1 {
			t.Fatalf("after %d requests OnArrival was called %d times; want %d", i+1, len(calls), i+1)
		}
		if c := calls[i]; c.tag != tt.tag || c.method != tt.method || c.at.IsZero() {
			t.Errorf("call %d = %+v; want method %s, tag %s and a time", i, c, tt.method, tt.tag)
		}
	}
}

func TestOnArrivalStampsAfterTheLastByte(t *testing.T) {
	c, rec := newArrivalServer(t, 0)
	pr, pw := io.Pipe()
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", c.rc.Bases[0]+"/items", pr)
		req.Header.Set("Content-Type", "application/json")
		res, err := c.rc.HTTP.Do(req)
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- result{res.StatusCode, string(b)}
	}()
	if _, err := pw.Write([]byte(`{"sku":"B-1","name":"b","price":1,`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the server has the headers and half the body by now
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("OnArrival called %d times before the body was complete; want 0", n)
	}
	beforeLast := time.Now()
	if _, err := pw.Write([]byte(`"stock":1}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.status != 201 {
		t.Fatalf("POST /items = %d %s; want 201", res.status, res.body)
	}
	calls := rec.snapshot()
	if len(calls) != 1 {
		t.Fatalf("OnArrival called %d times; want 1", len(calls))
	}
	if !calls[0].at.After(beforeLast) {
		t.Errorf("arrival stamped %v before the last byte was written", beforeLast.Sub(calls[0].at))
	}
}

func TestOnArrivalKeepsTheSizeLimit(t *testing.T) {
	c, rec := newArrivalServer(t, 32)
	r := c.do("POST", "/items", `{"sku":"C-1","name":"`+strings.Repeat("x", 100)+`","price":1,"stock":1}`, "X-Tag", "big")
	if r.Status != 413 || !strings.Contains(string(r.Body), "content-too-large") {
		t.Fatalf("oversized POST /items = %d %s; want 413 content-too-large", r.Status, r.Body)
	}
	if n := len(rec.snapshot()); n != 1 {
		t.Errorf("OnArrival called %d times; want 1", n)
	}
}
