package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Strategy
	}{
		{"", Auto},
		{"auto", Auto},
		{"h2", H2},
		{"lastbyte", LastByte},
		{"barrier", Barrier},
	} {
		if got, err := ParseStrategy(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseStrategy(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"H2", "last-byte", "sync"} {
		_, err := ParseStrategy(in)
		if err == nil || !strings.Contains(err.Error(), "auto, h2, lastbyte, barrier") {
			t.Errorf("ParseStrategy(%q) error = %v; want one naming the valid strategies", in, err)
		}
	}
}

func TestIsSensitive(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization":       true,
		"authorization":       true,
		"Proxy-Authorization": true,
		"Cookie":              true,
		"Set-Cookie":          true,
		"X-API-Key":           true,
		"X-Refresh-Token":     true,
		"X-Client-Secret":     true,
		"X-Session-Id":        true,
		"Db-Password":         true,
		"Idempotency-Key":     false,
		"If-Match":            false,
		"Content-Type":        false,
		"X-Request-Id":        false,
	} {
		if got := IsSensitive(name); got != want {
			t.Errorf("IsSensitive(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	in := http.Header{
		"Authorization":   {"Bearer abc"},
		"X-Tenant":        {"t1", "t2"},
		"Idempotency-Key": {"k-1"},
		"Content-Type":    {"application/json"},
	}
	got := Redact(in, []string{"x-tenant"})
	want := http.Header{
		"Authorization":   {Redacted},
		"X-Tenant":        {Redacted, Redacted},
		"Idempotency-Key": {"k-1"},
		"Content-Type":    {"application/json"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Redact = %v; want %v", got, want)
	}
	got["Content-Type"][0] = "changed"
	if in.Get("Content-Type") != "application/json" || in.Get("Authorization") != "Bearer abc" {
		t.Errorf("Redact changed its input: %v", in)
	}
	if Redact(nil, nil) != nil {
		t.Error("Redact(nil) is not nil")
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ base, path, want string }{
		{"http://h:1", "/items", "http://h:1/items"},
		{"http://h:1/", "/items", "http://h:1/items"},
		{"http://h:1/api", "items?x=1", "http://h:1/api/items?x=1"},
		{"https://h/api/", "", "https://h/api/"},
	} {
		if got := resolve(target{raw: tc.base}, tc.path); got != tc.want {
			t.Errorf("resolve(%q, %q) = %q; want %q", tc.base, tc.path, got, tc.want)
		}
	}
}

func TestOverlapped(t *testing.T) {
	ms := time.Millisecond
	ok := func(write, release, done time.Duration) Exchange {
		return Exchange{WriteStart: write, Release: release, Done: done}
	}
	failed := func(write, release, done time.Duration) Exchange {
		x := ok(write, release, done)
		x.Err = &TransportError{Kind: ErrReset}
		return x
	}
	for _, tc := range []struct {
		name string
		xs   []Exchange
		want bool
	}{
		{"all released before the first answer", []Exchange{ok(1, 2*ms, 5*ms), ok(1, 3*ms, 4*ms)}, true},
		{"released at the first answer", []Exchange{ok(1, 2*ms, 3*ms), ok(1, 3*ms, 4*ms)}, true},
		{"one answered before another was released", []Exchange{ok(1, 2*ms, 3*ms), ok(1, 4*ms, 5*ms)}, false},
		{"a failure does not end the window", []Exchange{failed(1, 2*ms, 3*ms), ok(1, 4*ms, 5*ms)}, true},
		{"no answers at all", []Exchange{failed(1, 2*ms, 3*ms), failed(1, 4*ms, 5*ms)}, true},
		{"one racer", []Exchange{ok(1, 2*ms, 3*ms)}, false},
		{"only one racer sent", []Exchange{ok(1, 2*ms, 3*ms), {Err: &TransportError{Kind: ErrDial}}}, false},
		{"none sent", []Exchange{{Err: &TransportError{Kind: ErrDial}}, {Err: &TransportError{Kind: ErrDial}}}, false},
	} {
		if got := (Outcome{Exchanges: tc.xs}).Overlapped(); got != tc.want {
			t.Errorf("%s: Overlapped() = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestFireInputErrors(t *testing.T) {
	ctx := context.Background()
	one := []Request{{Method: "GET", Path: "/"}}
	e := New(Options{Strategy: Barrier})
	if _, err := e.Fire(ctx, []string{"http://127.0.0.1:1"}, nil); !errors.Is(err, ErrNoRequests) {
		t.Errorf("no requests: %v; want ErrNoRequests", err)
	}
	if _, err := e.Fire(ctx, nil, one); err == nil {
		t.Error("no targets: no error")
	}
	for _, bad := range []string{"ftp://h/", "127.0.0.1:8080", "http://", "http://h:1/%zz", "/items"} {
		if _, err := e.Fire(ctx, []string{"http://127.0.0.1:1", bad}, one); err == nil || !strings.Contains(err.Error(), "not an absolute http(s) URL") {
			t.Errorf("target %q: %v; want it refused", bad, err)
		}
	}
	if _, err := New(Options{Strategy: "bogus"}).Fire(ctx, []string{"http://127.0.0.1:1"}, one); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown strategy: %v; want an error naming it", err)
	}
}

func TestFireRoundRobinOverTargets(t *testing.T) {
	for _, st := range Strategies {
		t.Run(string(st), func(t *testing.T) {
			var hits [2]atomic.Int32
			var urls []string
			for i := range hits {
				srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits[i].Add(1)
					fmt.Fprintf(w, "server %d saw %s", i, r.URL.RequestURI())
				}), false)
				urls = append(urls, srv.URL+"/base")
			}
			reqs := make([]Request, 5)
			for i := range reqs {
				reqs[i] = Request{Method: "GET", Path: fmt.Sprintf("/r%d", i)}
			}
			out := fire(t, st, Options{Timeout: 5 * time.Second}, urls, reqs)
			if out.Start.IsZero() {
				t.Error("Outcome.Start is zero")
			}
			for i, x := range out.Exchanges {
				want := fmt.Sprintf("server %d saw /base/r%d", i%2, i)
				if x.Racer != i || x.Target != urls[i%2] || x.Request.URL != urls[i%2]+fmt.Sprintf("/r%d", i) || string(x.Body) != want {
					t.Errorf("exchange %d: racer %d, target %s, url %s, body %q; want body %q", i, x.Racer, x.Target, x.Request.URL, x.Body, want)
				}
			}
			if a, b := hits[0].Load(), hits[1].Load(); a != 3 || b != 2 {
				t.Errorf("hits %d and %d; want 3 and 2", a, b)
			}
		})
	}
}

func TestFireRedactsCapturedSecretsOnly(t *testing.T) {
	for _, st := range Strategies {
		t.Run(string(st), func(t *testing.T) {
			srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Tenant")+"|"+r.Header.Get("Idempotency-Key"))
			}), false)
			out := fire(t, st, Options{Timeout: 5 * time.Second, Secrets: []string{"X-Tenant"}}, []string{srv.URL}, []Request{{Method: "POST", Path: "/", Body: []byte("b"),
				Header: http.Header{"Authorization": {"Bearer s3cret"}, "X-Tenant": {"acme"}, "Idempotency-Key": {"k1"}}}})
			x := out.Exchanges[0]
			if got, want := string(x.Body), "Bearer s3cret|acme|k1"; got != want {
				t.Errorf("server saw %q; want %q", got, want)
			}
			h := x.Request.Header
			if h.Get("Authorization") != Redacted || h.Get("X-Tenant") != Redacted || h.Get("Idempotency-Key") != "k1" {
				t.Errorf("captured headers %v; want Authorization and X-Tenant redacted, Idempotency-Key kept", h)
			}
			if x.Request.Method != "POST" || string(x.Request.Body) != "b" {
				t.Errorf("captured %s %q; want POST b", x.Request.Method, x.Request.Body)
			}
		})
	}
}

