package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
)

// h2TLSServer is an httptest server speaking HTTP/2 over TLS, and a client config trusting it.
func h2TLSServer(t *testing.T, h http.Handler) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := hostile.TLS(t, h)
	return srv, trustConfig(srv)
}

// h2Echo answers with the status in the X-Status request header (200 by default), the
// request's method, X-Test header and content length in headers, and its body.
func h2Echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	if s := r.Header.Get("X-Status"); s != "" {
		status, _ = strconv.Atoi(s)
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Test", r.Header.Get("X-Test"))
	w.Header().Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func TestH2ExchangesMatchWhatTheServerSent(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 10_000)
	reqs := []Request{
		{Method: "POST", Path: "/echo", Header: http.Header{"X-Test": {"empty"}, "X-Status": {"201"}}},
		{Method: "POST", Path: "/echo?q=1", Header: http.Header{"X-Test": {"one"}, "Content-Type": {"text/plain"}}, Body: []byte("x")},
		{Method: "PUT", Path: "/echo", Header: http.Header{"X-Test": {"big"}, "X-Status": {"409"}}, Body: big},
		{Method: "GET", Path: "/", Header: http.Header{"X-Test": {"get"}, "Authorization": {"Bearer s3cret"}}},
	}
	h2c, _ := testServer(t, http.HandlerFunc(h2Echo), false)
	tlsSrv, cfg := h2TLSServer(t, http.HandlerFunc(h2Echo))
	for _, tc := range []struct {
		name, url string
		cfg       *tls.Config
	}{{"h2c", h2c.URL, nil}, {"tls", tlsSrv.URL, cfg}} {
		t.Run(tc.name, func(t *testing.T) {
			out := fire(t, H2, Options{TLS: tc.cfg, Timeout: 5 * time.Second}, []string{tc.url}, reqs)
			if out.Start.IsZero() {
				t.Error("Outcome.Start is zero")
			}
			for i, x := range out.Exchanges {
				req := reqs[i]
				if x.Err != nil {
					t.Fatalf("racer %d: %v", i, x.Err)
				}
				want := 200
				if s := req.Header.Get("X-Status"); s != "" {
					want, _ = strconv.Atoi(s)
				}
				if x.Status != want || x.Proto != "HTTP/2.0" {
					t.Errorf("racer %d: Status = %d %s; want %d HTTP/2.0", i, x.Status, x.Proto, want)
				}
				if got := x.Header.Get("X-Method"); got != req.Method {
					t.Errorf("racer %d: server saw method %q; want %q", i, got, req.Method)
				}
				if got := x.Header.Get("X-Proto"); got != "HTTP/2.0" {
					t.Errorf("racer %d: server saw %q; want HTTP/2.0", i, got)
				}
				if got, want := x.Header.Get("X-Test"), req.Header.Get("X-Test"); got != want {
					t.Errorf("racer %d: X-Test echoed %q; want %q", i, got, want)
				}
				if got, want := x.Header.Values("X-Multi"), []string{"a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("racer %d: X-Multi = %q; want %q", i, got, want)
				}
				if req.Method != "GET" {
					if got, want := x.Header.Get("X-Content-Length"), strconv.Itoa(len(req.Body)); got != want {
						t.Errorf("racer %d: server saw content length %s; want %s", i, got, want)
					}
				}
				if !bytes.Equal(x.Body, req.Body) || x.Truncated {
					t.Errorf("racer %d: body of %d bytes (truncated %v); want the %d sent", i, len(x.Body), x.Truncated, len(req.Body))
				}
				if !(x.WriteStart > 0 && x.WriteStart <= x.Release && x.Release <= x.FirstByte && x.FirstByte <= x.Done) {
					t.Errorf("racer %d: times out of order: write %v release %v first byte %v done %v", i, x.WriteStart, x.Release, x.FirstByte, x.Done)
				}
				if x.Release != out.Exchanges[0].Release {
					t.Errorf("racer %d released at %v, racer 0 at %v: one connection has one release", i, x.Release, out.Exchanges[0].Release)
				}
			}
			if got := out.Exchanges[3].Request.Header.Get("Authorization"); got != Redacted {
				t.Errorf("captured Authorization = %q; want it redacted", got)
			}
		})
	}
}

