package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// past is a deadline in the past: setting it makes every pending read and write fail now.
var past = time.Unix(1, 0)

// bound makes every read and write of conn fail at deadline, or as soon as ctx ends. Unlike
// Close, ending through a deadline leaves the descriptor valid for a release under way. The
// returned stop releases ctx.
func bound(ctx context.Context, conn net.Conn, deadline time.Time) (stop func() bool) {
	_ = conn.SetDeadline(deadline) // first: a context that already ended must win over it
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(past) })
}

// addr is t's host and port, the scheme's default port when the URL names none.
func (t target) addr() string {
	port := t.base.Port()
	if port == "" {
		port = "80"
		if t.base.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(t.base.Hostname(), port)
}

// raceConn is a connection opened before a race by the strategies that frame requests by hand
// (lastbyte, h2). Requests and responses go through its net.Conn (TLS over tcp for https, else
// tcp itself); the release bypasses both TLS and the net poller: its bytes are sealed
// beforehand (seal) and go out through one write(2) on the socket (writeRaw).
type raceConn struct {
	net.Conn
	tcp     net.Conn      // the connection under any TLS
	hold    *holdConn     // between TLS and tcp; nil in cleartext
	fd      uintptr       // tcp's descriptor, for the release's raw write
	raw     bool          // fd is usable
	connect time.Duration // how long the TCP connect took: about one round trip
}

// newRaceConn wraps a cleartext connection, fetching its descriptor when it has one.
func newRaceConn(tcp net.Conn) *raceConn {
	c := &raceConn{Conn: tcp, tcp: tcp}
	if sc, ok := tcp.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { c.fd, c.raw = fd, true })
		}
	}
	return c
}

// dial opens a connection to t: TCP (with TCP_NODELAY, which the release depends on), then for
// https a TLS session offering protos, within the engine's timeout. Its errors are classified:
// ErrDial, ErrTLS or ErrTimeout.
func (e *Engine) dial(ctx context.Context, t target, protos []string) (*raceConn, *TransportError) {
	d := net.Dialer{Timeout: e.opts.Timeout, Resolver: e.opts.Resolver}
	began := time.Now()
	conn, err := d.DialContext(ctx, "tcp", t.addr())
	if err != nil {
		return nil, classify(err)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true) // Go's default already; the release depends on it, so say so
	}
	c := newRaceConn(conn)
	c.connect = time.Since(began)
	if t.base.Scheme != "https" {
		return c, nil
	}
	cfg := e.tlsConfig()
	cfg.NextProtos = protos
	if cfg.ServerName == "" {
		cfg.ServerName = t.base.Hostname()
	}
	c.hold = &holdConn{Conn: conn}
	tc := tls.Client(c.hold, cfg)
	_ = conn.SetDeadline(time.Now().Add(e.opts.Timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		te := classify(err)
		if te.Kind != ErrTimeout {
			te.Kind = ErrTLS
		}
		return nil, te
	}
	c.Conn = tc
	return c, nil
}

// seal returns what writing b through c would put on the wire, without sending it: b itself in
// cleartext, else the TLS records sealing it, which the TLS layer then counts as sent. Whoever
// seals must write the result to c.tcp before anything else is written through c.
func (c *raceConn) seal(b []byte) ([]byte, error) {
	if c.hold == nil {
		return b, nil
	}
	c.hold.start()
	_, err := c.Conn.Write(b)
	rec := c.hold.stop()
	if err == nil && len(rec) == 0 {
		err = errors.New("tls: the release was sealed into no record")
	}
	return rec, err
}

// writeRaw writes b to the socket with one write(2), bypassing the net poller, and returns
// how many bytes went out: none when there is no usable descriptor, the send buffer is full
// or the call failed. The caller sends the rest through c.tcp, which reports errors properly.
func (c *raceConn) writeRaw(b []byte) int {
	if !c.raw {
		return 0
	}
	n, _ := rawWrite(c.fd, b)
	return max(n, 0)
}

// holdConn lets the TLS layer seal records without sending them. TLS may write from its
// reading side too (alerts), so the hold is guarded.
type holdConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.holding {
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// start keeps what is written from now on.
func (c *holdConn) start() {
	c.mu.Lock()
	c.holding, c.held = true, nil
	c.mu.Unlock()
}

// stop returns what was kept since start and lets writes through again.
func (c *holdConn) stop() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.held
}

// tlsConfig is a copy of the configured TLS settings (nil-safe).
func (e *Engine) tlsConfig() *tls.Config {
	if e.opts.TLS == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return e.opts.TLS.Clone()
}

// Cause narrows a TransportError's Kind to the reason a person can act on.
type Cause string

// The causes classify recognises.
const (
	CauseRefused    Cause = "refused"           // ErrDial: nothing listens at the target's port
	CauseNoSuchHost Cause = "no-such-host"      // ErrDial: the target's host name does not resolve
	CauseLookup     Cause = "lookup"            // ErrDial: the host name lookup failed otherwise
	CauseUntrusted  Cause = "untrusted"         // ErrTLS: the certificate is signed by an unknown authority
	CauseHostname   Cause = "hostname-mismatch" // ErrTLS: the certificate is not valid for the host
	CauseExpired    Cause = "expired"           // ErrTLS: the certificate has expired or is not valid yet
	CauseNotTLS     Cause = "not-tls"           // ErrTLS: the server answered something other than TLS
)

// classify turns a transport error into data: its kind, and its cause when one is recognised.
// A failed lookup is a dial error even when it timed out: the name, not the server, is at fault.
func classify(err error) *TransportError {
	var (
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		dnsErr  *net.DNSError
	)
	te := &TransportError{Kind: ErrReset, Message: err.Error()}
	switch {
	case errors.As(err, &dnsErr):
		te.Kind, te.Cause = ErrDial, CauseLookup
		if dnsErr.IsNotFound {
			te.Cause = CauseNoSuchHost
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), isTimeout(err):
		te.Kind = ErrTimeout
	case errors.As(err, &certErr):
		te.Kind, te.Cause = ErrTLS, certCause(err)
	case errors.As(err, &recErr), errors.Is(err, http.ErrSchemeMismatch):
		te.Kind, te.Cause = ErrTLS, CauseNotTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		te.Kind, te.Cause = ErrDial, CauseRefused
	case errors.As(err, &opErr) && opErr.Op == "dial":
		te.Kind = ErrDial
	case malformed(err):
		te.Kind = ErrProtocol
	}
	return te
}

// malformed reports whether err is net/http's complaint about a response that is not HTTP
// (the barrier strategy's client); it has no type of its own to match.
func malformed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed HTTP") || strings.Contains(msg, "malformed MIME header")
}

// certCause is why a certificate failed verification, when x509 says so.
func certCause(err error) Cause {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		return CauseUntrusted
	case errors.As(err, &hostname):
		return CauseHostname
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return CauseExpired
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
