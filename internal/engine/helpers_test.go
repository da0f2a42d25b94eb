package engine

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
)

// fire fires reqs at targets with strategy st, failing the test on a Go error, on another
// strategy used, or on an exchange count other than one per request.
func fire(t *testing.T, st Strategy, opts Options, targets []string, reqs []Request) Outcome {
	t.Helper()
	opts.Strategy = st
	out, err := New(opts).Fire(context.Background(), targets, reqs)
	if err != nil {
		t.Fatalf("Fire: %v", err)
	}
	if out.Strategy != st {
		t.Fatalf("Strategy = %q; want %q", out.Strategy, st)
	}
	if got, want := len(out.Exchanges), len(reqs); got != want {
		t.Fatalf("%d exchanges; want %d", got, want)
	}
	return out
}

// quietLog swallows the errors test servers log on purpose-made failures.
var quietLog = log.New(io.Discard, "", 0)

// testServer is an httptest server for h: over TLS (HTTP/1.1 only) when tlsOn, and cfg trusts
// it; else in cleartext, speaking HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
func testServer(t *testing.T, h http.Handler, tlsOn bool) (srv *httptest.Server, cfg *tls.Config) {
	t.Helper()
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quietLog
	if !tlsOn {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
		srv.Start()
		t.Cleanup(srv.Close)
		return srv, nil
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, trustConfig(srv)
}

// trustConfig is a client TLS config that trusts srv's certificate.
func trustConfig(srv *httptest.Server) *tls.Config {
	return &tls.Config{RootCAs: hostile.Trust(srv), MinVersion: tls.VersionTLS12}
}

// copies is n copies of req.
func copies(n int, req Request) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = req
	}
	return reqs
}

// wantErr fails unless x failed with kind.
func wantErr(t *testing.T, x Exchange, kind ErrorKind) {
	t.Helper()
	if x.Err == nil {
		t.Errorf("racer %d: no error (status %d); want %s", x.Racer, x.Status, kind)
		return
	}
	if x.Err.Kind != kind {
		t.Errorf("racer %d: error %v; want kind %s", x.Racer, x.Err, kind)
	}
}