// h2ConnKey keys the per-connection handler counter in a request context.
type h2ConnKey struct{}

// h2Gauge counts handlers in flight and remembers the most at once.
type h2Gauge struct{ cur, max atomic.Int32 }

func (g *h2Gauge) enter() int32 {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return n
		}
	}
}

func TestH2RespectsMaxConcurrentStreams(t *testing.T) {
	const n, limit = 32, 4
	var mu sync.Mutex
	var gauges []*h2Gauge
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		g := r.Context().Value(h2ConnKey{}).(*h2Gauge)
		g.enter()
		defer g.cur.Add(-1)
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: limit}
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		g := &h2Gauge{}
		mu.Lock()
		gauges = append(gauges, g)
		mu.Unlock()
		return context.WithValue(ctx, h2ConnKey{}, g)
	}
	srv.Start()
	t.Cleanup(srv.Close)

	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Method: "POST", Path: "/", Body: []byte(strconv.Itoa(i))}
	}
	out := fire(t, H2, Options{Timeout: 10 * time.Second}, []string{srv.URL}, reqs)
	for i, x := range out.Exchanges {
		if x.Err != nil || x.Status != http.StatusNoContent {
			t.Errorf("racer %d: status %d, error %v; want 204", i, x.Status, x.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gauges) < n/limit {
		t.Errorf("%d connections; want at least %d for %d racers at %d streams each", len(gauges), n/limit, n, limit)
	}
	for j, g := range gauges {
		if m := g.max.Load(); m > limit {
			t.Errorf("connection %d ran %d handlers at once; the server allows %d", j, m, limit)
		}
	}
}

func TestH2HandlersOverlap(t *testing.T) {
	const n = 8
	var inFlight atomic.Int32
	var sawAll atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if inFlight.Add(1) == n {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
			sawAll.Add(1)
		case <-time.After(5 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	})
	srv, _ := testServer(t, h, false)
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Method: "POST", Path: "/", Body: []byte(`{"a":1}`)}
	}
	out := fire(t, H2, Options{Timeout: 10 * time.Second}, []string{srv.URL}, reqs)
	if got := sawAll.Load(); got != n {
		t.Errorf("%d of %d handlers saw all %d in flight at once; want every one", got, n, n)
	}
	if !out.Overlapped() {
		t.Errorf("Overlapped() = false; want true")
	}
}

func TestH2Timeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv, _ := testServer(t, h, false)
	begin := time.Now()
	out := fire(t, H2, Options{Timeout: 300 * time.Millisecond}, []string{srv.URL}, []Request{{Method: "GET"}, {Method: "GET"}})
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Fire took %v with a 300ms timeout", took)
	}
	for i, x := range out.Exchanges {
		if x.Err == nil || x.Err.Kind != ErrTimeout {
			t.Errorf("racer %d: error %v; want a timeout", i, x.Err)
		}
		if x.Done == 0 {
			t.Errorf("racer %d: Done is zero", i)
		}
	}
}

func TestH2ContextCancelled(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv, _ := testServer(t, h, false)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin := time.Now()
	out, err := New(Options{Strategy: H2, Timeout: 30 * time.Second}).Fire(ctx, []string{srv.URL}, []Request{{Method: "GET"}})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Fire took %v after the context was cancelled", took)
	}
	if x := out.Exchanges[0]; x.Err == nil || x.Err.Kind != ErrTimeout {
		t.Errorf("error %v; want a timeout (cancelled)", x.Err)
	}
}

