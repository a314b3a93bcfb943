package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ErrNoClientCert: a listener that requires client certificates got a
// handshake without one.
var ErrNoClientCert = errors.New("tlsfiles: client certificate required")

// ClientOptions shape a TLS client configuration.
type ClientOptions struct {
	// ServerName is sent as SNI and verified; "" = the dialled host.
	ServerName string
	// MinVersion is the lowest TLS version accepted. 0 = TLS 1.2.
	MinVersion uint16
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
}

// ClientConfig returns a client configuration whose client certificate
// (if w has one) and roots (w's CA pool, else the system's) are w's
// current ones at each handshake. w may be nil: no files, system roots.
func ClientConfig(w *Watcher, o ClientOptions) *tls.Config {
	cfg := &tls.Config{ServerName: o.ServerName, MinVersion: minVersion(o.MinVersion), InsecureSkipVerify: o.InsecureSkipVerify}
	if w == nil {
		return cfg
	}
	if w.Current().Cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return w.Current().Cert, nil
		}
	}
	if w.Current().Pool != nil && !o.InsecureSkipVerify {
		// tls.Config.RootCAs cannot change under a live configuration:
		// verify here, against the pool of the moment, instead. This is
		// the documented use of InsecureSkipVerify with VerifyConnection;
		// the checks are crypto/tls's own (chain and name).
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPeer(cs, w.Current().Pool, cs.ServerName, x509.ExtKeyUsageServerAuth)
		}
	}
	return cfg
}

// ServerOptions shape a TLS server configuration.
type ServerOptions struct {
	// MinVersion is the lowest TLS version accepted. 0 = TLS 1.2.
	MinVersion uint16
	// OnClientRefused is called when a client's certificate is missing
	// (err is ErrNoClientCert) or does not verify. Default none.
	OnClientRefused func(err error)
}

// ServerConfig returns a server configuration presenting w's current
// certificate; if w has a CA pool, clients must present a certificate
// that chains to it (mutual TLS). w must have a certificate.
func ServerConfig(w *Watcher, o ServerOptions) *tls.Config {
	cfg := &tls.Config{
		MinVersion: minVersion(o.MinVersion),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return w.Current().Cert, nil
		},
	}
	if w.Current().Pool != nil {
		// ClientCAs, like RootCAs, is fixed in a configuration: ask for
		// any certificate and verify it against the current pool.
		// RequestClientCert rather than RequireAnyClientCert: a client
		// without one reaches VerifyConnection too, and is counted.
		cfg.ClientAuth = tls.RequestClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			err := ErrNoClientCert
			if len(cs.PeerCertificates) > 0 {
				err = verifyPeer(cs, w.Current().Pool, "", x509.ExtKeyUsageClientAuth)
			}
			if err != nil && o.OnClientRefused != nil {
				o.OnClientRefused(err)
			}
			return err
		}
	}
	return cfg
}

func minVersion(v uint16) uint16 {
	if v == 0 {
		return tls.VersionTLS12
	}
	return v
}

// verifyPeer verifies the peer's chain against roots, and its name when
// name is not "".
func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, name string, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsfiles: peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		// The error crypto/tls's own verification returns, so that callers
		// tell a certificate failure the same way in both cases.
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