func TestFireRecordsRedirectsWithoutFollowing(t *testing.T) {
	for _, st := range Strategies {
		for _, tc := range []struct {
			status int
			req    Request
			n      int
		}{
			{http.StatusFound, Request{Path: "/from"}, 2},
			{http.StatusSeeOther, Request{Method: "POST", Path: "/from", Body: []byte("x")}, 3},
		} {
			t.Run(fmt.Sprintf("%s/%d", st, tc.status), func(t *testing.T) {
				var followed atomic.Int32
				mux := http.NewServeMux()
				mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/to", tc.status) })
				mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
				srv, _ := testServer(t, mux, false)
				out := fire(t, st, Options{Timeout: 5 * time.Second}, []string{srv.URL}, copies(tc.n, tc.req))
				for _, x := range out.Exchanges {
					if x.Err != nil || x.Status != tc.status || x.Header.Get("Location") != "/to" {
						t.Errorf("racer %d: %v, status %d, Location %q; want %d to /to", x.Racer, x.Err, x.Status, x.Header.Get("Location"), tc.status)
					}
				}
				if n := followed.Load(); n != 0 {
					t.Errorf("redirect followed %d times", n)
				}
			})
		}
	}
}

func TestBarrierExchanges(t *testing.T) {
	srv, cfg := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	}), true)
	reqs := make([]Request, 4)
	for i := range reqs {
		reqs[i] = Request{Method: "POST", Path: "/", Body: []byte(strings.Repeat("b", i*1000))}
	}
	out := fire(t, Barrier, Options{TLS: cfg, Timeout: 5 * time.Second, MaxBody: 2500}, []string{srv.URL}, reqs)
	for i, x := range out.Exchanges {
		wantBody := reqs[i].Body[:min(len(reqs[i].Body), 2500)]
		if x.Err != nil || x.Status != 201 || x.Header.Get("X-Len") != fmt.Sprint(i*1000) ||
			string(x.Body) != string(wantBody) || x.Truncated != (i*1000 > 2500) {
			t.Errorf("racer %d: %v, status %d, X-Len %s, %d bytes, truncated %v", i, x.Err, x.Status, x.Header.Get("X-Len"), len(x.Body), x.Truncated)
		}
		if !(0 < x.WriteStart && x.WriteStart <= x.Release && x.Release <= x.FirstByte && x.FirstByte <= x.Done) {
			t.Errorf("racer %d: times out of order: %v %v %v %v", i, x.WriteStart, x.Release, x.FirstByte, x.Done)
		}
		if x.Proto != "HTTP/1.1" {
			t.Errorf("racer %d: proto %q; want HTTP/1.1 (barrier never negotiates h2)", i, x.Proto)
		}
	}
}

