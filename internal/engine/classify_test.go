package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
)

func TestTransportCauses(t *testing.T) {
	ok := hostile.Status(http.StatusNoContent, nil)
	untrusted := hostile.TLS(t, ok)
	expired, expiredCA := hostile.ExpiredTLS(t, ok)
	cleartext := hostile.Serve(t, ok)
	resolver := hostile.Resolver(hostile.NXDOMAIN(t))
	cases := []struct {
		name   string
		target string
		tls    *tls.Config
		kind   ErrorKind
		cause  Cause
	}{
		{"refused", hostile.Refused(t), nil, ErrDial, CauseRefused},
		{"no such host", "http://nope.invalid:8080", nil, ErrDial, CauseNoSuchHost},
		{"untrusted", untrusted.URL, nil, ErrTLS, CauseUntrusted},
		{"expired", expired.URL, &tls.Config{RootCAs: expiredCA, MinVersion: tls.VersionTLS12}, ErrTLS, CauseExpired},
		{"hostname", untrusted.URL, &tls.Config{RootCAs: hostile.Trust(untrusted), ServerName: "wrong.example", MinVersion: tls.VersionTLS12}, ErrTLS, CauseHostname},
		{"not TLS", strings.Replace(cleartext.URL, "http:", "https:", 1), nil, ErrTLS, CauseNotTLS},
	}
	for _, st := range []Strategy{Auto, H2, LastByte, Barrier} {
		for _, c := range cases {
			t.Run(string(st)+"/"+c.name, func(t *testing.T) {
				opts := Options{Strategy: st, Timeout: 2 * time.Second, TLS: c.tls, Resolver: resolver}
				out, err := New(opts).Fire(t.Context(), []string{c.target}, []Request{{Method: http.MethodGet, Path: "/"}})
				if err != nil {
					t.Fatal(err)
				}
				x := out.Exchanges[0]
				if x.Err == nil || x.Err.Kind != c.kind || x.Err.Cause != c.cause {
					t.Errorf("error %+v (status %d); want kind %s, cause %s", x.Err, x.Status, c.kind, c.cause)
				}
			})
		}
	}
}

// TestClassify: errors are classified by what they wrap, whichever layer wrapped them.
func TestClassify(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	cases := []struct {
		name  string
		err   error
		kind  ErrorKind
		cause Cause
	}{
		{"refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ErrDial, CauseRefused},
		{"unreachable", dial(os.NewSyscallError("connect", syscall.ENETUNREACH)), ErrDial, ""},
		{"not found", dial(&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}), ErrDial, CauseNoSuchHost},
		{"lookup timed out", dial(&net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}), ErrDial, CauseLookup},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), ErrTimeout, ""},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, ErrTLS, CauseUntrusted},
		{"hostname", &url.Error{Op: "Get", URL: "https://x", Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "x", Certificate: &x509.Certificate{}}}}, ErrTLS, CauseHostname},
		{"expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, ErrTLS, CauseExpired},
		{"other invalid", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}}, ErrTLS, ""},
		{"HTTP from an https URL", &url.Error{Op: "Get", URL: "https://x", Err: http.ErrSchemeMismatch}, ErrTLS, CauseNotTLS},
		{"net/http: not HTTP", errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "SSH-2.0"`), ErrProtocol, ""},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ErrReset, ""},
		{"EOF", io.ErrUnexpectedEOF, ErrReset, ""},
	}
	for _, c := range cases {
		if got := classify(c.err); got.Kind != c.kind || got.Cause != c.cause || got.Message != c.err.Error() {
			t.Errorf("%s: classify = %+v; want kind %s, cause %q, the error's message", c.name, got, c.kind, c.cause)
		}
	}
}
