package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig is the client TLS configuration of --cert/--key (a client certificate, for mTLS),
// --ca (a PEM bundle: the only roots trusted, as curl's --cacert, not added to the system's)
// and --insecure (no verification of the target's certificate); nil when none is given, for
// the system roots. Errors name the flag and the file.
func TLSConfig(certFile, keyFile, caFile string, insecure bool) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if certFile == "" && caFile == "" && !insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // asked for by --insecure
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert %s / --key %s: %w", certFile, keyFile, err)
		}
		// The certificate is presented whenever the server asks, whatever CAs it names: like
		// curl, and unlike tls.Config.Certificates, which stays silent when the server's list of
		// acceptable CAs misses the certificate's issuer (say, an intermediate).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca %s: %w", caFile, pathCause(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
