package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/testcerts"
)

// mtlsServer is an https server on 127.0.0.1 with the certificates of files, which demands a
// client certificate signed by their CA and answers with the client certificate's name.
func mtlsServer(t *testing.T, files testcerts.Files) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = files.Server
	srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url with a client using cfg and returns the body.
func get(cfg *tls.Config, url string) (string, error) {
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTLSConfigAgainstMTLSServer(t *testing.T) {
	t.Parallel()
	files := testcerts.New(t, t.TempDir())
	srv := mtlsServer(t, files)
	other := testcerts.New(t, t.TempDir()) // a CA and a client the server does not know

	unknownAuthority := func(err error) bool {
		var ua x509.UnknownAuthorityError
		return errors.As(err, &ua)
	}
	// refusedWith: the server refused the client with a TLS alert (which TLS 1.3 reports on the
	// client's first read).
	refusedWith := func(alert string) func(error) bool {
		return func(err error) bool {
			return strings.Contains(err.Error(), "remote error: tls: "+alert)
		}
	}
	tests := []struct {
		name          string
		cert, key, ca string
		insecure      bool
		wantErr       func(error) bool // nil: the request succeeds
		wantErrTxt    string
	}{
		{"client certificate and CA", files.ClientCert, files.ClientKey, files.CA, false, nil, ""},
		{"no client certificate", "", "", files.CA, false, refusedWith("certificate required"), "certificate required"},
		{"a client certificate of another CA", other.ClientCert, other.ClientKey, files.CA, false, refusedWith("unknown certificate authority"), "unknown certificate authority"},
		{"CA missing: system roots", files.ClientCert, files.ClientKey, "", false, unknownAuthority, "x509.UnknownAuthorityError"},
		{"another CA: only it is trusted", files.ClientCert, files.ClientKey, other.CA, false, unknownAuthority, "x509.UnknownAuthorityError"},
		{"insecure skips verification", files.ClientCert, files.ClientKey, "", true, nil, ""},
		{"insecure with a CA that does not match", files.ClientCert, files.ClientKey, other.CA, true, nil, ""},
		{"insecure does not supply a client certificate", "", "", "", true, refusedWith("certificate required"), "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := TLSConfig(tt.cert, tt.key, tt.ca, tt.insecure)
			if err != nil {
				t.Fatalf("TLSConfig: %v", err)
			}
			if cfg == nil {
				t.Fatal("TLSConfig = nil; want a configuration")
			}
			body, err := get(cfg, srv.URL)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				if body != "conflictcheck test client" {
					t.Errorf("the server saw client %q; want conflictcheck test client", body)
				}
				return
			}
			if err == nil {
				t.Fatalf("GET succeeded; want an error: %s", tt.wantErrTxt)
			}
			if !tt.wantErr(err) {
				t.Errorf("GET: %v; want an error: %s", err, tt.wantErrTxt)
			}
		})
	}
}

func TestTLSConfigNone(t *testing.T) {
	t.Parallel()
	cfg, err := TLSConfig("", "", "", false)
	if cfg != nil || err != nil {
		t.Errorf("TLSConfig() = %v, %v; want nil, nil", cfg, err)
	}
}

func TestTLSConfigSettings(t *testing.T) {
	t.Parallel()
	files := testcerts.New(t, t.TempDir())
	cfg, err := TLSConfig(files.ClientCert, files.ClientKey, files.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify {
		t.Errorf("MinVersion = %x, InsecureSkipVerify = %v; want TLS 1.2 and false", cfg.MinVersion, cfg.InsecureSkipVerify)
	}
	if !cfg.RootCAs.Equal(files.Roots) {
		t.Error("RootCAs is not exactly the --ca pool")
	}
	// The certificate is offered even to a server naming other CAs.
	c, err := cfg.Clone().GetClientCertificate(&tls.CertificateRequestInfo{AcceptableCAs: [][]byte{[]byte("another CA")}})
	if err != nil || c == nil || len(c.Certificate) == 0 {
		t.Errorf("GetClientCertificate = %v, %v; want the client certificate", c, err)
	}
	insecure, err := TLSConfig("", "", "", true)
	if err != nil || insecure == nil || !insecure.InsecureSkipVerify || insecure.RootCAs != nil || insecure.GetClientCertificate != nil {
		t.Errorf("TLSConfig(insecure) = %+v, %v; want only InsecureSkipVerify", insecure, err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	files := testcerts.New(t, t.TempDir())
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not.pem", "hello\n")
	missing := filepath.Join(dir, "nope.pem")
	tests := []struct {
		name          string
		cert, key, ca string
		want          string
	}{
		{"cert without key", files.ClientCert, "", "", "--cert and --key go together"},
		{"key without cert", "", files.ClientKey, files.CA, "--cert and --key go together"},
		{"CA not PEM", "", "", notPEM, "--ca " + notPEM + ": no PEM certificate in it"},
		{"CA is a key", "", "", files.ClientKey, "--ca " + files.ClientKey + ": no PEM certificate in it"},
		{"CA missing", "", "", missing, "--ca " + missing + ": no such file or directory"},
		{"cert missing", missing, files.ClientKey, "", "--cert " + missing + " / --key " + files.ClientKey + ": open " + missing + ": no such file or directory"},
		{"key missing", files.ClientCert, missing, "", "--cert " + files.ClientCert + " / --key " + missing + ": open " + missing + ": no such file or directory"},
		{"cert not PEM", notPEM, files.ClientKey, "", "--cert " + notPEM + " / --key " + files.ClientKey + ": tls: failed to find any PEM data in certificate input"},
		{"key of another certificate", files.ClientCert, files.ServerKey, "", "--cert " + files.ClientCert + " / --key " + files.ServerKey + ": tls: private key does not match public key"},
		{"cert and key swapped", files.ClientKey, files.ClientCert, "", "--cert " + files.ClientKey + " / --key " + files.ClientCert + ": tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := TLSConfig(tt.cert, tt.key, tt.ca, false)
			if err == nil || err.Error() != tt.want {
				t.Errorf("TLSConfig = %v, %v; want error %q", cfg, err, tt.want)
			}
			if cfg != nil {
				t.Errorf("TLSConfig = %v with an error; want nil", cfg)
			}
		})
	}
}