func TestH2BodyCap(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = w.Write(bytes.Repeat([]byte("z"), n))
	})
	srv, _ := testServer(t, h, false)
	for _, tc := range []struct {
		name      string
		size, max int
		truncated bool
	}{
		{"oversized", 100_000, 1000, true},
		{"exactly the cap", 1000, 1000, false},
		{"beyond the stream window", 5 << 20, 6 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := fire(t, H2, Options{MaxBody: int64(tc.max), Timeout: 10 * time.Second}, []string{srv.URL},
				[]Request{{Method: "GET", Path: "/?n=" + strconv.Itoa(tc.size)}})
			x := out.Exchanges[0]
			if x.Err != nil || x.Status != 200 {
				t.Fatalf("status %d, error %v; want 200", x.Status, x.Err)
			}
			if got, want := len(x.Body), min(tc.size, tc.max); got != want || x.Truncated != tc.truncated {
				t.Errorf("body %d bytes, truncated %v; want %d, %v", got, x.Truncated, want, tc.truncated)
			}
		})
	}
}

func TestH2DialFailureIsData(t *testing.T) {
	srv, _ := testServer(t, http.HandlerFunc(h2Echo), false)
	closed := hostile.Refused(t)
	reqs := []Request{{Method: "GET"}, {Method: "GET"}, {Method: "GET"}, {Method: "GET"}}
	out := fire(t, H2, Options{Timeout: 5 * time.Second}, []string{srv.URL, closed}, reqs)
	for i, x := range out.Exchanges {
		if i%2 == 0 && (x.Err != nil || x.Status != 200) {
			t.Errorf("racer %d (live target): status %d, error %v; want 200", i, x.Status, x.Err)
		}
		if i%2 == 1 && (x.Err == nil || x.Err.Kind != ErrDial) {
			t.Errorf("racer %d (closed port): error %v; want a dial error", i, x.Err)
		}
	}
}

func TestH2HTTP1OnlyTargetIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(h2Echo))
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(h2Echo))
	t.Cleanup(tlsSrv.Close)
	tlsSrv.Config.ErrorLog = quietLog
	for _, tc := range []struct {
		url  string
		cfg  *tls.Config
		kind ErrorKind
		msg  string
	}{
		{srv.URL, nil, ErrProtocol, "looked like an HTTP/1.1 header"},
		{tlsSrv.URL, trustConfig(tlsSrv), ErrTLS, "ALPN h2"},
	} {
		out := fire(t, H2, Options{TLS: tc.cfg, Timeout: 3 * time.Second}, []string{tc.url}, []Request{{Method: "GET"}})
		h2Want(t, 0, out.Exchanges[0], h2Failed(tc.kind, tc.msg))
		if x := out.Exchanges[0]; x.WriteStart != 0 || x.Release != 0 {
			t.Errorf("%s: a racer that never connected has times %v, %v", tc.url, x.WriteStart, x.Release)
		}
	}
}

func TestSpeaksH2(t *testing.T) {
	h2c, _ := testServer(t, http.HandlerFunc(h2Echo), false)
	tlsH2, tlsCfg := h2TLSServer(t, http.HandlerFunc(h2Echo))
	h1 := httptest.NewServer(http.HandlerFunc(h2Echo))
	t.Cleanup(h1.Close)
	tlsH1 := httptest.NewTLSServer(http.HandlerFunc(h2Echo))
	t.Cleanup(tlsH1.Close)
	tlsH1.Config.ErrorLog = quietLog
	tlsH2.Config.ErrorLog = quietLog
	silent := hostile.Silent(t)
	for _, tc := range []struct {
		name string
		url  string
		cfg  *tls.Config
		want bool
	}{
		{"h2c", h2c.URL, nil, true},
		{"tls h2", tlsH2.URL, tlsCfg, true},
		{"http/1.1 only", h1.URL, nil, false},
		{"tls http/1.1 only", tlsH1.URL, trustConfig(tlsH1), false},
		{"tls untrusted", tlsH2.URL, nil, false},
		{"silent", silent, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Options{TLS: tc.cfg, Timeout: 300 * time.Millisecond})
			u := h2Target(t, tc.url)
			if got := e.speaksH2(context.Background(), u); got != tc.want {
				t.Errorf("speaksH2(%s) = %v; want %v", tc.url, got, tc.want)
			}
		})
	}
}

