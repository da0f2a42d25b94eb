// Package testcerts writes a throwaway PKI for tests of TLS against loopback servers: a CA, a
// server certificate for 127.0.0.1, ::1 and localhost signed by it, and a client certificate
// (for mTLS) signed by it, as PEM files a CLI takes (--ca, --cert, --key).
//
//	files := testcerts.New(t, t.TempDir())
//	srv := httptest.NewUnstartedServer(h)
//	srv.TLS = files.Server                             // serves files.ServerCert
//	srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert // to demand files.ClientCert (mTLS)
//	srv.StartTLS()
//
// A client that is not given files.CA sees an untrusted certificate (unknown authority).
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Files are the paths of the PEM files New wrote, and the server's TLS configuration.
type Files struct {
	// CA is the CA certificate (ca.pem): what --ca takes to trust the server.
	CA string
	// ServerCert and ServerKey are the server's certificate (server.pem) and key
	// (server-key.pem), valid for 127.0.0.1, ::1 and localhost.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the client's certificate (client.pem) and key
	// (client-key.pem): what --cert and --key take.
	ClientCert, ClientKey string
	// Roots is a pool holding only the CA, for a client configured in Go.
	Roots *x509.CertPool
	// Server is a fresh server TLS configuration: the server certificate, and ClientCAs set to
	// the CA so that setting ClientAuth to tls.RequireAndVerifyClientCert demands the client
	// certificate. ClientAuth is left at tls.NoClientCert.
	Server *tls.Config
}

// New writes a CA, a server and a client certificate with their keys into dir (which must
// exist) and returns their paths. Each call makes a new CA. It fails t on any error.
func New(t testing.TB, dir string) Files {
	t.Helper()
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "conflictcheck test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatalf("testcerts: create the CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testcerts: parse the CA certificate: %v", err)
	}

	leaf := func(cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (der []byte, key *ecdsa.PrivateKey) {
		key = newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatalf("testcerts: create the %s certificate: %v", cn, err)
		}
		return der, key
	}
	srvDER, srvKey := leaf("127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
	cliDER, cliKey := leaf("conflictcheck test client", x509.ExtKeyUsageClientAuth, nil, nil)

	f := Files{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
		Roots:      x509.NewCertPool(),
	}
	f.Roots.AddCert(ca)
	writePEM(t, f.CA, "CERTIFICATE", caDER)
	writePEM(t, f.ServerCert, "CERTIFICATE", srvDER)
	writePEM(t, f.ServerKey, "PRIVATE KEY", marshalKey(t, srvKey))
	writePEM(t, f.ClientCert, "CERTIFICATE", cliDER)
	writePEM(t, f.ClientKey, "PRIVATE KEY", marshalKey(t, cliKey))

	srvCert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatalf("testcerts: load the server certificate: %v", err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca)
	f.Server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{srvCert},
		ClientCAs:    clientCAs,
	}
	return f
}

// newKey is a fresh P-256 key: quick to make, accepted everywhere.
func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: generate a key: %v", err)
	}
	return k
}

// serial is a random certificate serial number, so two CAs of one test never clash.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("testcerts: serial number: %v", err)
	}
	return n
}

func marshalKey(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatalf("testcerts: marshal a key: %v", err)
	}
	return der
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}
