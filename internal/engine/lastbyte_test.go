package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
)

// lbReadRequest reads one request from c, body included.
func lbReadRequest(c net.Conn) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

func TestLastByteExchangesMatchWhatTheServerSent(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 10_000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Echo", r.Header.Get("X-Echo"))
		if r.URL.Query().Get("chunked") != "" {
			w.WriteHeader(http.StatusAccepted)
			for i := 0; i < n; i += 1000 {
				w.Write(big[i:min(i+1000, n)])
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusCreated)
		w.Write(big[:n])
	})
	for _, tlsOn := range []bool{false, true} {
		srv, cfg := testServer(t, h, tlsOn)
		for _, tc := range []struct {
			query  string
			status int
			n      int
		}{
			{"n=0", 201, 0},
			{"n=1", 201, 1},
			{"n=100000", 201, 100_000},
			{"n=5&chunked=1", 202, 5},
			{"n=100000&chunked=1", 202, 100_000},
		} {
			t.Run(fmt.Sprintf("tls=%v/%s", tlsOn, tc.query), func(t *testing.T) {
				reqs := copies(3, Request{Method: "PUT", Path: "/r?" + tc.query,
					Header: http.Header{"X-Echo": {"hello"}}, Body: []byte(`{"a":1}`)})
				out := fire(t, LastByte, Options{TLS: cfg, Timeout: 5 * time.Second}, []string{srv.URL}, reqs)
				for _, x := range out.Exchanges {
					if x.Err != nil {
						t.Fatalf("racer %d: %v", x.Racer, x.Err)
					}
					if x.Status != tc.status || x.Proto != "HTTP/1.1" {
						t.Errorf("racer %d: %d %s; want %d HTTP/1.1", x.Racer, x.Status, x.Proto, tc.status)
					}
					if got := x.Header.Get("X-Method") + " " + x.Header.Get("X-Echo"); got != "PUT hello" {
						t.Errorf("racer %d: headers echo %q; want %q", x.Racer, got, "PUT hello")
					}
					if !bytes.Equal(x.Body, big[:tc.n]) || x.Truncated {
						t.Errorf("racer %d: body of %d bytes (truncated %v); want %d", x.Racer, len(x.Body), x.Truncated, tc.n)
					}
					if !(0 < x.WriteStart && x.WriteStart <= x.Release && x.Release <= x.FirstByte && x.FirstByte <= x.Done) {
						t.Errorf("racer %d: times out of order: write %v release %v first byte %v done %v",
							x.Racer, x.WriteStart, x.Release, x.FirstByte, x.Done)
					}
				}
			})
		}
	}
}

func TestLastByteHandlersOverlap(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			var cur, peak atomic.Int32
			srv, cfg := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := cur.Add(1)
				defer cur.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				time.Sleep(20 * time.Millisecond)
				w.Write(body)
			}), tlsOn)
			reqs := make([]Request, 8)
			for i := range reqs {
				reqs[i] = Request{Method: "POST", Path: "/", Body: []byte(fmt.Sprintf("racer %d %s", i, strings.Repeat("x", 3000)))}
			}
			out := fire(t, LastByte, Options{TLS: cfg, Timeout: 5 * time.Second}, []string{srv.URL}, reqs)
			for i, x := range out.Exchanges {
				if x.Err != nil || x.Status != 200 || !bytes.Equal(x.Body, reqs[i].Body) {
					t.Errorf("racer %d: %v, status %d, echoed %d of %d bytes", i, x.Err, x.Status, len(x.Body), len(reqs[i].Body))
				}
			}
			if p := peak.Load(); p < 2 {
				t.Errorf("at most %d handler ran at once; want overlap", p)
			}
			if !out.Overlapped() {
				t.Error("Overlapped() = false")
			}
		})
	}
}

func TestLastByteWireFormat(t *testing.T) {
	got := make(chan string, 1)
	base := hostile.Raw(t, func(c net.Conn) {
		var sent bytes.Buffer
		if _, _, err := lbReadRequest(lbTee{c, &sent}); err == nil {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
		got <- sent.String()
	})
	out := fire(t, LastByte, Options{Timeout: 5 * time.Second}, []string{base + "/api/"}, []Request{{
		Method: "PATCH", Path: "items/1?x=a%20b",
		Header: http.Header{"X-B": {"2", "3"}, "Content-Length": {"99"}, "Host": {"evil"}, "Authorization": {"Bearer t"}},
		Body:   []byte("{}"),
	}})
	want := "PATCH /api/items/1?x=a%20b HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") +
		"\r\nAuthorization: Bearer t\r\nX-B: 2\r\nX-B: 3\r\nUser-Agent: conflictcheck\r\nContent-Length: 2\r\n\r\n{}"
	if s := <-got; s != want {
		t.Errorf("server read\n%q\nwant\n%q", s, want)
	}
	if x := out.Exchanges[0]; x.Err != nil || x.Status != 204 {
		t.Errorf("exchange: %v, status %d; want 204", x.Err, x.Status)
	}
	if h := out.Exchanges[0].Request.Header.Get("Authorization"); h != Redacted {
		t.Errorf("captured Authorization %q; want %q", h, Redacted)
	}
}

// lbTee is a connection that copies what it reads into w.
type lbTee struct {
	net.Conn
	w io.Writer
}

func (c lbTee) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.Write(p[:n])
	return n, err
}