// h2TestConn is conn, after an HTTP/2 handshake, carrying every racer of r as a stream.
func h2TestConn(t *testing.T, r *race, conn net.Conn) *h2conn {
	t.Helper()
	c := newH2Conn(context.Background(), r, newRaceConn(conn))
	if err := c.handshake(); err != nil {
		t.Fatalf("HTTP/2 handshake: %v", err)
	}
	for i := range r.reqs {
		fs, err := h2fields(r.targetOf(i), r.reqs[i], r.xs[i].Request.URL)
		if err != nil {
			t.Fatal(err)
		}
		c.add(i, fs)
	}
	return c
}

// h2Target parses raw into a target.
func h2Target(t *testing.T, raw string) target {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return target{base: u, raw: raw}
}

// h2RawConn is the server side of one raw HTTP/2 connection, for the frames net/http never
// sends on cue: GOAWAY mid-race, RST_STREAM, an early close, tight flow control.
type h2RawConn struct {
	conn net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder

	grant     bool // answer every DATA frame with WINDOW_UPDATEs for it
	mute      bool // never acknowledge a PING
	connWin   int64
	streamWin map[uint32]int64
	overrun   bool // the client sent beyond a flow-control window
}

// h2RawRequest is a request as the raw server read it.
type h2RawRequest struct {
	id     uint32
	fields []hpack.HeaderField
	body   []byte
}

// h2RawServer serves every connection with serve and returns the server's URL.
func h2RawServer(t *testing.T, serve func(t *testing.T, c *h2RawConn)) string {
	t.Helper()
	return hostile.Raw(t, func(conn net.Conn) {
		c := &h2RawConn{conn: conn, fr: http2.NewFramer(conn, conn), connWin: h2DefaultWindow, streamWin: map[uint32]int64{}}
		c.fr.ReadMetaHeaders = hpack.NewDecoder(h2TableSize, nil)
		c.henc = hpack.NewEncoder(&c.hbuf)
		serve(t, c)
	})
}

// handshake reads the client preface and SETTINGS and answers with settings and an ack.
func (c *h2RawConn) handshake(t *testing.T, settings ...http2.Setting) bool {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c.conn, preface); err != nil || string(preface) != http2.ClientPreface {
		t.Errorf("client preface %q, %v", preface, err)
		return false
	}
	f, err := c.fr.ReadFrame()
	if sf, ok := f.(*http2.SettingsFrame); err != nil || !ok || sf.IsAck() {
		t.Errorf("client's first frame %v, %v; want SETTINGS", f, err)
		return false
	}
	_ = c.fr.WriteSettings(settings...)
	_ = c.fr.WriteSettingsAck()
	return true
}

// readRequests reads frames until n streams have ended, checking flow control and
// acknowledging PINGs.
func (c *h2RawConn) readRequests(t *testing.T, n int) []*h2RawRequest {
	var reqs []*h2RawRequest
	byID := map[uint32]*h2RawRequest{}
	for ended := 0; ended < n; {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Errorf("read requests: %v", err)
			return reqs
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			r := &h2RawRequest{id: f.StreamID, fields: f.Fields}
			byID[f.StreamID] = r
			reqs = append(reqs, r)
			c.streamWin[f.StreamID] = h2DefaultWindow
			if f.StreamEnded() {
				ended++
			}
		case *http2.DataFrame:
			r := byID[f.StreamID]
			if r == nil {
				t.Errorf("DATA on unknown stream %d", f.StreamID)
				return reqs
			}
			r.body = append(r.body, f.Data()...)
			k := int64(f.Length)
			c.connWin -= k
			c.streamWin[f.StreamID] -= k
			if c.connWin < 0 || c.streamWin[f.StreamID] < 0 {
				c.overrun = true
			}
			if c.grant && k > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(k))
				_ = c.fr.WriteWindowUpdate(f.StreamID, uint32(k))
				c.connWin += k
				c.streamWin[f.StreamID] += k
			}
			if f.StreamEnded() {
				ended++
			}
		case *http2.PingFrame:
			if !f.IsAck() && !c.mute {
				_ = c.fr.WritePing(true, f.Data)
			}
		}
	}
	return reqs
}

