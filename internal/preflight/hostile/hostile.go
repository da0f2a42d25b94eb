// Package hostile serves misbehaving targets on 127.0.0.1 for tests: a port nobody listens on,
// a server that never answers, one that resets mid-response, one that is not HTTP, one that
// answers HTML, one that fails every request, one that streams a gigantic body, TLS servers
// whose certificate is untrusted or expired, a DNS server that knows no name, and an API that
// answers its reads but misbehaves on every write. Each is closed when the test ends.
package hostile

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// connCap bounds how long a raw fake keeps a connection, so a forgotten client cannot hang a
// test's cleanup.
const connCap = 30 * time.Second

// Refused is the base URL of a loopback port nobody listens on: a listener is opened for a free
// port and closed at once.
func Refused(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// Silent is the base URL of a server that accepts every connection, reads what comes and never
// answers.
func Silent(tb testing.TB) string {
	tb.Helper()
	return Raw(tb, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// Reset is the base URL of a server that reads each request head, writes the start of a 200
// response (status line, headers, a byte of its body) and resets the connection (RST).
func Reset(tb testing.TB) string {
	tb.Helper()
	return Raw(tb, func(c net.Conn) {
		if err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
		resetConn(c)
	})
}

// NotHTTP is the base URL of a server that reads each request head and answers with an SSH
// banner: a port that is not HTTP at all.
func NotHTTP(tb testing.TB) string {
	tb.Helper()
	return Raw(tb, func(c net.Conn) {
		if err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
	})
}

// readHead reads up to the blank line that ends a request head (an HTTP/2 preface has one too).
func readHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" || line == "\n" {
			return nil
		}
	}
}

// resetConn closes c with an RST rather than a FIN, discarding anything unsent.
func resetConn(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// Raw serves every connection of a loopback listener with serve, for a fake that speaks below
// HTTP, and returns its base URL; cleanup closes the listener and every open connection and
// waits for serve to return.
func Raw(tb testing.TB, serve func(c net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					_ = c.Close()
				}()
				_ = c.SetDeadline(time.Now().Add(connCap))
				serve(c)
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// quiet swallows the errors fakes make their server log on purpose (handshakes refused,
// writes to a client that left).
var quiet = log.New(io.Discard, "", 0)

// Serve runs h on a loopback HTTP/1.1 server, closed when the test ends.
func Serve(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quiet
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

// HTMLPage is what HTML answers.
const HTMLPage = "<!doctype html>\n<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n"

// HTML answers every request with 200 and an HTML page, like a web server's default site.
var HTML http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, HTMLPage)
})

// Status answers every request with code and a problem+json body, counting the requests in
// hits (which may be nil).
func Status(code int, hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d}`, http.StatusText(code), code)
	})
}

// Huge answers every request with 200 and a JSON array of size bytes, streamed a chunk at a
// time without buffering, adding every byte the connection accepted to sent (which may be nil):
// a client that stops reading leaves it far below size.
func Huge(size int64, sent *atomic.Int64) http.Handler {
	const element = `{"id":"00000000-0000-0000-0000-000000000000","name":"hostile fake","stock":1},`
	chunk := []byte(strings.Repeat(element, 64<<10/len(element)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		write := func(b []byte) bool {
			n, err := w.Write(b)
			if sent != nil {
				sent.Add(int64(n))
			}
			return err == nil
		}
		if !write([]byte("[")) {
			return
		}
		for left := size - 3; left > 0; left -= int64(len(chunk)) {
			if !write(chunk[:min(int64(len(chunk)), left)]) {
				return
			}
		}
		write([]byte("{}]"))
	})
}

// Misbehaviour is what Writes does to every request that is not a GET.
type Misbehaviour string

// The misbehaviours of Writes.
const (
	ResetWrites  Misbehaviour = "reset"  // read the request, start a 201, reset the connection
	FailWrites   Misbehaviour = "500"    // 500 with a problem+json body
	HTMLWrites   Misbehaviour = "html"   // 200 with an HTML page
	HugeWrites   Misbehaviour = "huge"   // 200 with a 50 MiB JSON body
	SilentWrites Misbehaviour = "silent" // read the request, never answer
)

// HugeSize is the body HugeWrites streams.
const HugeSize = 50 << 20

// Writes is an API that reads well and writes badly: a GET of a one-segment path (a collection,
// "/items") gets 200 `[]` as application/json, any other GET 404 problem+json, and every other
// request misbehaves as m says.
func Writes(m Misbehaviour) http.Handler {
	fail, huge := Status(http.StatusInternalServerError, nil), Huge(HugeSize, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0 && r.URL.Path != "/" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "[]")
				return
			}
			Status(http.StatusNotFound, nil).ServeHTTP(w, r)
			return
		}
		switch m {
		case ResetWrites:
			_, _ = io.Copy(io.Discard, r.Body)
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
			_ = buf.Flush()
			resetConn(c)
		case FailWrites:
			fail.ServeHTTP(w, r)
		case HTMLWrites:
			HTML.ServeHTTP(w, r)
		case HugeWrites:
			huge.ServeHTTP(w, r)
		case SilentWrites:
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(connCap):
			}
		}
	})
}

// TLS runs h on a loopback HTTPS server (HTTP/2 and HTTP/1.1) whose certificate is httptest's:
// no client trusts it unless given Trust(srv).
func TLS(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quiet
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{NextProtos: alpn}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv
}

// alpn are the protocols the TLS fakes offer: a client of either version gets as far as the
// certificate check.
var alpn = []string{"h2", "http/1.1"}

// Trust is a pool holding srv's certificate, for a client that should trust it.
func Trust(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// ExpiredTLS runs h on a loopback HTTPS server (HTTP/2 and HTTP/1.1) whose self-signed certificate (for 127.0.0.1)
// expired yesterday, and returns a pool that trusts it: only its dates are wrong.
func ExpiredTLS(tb testing.TB, h http.Handler) (*httptest.Server, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "conflictcheck expired test certificate"},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(-24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quiet
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{NextProtos: alpn, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return srv, pool
}

// NXDOMAIN runs a DNS server on 127.0.0.1 (UDP) that answers every question "no such name",
// and returns its address, for Resolver.
func NXDOMAIN(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer, ok := nxdomain(buf[:n]); ok {
				_, _ = pc.WriteTo(answer, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// nxdomain is the "no such name" answer to the DNS query q; false when q does not parse.
func nxdomain(q []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	questions, err := p.AllQuestions()
	if err != nil {
		return nil, false
	}
	answer := dnsmessage.Message{
		Header: dnsmessage.Header{
			ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeNameError,
		},
		Questions: questions,
	}
	b, err := answer.Pack()
	return b, err == nil
}

// Resolver is a resolver that asks only the DNS server at addr (over UDP), whatever
// /etc/resolv.conf names; /etc/hosts is still read first.
func Resolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}