func TestBarrierTransportErrorsAreData(t *testing.T) {
	refused := hostile.Refused(t)
	silent := hostile.Silent(t)
	tlsSrv, _ := testServer(t, http.NotFoundHandler(), true)
	for _, tc := range []struct {
		name, target string
		timeout      time.Duration
		want         ErrorKind
	}{
		{"refused", refused, 5 * time.Second, ErrDial},
		{"silent", silent, 300 * time.Millisecond, ErrTimeout},
		{"untrusted", tlsSrv.URL, 5 * time.Second, ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out := fire(t, Barrier, Options{Timeout: tc.timeout}, []string{tc.target}, copies(2, Request{Path: "/"}))
			if d := time.Since(start); d > tc.timeout+3*time.Second {
				t.Errorf("Fire took %v; want it bounded by the %v timeout", d, tc.timeout)
			}
			kinds := []ErrorKind{}
			for _, x := range out.Exchanges {
				if x.Err == nil {
					t.Fatalf("racer %d: no error, status %d", x.Racer, x.Status)
				}
				kinds = append(kinds, x.Err.Kind)
			}
			if !slices.Equal(kinds, []ErrorKind{tc.want, tc.want}) {
				t.Errorf("error kinds %v; want %s for both", kinds, tc.want)
			}
		})
	}
}

