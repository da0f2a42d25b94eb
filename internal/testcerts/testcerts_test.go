package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
)

// TestNew: the server certificate verifies for 127.0.0.1 against the CA and only against it,
// and the client certificate verifies for client authentication.
func TestNew(t *testing.T) {
	t.Parallel()
	f := New(t, t.TempDir())
	for _, p := range []string{f.CA, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", p, fi.Mode().Perm())
		}
	}
	srv, cli := parse(t, f.ServerCert), parse(t, f.ClientCert)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: host, Roots: f.Roots}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: New(t, t.TempDir()).Roots}); err == nil {
		t.Error("server certificate verified against another CA")
	}
	if _, err := cli.Verify(x509.VerifyOptions{Roots: f.Server.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey); err != nil {
		t.Errorf("client key pair: %v", err)
	}
	if f.Server.ClientAuth != tls.NoClientCert || len(f.Server.Certificates) != 1 {
		t.Errorf("Server: ClientAuth %v, %d certificates; want NoClientCert and one", f.Server.ClientAuth, len(f.Server.Certificates))
	}
}

// TestNewServes: a TLS server with Server and RequireAndVerifyClientCert accepts the client
// certificate over loopback.
func TestNewServes(t *testing.T) {
	t.Parallel()
	f := New(t, t.TempDir())
	cfg := f.Server
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
		_, _ = c.Write([]byte("x"))
	}()
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: f.Roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Errorf("read after the handshake: %v", err)
	}
	if got := c.ConnectionState().PeerCertificates[0].IPAddresses; len(got) == 0 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("server certificate IPs = %v; want 127.0.0.1 first", got)
	}
}

func parse(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