// respond answers stream id with status and body.
func (c *h2RawConn) respond(id uint32, status int, body string) {
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(status)})
	_ = c.henc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/plain"})
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: body == ""})
	if body != "" {
		_ = c.fr.WriteData(id, true, []byte(body))
	}
}

// drain reads until the client closes the connection.
func (c *h2RawConn) drain() { _, _ = io.Copy(io.Discard, c.conn) }

// hangUp closes the server's side, then drains.
func (c *h2RawConn) hangUp() {
	_ = c.conn.(*net.TCPConn).CloseWrite()
	c.drain()
}

func h2Gets(n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Method: "GET", Path: "/" + strconv.Itoa(i)}
	}
	return reqs
}

// h2Reply is what an exchange should hold: status and body when kind is empty, else an error
// of that kind whose message contains msg.
type h2Reply struct {
	status int
	body   string
	kind   ErrorKind
	msg    string
}

func h2OK(status int, body string) h2Reply        { return h2Reply{status: status, body: body} }
func h2Failed(kind ErrorKind, msg string) h2Reply { return h2Reply{kind: kind, msg: msg} }

// h2Want checks exchange x against want.
func h2Want(t *testing.T, i int, x Exchange, want h2Reply) {
	t.Helper()
	if want.kind == "" {
		if x.Err != nil || x.Status != want.status || string(x.Body) != want.body {
			t.Errorf("racer %d: %d %q, error %v; want %d %q", i, x.Status, x.Body, x.Err, want.status, want.body)
		}
		return
	}
	if x.Err == nil || x.Err.Kind != want.kind || !strings.Contains(x.Err.Message, want.msg) {
		t.Errorf("racer %d: error %v; want %s containing %q", i, x.Err, want.kind, want.msg)
	}
	if x.WriteStart > 0 && x.Done == 0 {
		t.Errorf("racer %d: a request that failed after it was written has no Done time", i)
	}
}

// TestH2RawServerAnswers fires GETs at a raw server that answers them through answer, one
// exchange expected per want.
func TestH2RawServerAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mute   bool // never acknowledge a PING
		answer func(c *h2RawConn, reqs []*h2RawRequest)
		want   []h2Reply
	}{
		{
			name: "GOAWAY fails only unprocessed streams",
			answer: func(c *h2RawConn, reqs []*h2RawRequest) {
				c.respond(reqs[0].id, 200, "r0")
				c.respond(reqs[1].id, 200, "r1")
				_ = c.fr.WriteGoAway(reqs[2].id, http2.ErrCodeNo, nil)
				c.respond(reqs[2].id, 200, "r2")
			},
			want: []h2Reply{h2OK(200, "r0"), h2OK(200, "r1"), h2OK(200, "r2"),
				h2Failed(ErrProtocol, "GOAWAY NO_ERROR"), h2Failed(ErrProtocol, "GOAWAY NO_ERROR")},
		},
		{
			name: "early close is reset",
			answer: func(c *h2RawConn, reqs []*h2RawRequest) {
				c.respond(reqs[0].id, 200, "r0")
				c.hangUp()
			},
			want: []h2Reply{h2OK(200, "r0"), h2Failed(ErrReset, "closed"), h2Failed(ErrReset, "closed")},
		},
		{
			name: "reset stream",
			answer: func(c *h2RawConn, reqs []*h2RawRequest) {
				c.respond(reqs[0].id, 200, "r0")
				_ = c.fr.WriteRSTStream(reqs[1].id, http2.ErrCodeRefusedStream)
				c.respond(reqs[2].id, 201, "r2")
			},
			want: []h2Reply{h2OK(200, "r0"), h2Failed(ErrProtocol, "stream reset: REFUSED_STREAM"), h2OK(201, "r2")},
		},
		{
			name: "malformed response fails its stream only",
			answer: func(c *h2RawConn, reqs []*h2RawRequest) {
				_ = c.fr.WriteData(reqs[0].id, true, []byte("no headers"))
				c.respond(reqs[1].id, 200, "r1")
			},
			want: []h2Reply{h2Failed(ErrProtocol, "DATA before the response HEADERS"), h2OK(200, "r1")},
		},
		{
			name: "releases without PING ack",
			mute: true,
			answer: func(c *h2RawConn, reqs []*h2RawRequest) {
				for i, r := range reqs {
					c.respond(r.id, 200, "r"+strconv.Itoa(i))
				}
			},
			want: []h2Reply{h2OK(200, "r0"), h2OK(200, "r1")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := h2RawServer(t, func(t *testing.T, c *h2RawConn) {
				c.mute = tc.mute
				if !c.handshake(t) {
					return
				}
				tc.answer(c, c.readRequests(t, len(tc.want)))
				c.drain()
			})
			out := fire(t, H2, Options{Timeout: 5 * time.Second}, []string{url}, h2Gets(len(tc.want)))
			for i, x := range out.Exchanges {
				h2Want(t, i, x, tc.want[i])
			}
		})
	}
}