func TestResponseCredentialsRedacted(t *testing.T) {
	srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cr3t"})
		w.Header().Set("X-Tenant", r.Header.Get("X-Tenant")) // echoes a secret header back
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusCreated)
	}), false)
	for _, st := range Strategies {
		out := fire(t, st, Options{Secrets: []string{"X-Tenant"}}, []string{srv.URL}, []Request{{
			Method: http.MethodGet, Path: "/", Header: http.Header{"Authorization": {"Bearer abc"}, "X-Tenant": {"t1"}},
		}})
		x := out.Exchanges[0]
		if x.Status != http.StatusCreated || x.Header.Get("ETag") != `"v1"` {
			t.Errorf("%s: status %d ETag %q, want 201 and the ETag kept", st, x.Status, x.Header.Get("ETag"))
		}
		if got, echo := x.Header.Get("Set-Cookie"), x.Header.Get("X-Tenant"); got != Redacted || echo != Redacted {
			t.Errorf("%s: response Set-Cookie captured as %q, echoed X-Tenant as %q, want both %q", st, got, echo, Redacted)
		}
		if a, tn := x.Request.Header.Get("Authorization"), x.Request.Header.Get("X-Tenant"); a != Redacted || tn != Redacted {
			t.Errorf("%s: request Authorization %q, X-Tenant %q, want both redacted", st, a, tn)
		}
	}
}

func TestAutoFallsBackToLastByteAndEveryStrategySpeaksTLS(t *testing.T) {
	srv, cfg := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(b)
	}), true)
	for _, st := range []Strategy{Auto, LastByte, Barrier} {
		e := New(Options{Strategy: st, TLS: cfg})
		reqs := []Request{{Method: http.MethodPost, Path: "/a", Body: []byte("one")}, {Method: http.MethodPost, Path: "/b", Body: []byte("two")}}
		out, err := e.Fire(t.Context(), []string{srv.URL}, reqs)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		want := st
		if st == Auto {
			want = LastByte // the TLS test server offers only HTTP/1.1
		}
		if out.Strategy != want {
			t.Errorf("%s: used %s, want %s", st, out.Strategy, want)
		}
		for i, x := range out.Exchanges {
			if x.Err != nil || x.Status != http.StatusAccepted || string(x.Body) != string(reqs[i].Body) {
				t.Errorf("%s racer %d: status %d body %q err %v", st, i, x.Status, x.Body, x.Err)
			}
		}
	}
}

func TestReferenceServerDuplicateCreate(t *testing.T) {
	for _, tc := range []struct {
		st    Strategy
		tlsOn bool
	}{{LastByte, false}, {LastByte, true}, {H2, false}, {Barrier, false}} {
		t.Run(fmt.Sprintf("%s/tls=%v", tc.st, tc.tlsOn), func(t *testing.T) {
			srv, cfg := testServer(t, api.New(store.NewMemory(store.Options{}), api.Options{}), tc.tlsOn)
			const n = 8
			reqs := make([]Request, n)
			for i := range reqs {
				reqs[i] = Request{Method: "POST", Path: "/items",
					Header: http.Header{"Content-Type": {"application/json"}},
					Body:   fmt.Appendf(nil, `{"sku":"SKU-RACE-1","name":"racer %d","price":100,"stock":5}`, i)}
			}
			out := fire(t, tc.st, Options{TLS: cfg, Timeout: 10 * time.Second}, []string{srv.URL}, reqs)
			counts := map[int]int{}
			for _, x := range out.Exchanges {
				if x.Err != nil {
					t.Fatalf("racer %d: %v", x.Racer, x.Err)
				}
				counts[x.Status]++
				if x.Status == http.StatusConflict && x.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("racer %d: 409 as %q; want application/problem+json", x.Racer, x.Header.Get("Content-Type"))
				}
			}
			if counts[201] != 1 || counts[409] != n-1 {
				t.Errorf("statuses %v; want one 201 and %d 409", counts, n-1)
			}
		})
	}
}