func TestLastByteUnserialisableRequestIsNotSent(t *testing.T) {
	var conns atomic.Int32
	base := hostile.Raw(t, func(c net.Conn) { conns.Add(1) })
	out := fire(t, LastByte, Options{Timeout: 2 * time.Second}, []string{base}, []Request{
		{Method: "GET", Path: "/", Header: http.Header{"X-A": {"a\r\nX-Injected: 1"}}},
		{Method: "GET", Path: "/", Header: http.Header{"Bad Name": {"a"}}},
		{Method: "GE T", Path: "/"},
	})
	for _, x := range out.Exchanges {
		wantErr(t, x, ErrProtocol)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections opened; want none", n)
	}
}

func TestLastByteEarlyCloseIsReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string
	}{
		{"nothing", ""},
		{"half a head", "HTTP/1.1 200 OK\r\nContent-"},
		{"half a body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{"half a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := hostile.Raw(t, func(c net.Conn) {
				if _, _, err := lbReadRequest(c); err == nil {
					io.WriteString(c, tc.reply)
				}
			})
			out := fire(t, LastByte, Options{Timeout: 5 * time.Second}, []string{base}, copies(3, Request{Method: "POST", Path: "/", Body: []byte("x")}))
			for _, x := range out.Exchanges {
				wantErr(t, x, ErrReset)
			}
		})
	}
}

func TestLastByteTimeout(t *testing.T) {
	base := hostile.Silent(t)
	start := time.Now()
	out := fire(t, LastByte, Options{Timeout: 300 * time.Millisecond}, []string{base}, copies(4, Request{Method: "GET", Path: "/"}))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Fire took %v; want it bounded by the 300ms timeout", d)
	}
	for _, x := range out.Exchanges {
		wantErr(t, x, ErrTimeout)
		if x.Release == 0 {
			t.Errorf("racer %d was never released", x.Racer)
		}
	}
}

func TestLastByteContextCancelled(t *testing.T) {
	base := hostile.Silent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := New(Options{Strategy: LastByte, Timeout: time.Minute}).Fire(ctx, []string{base}, copies(3, Request{Path: "/"}))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fire took %v after its context ended", d)
	}
	for _, x := range out.Exchanges {
		wantErr(t, x, ErrTimeout)
	}
}

func TestLastByteGarbageIsProtocolError(t *testing.T) {
	for _, reply := range []string{
		"SSH-2.0-OpenSSH_9.6\r\n\r\n",
		"HTTP/1.1 abc Nope\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		t.Run(reply[:12], func(t *testing.T) {
			base := hostile.Raw(t, func(c net.Conn) {
				if _, _, err := lbReadRequest(c); err == nil {
					io.WriteString(c, reply)
				}
			})
			out := fire(t, LastByte, Options{Timeout: 5 * time.Second}, []string{base}, copies(2, Request{Path: "/"}))
			for _, x := range out.Exchanges {
				wantErr(t, x, ErrProtocol)
			}
		})
	}
}

func TestLastByteBodyCap(t *testing.T) {
	srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("y"), 1<<20))
	}), false)
	out := fire(t, LastByte, Options{Timeout: 5 * time.Second, MaxBody: 1000}, []string{srv.URL}, copies(2, Request{Path: "/"}))
	for _, x := range out.Exchanges {
		if x.Err != nil || x.Status != 200 || len(x.Body) != 1000 || !x.Truncated {
			t.Errorf("racer %d: %v, status %d, %d bytes, truncated %v; want 200, 1000 bytes, truncated", x.Racer, x.Err, x.Status, len(x.Body), x.Truncated)
		}
	}
}

func TestLastByteInterimResponsesAreSkipped(t *testing.T) {
	base := hostile.Raw(t, func(c net.Conn) {
		if _, _, err := lbReadRequest(c); err == nil {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	out := fire(t, LastByte, Options{Timeout: 5 * time.Second}, []string{base}, copies(1, Request{Path: "/"}))
	if x := out.Exchanges[0]; x.Err != nil || x.Status != 200 || string(x.Body) != "ok" {
		t.Errorf("%v, status %d, body %q; want 200 ok", x.Err, x.Status, x.Body)
	}
}

func TestLastByteDialFailureIsData(t *testing.T) {
	base := hostile.Refused(t)
	out := fire(t, LastByte, Options{Timeout: 2 * time.Second}, []string{base}, copies(3, Request{Path: "/"}))
	for _, x := range out.Exchanges {
		wantErr(t, x, ErrDial)
		if x.WriteStart != 0 || x.Release != 0 {
			t.Errorf("racer %d: written at %v, released at %v; want never", x.Racer, x.WriteStart, x.Release)
		}
	}
	if out.Overlapped() {
		t.Error("Overlapped() = true for a race that never reached the server")
	}
}

func TestLastByteUntrustedCertificateIsTLSError(t *testing.T) {
	srv, _ := testServer(t, http.NotFoundHandler(), true)
	out := fire(t, LastByte, Options{Timeout: 5 * time.Second}, []string{srv.URL}, copies(2, Request{Path: "/"}))
	for _, x := range out.Exchanges {
		wantErr(t, x, ErrTLS)
	}
}

func TestLastByteReadFailures(t *testing.T) {
	x := &Exchange{}
	rd := &lbReader{conn: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), lbErrReader{errors.New("boom")}), r: lbStartedRace(), x: x}
	lbReadResponse(rd, "GET", 100)
	if x.Err == nil || x.Err.Kind != ErrReset || !strings.Contains(x.Err.Message, "boom") {
		t.Errorf("error %v; want a reset naming the connection's failure", x.Err)
	}
}

type lbErrReader struct{ err error }

func (r lbErrReader) Read([]byte) (int, error) { return 0, r.err }

// lbStartedRace is a race whose clock has started, for the response path alone.
func lbStartedRace() *race {
	r := &race{e: New(Options{})}
	r.start()
	return r
}