func TestH2AcksPingAndSettings(t *testing.T) {
	url := h2RawServer(t, func(t *testing.T, c *h2RawConn) {
		if !c.handshake(t) {
			return
		}
		reqs := c.readRequests(t, 1)
		ping := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
		_ = c.fr.WritePing(false, ping)
		_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
		var pinged, settled bool
		for !pinged || !settled {
			f, err := c.fr.ReadFrame()
			if err != nil {
				t.Errorf("waiting for the acks: %v", err)
				return
			}
			switch f := f.(type) {
			case *http2.PingFrame:
				pinged = f.IsAck() && f.Data == ping
			case *http2.SettingsFrame:
				settled = f.IsAck()
			}
		}
		c.respond(reqs[0].id, 200, "acked")
		c.drain()
	})
	out := fire(t, H2, Options{Timeout: 5 * time.Second}, []string{url}, h2Gets(1))
	h2Want(t, 0, out.Exchanges[0], h2OK(200, "acked"))
}

func TestH2RespectsFlowControl(t *testing.T) {
	bodies := [][]byte{bytes.Repeat([]byte("a"), 100_000), bytes.Repeat([]byte("b"), 70_000), []byte("c")}
	url := h2RawServer(t, func(t *testing.T, c *h2RawConn) {
		c.grant = true
		if !c.handshake(t) {
			return
		}
		reqs := c.readRequests(t, len(bodies))
		if c.overrun {
			t.Errorf("the client sent beyond a flow-control window")
		}
		for i, r := range reqs {
			status := 200
			if !bytes.Equal(r.body, bodies[i]) {
				status = 400
			}
			c.respond(r.id, status, strconv.Itoa(len(r.body)))
		}
		c.drain()
	})
	reqs := make([]Request, len(bodies))
	for i, b := range bodies {
		reqs[i] = Request{Method: "POST", Path: "/", Body: b}
	}
	out := fire(t, H2, Options{Timeout: 5 * time.Second}, []string{url}, reqs)
	for i, x := range out.Exchanges {
		h2Want(t, i, x, h2OK(200, strconv.Itoa(len(bodies[i]))))
	}
}

// h2RecConn records every Write on a connection.
type h2RecConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *h2RecConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// TestH2ReleaseIsOneWrite: every racer ends in one write after all the other frames. A racer
// with a body sends HEADERS and all but its last byte before; a bodyless one (a server starts
// its handler on HEADERS) sends its HEADERS with END_STREAM in the release, on a stream id above
// the others' although it is racer 0.
func TestH2ReleaseIsOneWrite(t *testing.T) {
	url := h2RawServer(t, func(t *testing.T, c *h2RawConn) {
		if !c.handshake(t) {
			return
		}
		for _, r := range c.readRequests(t, 3) {
			c.respond(r.id, 200, "ok")
		}
		c.drain()
	})
	tg := h2Target(t, url)
	conn, err := net.Dial("tcp", tg.base.Host)
	if err != nil {
		t.Fatal(err)
	}
	rec := &h2RecConn{Conn: conn}
	reqs := []Request{{Method: "GET"}, {Method: "POST", Body: []byte("x")}, {Method: "POST", Body: bytes.Repeat([]byte("z"), 1000)}}
	r := New(Options{Timeout: 5 * time.Second}).newRace([]target{tg}, reqs)
	c := h2TestConn(t, r, rec)
	r.start()
	r.h2run(context.Background(), []*h2conn{c})
	for i, x := range r.xs {
		h2Want(t, i, x, h2OK(200, "ok"))
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var headerWrites, releaseWrites []int
	var releaseOrder []uint32
	for w, b := range rec.writes {
		b = bytes.TrimPrefix(b, []byte(http2.ClientPreface))
		fr := http2.NewFramer(nil, bytes.NewReader(b))
		var headers, ends, others int
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					ends++
					releaseOrder = append(releaseOrder, f.StreamID)
				} else {
					headers++
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					ends++
					releaseOrder = append(releaseOrder, f.StreamID)
					if len(f.Data()) > 1 {
						t.Errorf("release frame on stream %d carries %d bytes; want at most 1", f.StreamID, len(f.Data()))
					}
				}
			default:
				others++
			}
		}
		if headers > 0 {
			headerWrites = append(headerWrites, w)
		}
		if ends > 0 {
			releaseWrites = append(releaseWrites, w)
			if ends != len(reqs) || headers+others > 0 {
				t.Errorf("the release write holds %d END_STREAM frames, %d open HEADERS, %d others; want %d END_STREAM only", ends, headers, others, len(reqs))
			}
		}
	}
	if len(headerWrites) != 1 || len(releaseWrites) != 1 || headerWrites[0] >= releaseWrites[0] {
		t.Errorf("HEADERS in writes %v, END_STREAM in writes %v; want each in one write, HEADERS first", headerWrites, releaseWrites)
	}
	if want := []uint32{1, 3, 5}; !slices.Equal(releaseOrder, want) {
		t.Errorf("the release ends streams %v; want %v (the bodyless GET last)", releaseOrder, want)
	}
	if x := r.xs[0]; x.WriteStart != x.Release {
		t.Errorf("the bodyless racer's WriteStart %v != its Release %v: its HEADERS are the release", x.WriteStart, x.Release)
	}
}

func TestH2AutoPicksH2WhereSpoken(t *testing.T) {
	h2c, _ := testServer(t, http.HandlerFunc(h2Echo), false)
	out, err := New(Options{Timeout: 5 * time.Second}).Fire(context.Background(), []string{h2c.URL}, []Request{{Method: "GET"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Strategy != H2 || out.Exchanges[0].Proto != "HTTP/2.0" {
		t.Errorf("auto fired %s over %q; want h2 over HTTP/2.0", out.Strategy, out.Exchanges[0].Proto)
	}
}

// The target names the authority on every strategy: a caller's Host header is dropped.
func TestCallerHostIsIgnored(t *testing.T) {
	srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	}), false)
	want := strings.TrimPrefix(srv.URL, "http://")
	for _, st := range Strategies {
		out := fire(t, st, Options{}, []string{srv.URL}, []Request{{Method: http.MethodGet, Path: "/", Header: http.Header{"Host": {"evil.example"}}}})
		if got := string(out.Exchanges[0].Body); got != want {
			t.Errorf("%s: the server saw host %q, want %q", st, got, want)
		}
	}
}
