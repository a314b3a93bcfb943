package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/zerohop/zerohop/internal/tlsfiles"
)

// TLSVersion is a TLS protocol version: "1.2" or "1.3".
type TLSVersion string

// TLS versions.
const (
	TLS12 TLSVersion = "1.2"
	TLS13 TLSVersion = "1.3"
)

// ID returns the crypto/tls constant of v; TLS 1.2 for "" and for values
// Validate rejects.
func (v TLSVersion) ID() uint16 {
	if v == TLS13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// UpstreamTLS is TLS towards a cluster's endpoints (https:// URLs). Files
// are PEM, read at load (a file that is missing or does not parse fails
// validation), and reloaded when they change on disk (a Kubernetes Secret
// update, a renamed-in replacement): new connections use the new
// material, open ones keep theirs, and files that do not load are
// refused, logged and counted (zerohop_tls_reloads_total{result="error"})
// with the previous material still in use. Relative paths are relative to
// zerohop's working directory.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the roots that endpoint certificates must
	// chain to, replacing the system roots. Default "" = system roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any endpoint certificate, unverified.
	// Default false. Excludes ca_file.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ServerName is sent as SNI and is the name the endpoint certificate
	// must carry. Default "" = the endpoint URL's host (an IP address is
	// verified against the certificate's IP addresses and not sent as SNI).
	ServerName string `yaml:"server_name"`
	// CertFile is the client certificate chain (PEM) presented to
	// endpoints that ask for one: mutual TLS. Default "" = none. Requires
	// key_file.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key (PEM) of cert_file. Default "". Requires
	// cert_file, and must match it.
	KeyFile string `yaml:"key_file"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	// Default "1.2".
	MinVersion TLSVersion `yaml:"min_version"`
}

func (t *UpstreamTLS) setDefaults() { t.MinVersion = TLS12 }

// Files returns the files t names, for a tlsfiles.Watcher.
func (t *UpstreamTLS) Files() tlsfiles.Files {
	return tlsfiles.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile}
}

// ListenerTLS terminates TLS on a listener: the listener serves HTTPS,
// with HTTP/2 offered through ALPN besides HTTP/1.1 (a reverse listener
// for ingress; a forward listener becomes an https:// proxy). The
// files are PEM, read at load (missing or unparsable files fail
// validation) and reloaded when they change, as for UpstreamTLS: new
// handshakes present the new certificate, open connections are not
// touched. A TLS listener does not use the HTTP/1.1 fast path
// (docs/tls.md says why): fast_path is off, and may not be set true.
// Adding, removing or changing tls takes a restart, like every listener
// setting; the files themselves rotate without one.
type ListenerTLS struct {
	// CertFile is the server certificate chain. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is its private key. Required; must match cert_file.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, if set, requires every client to present a
	// certificate that chains to one of its CAs and is valid for client
	// authentication (mutual TLS); a client without one fails the
	// handshake. Default "" = no client certificates asked for.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	// Default "1.2".
	MinVersion TLSVersion `yaml:"min_version"`
}

func (t *ListenerTLS) setDefaults() { t.MinVersion = TLS12 }

// Files returns the files t names, for a tlsfiles.Watcher.
func (t *ListenerTLS) Files() tlsfiles.Files {
	return tlsfiles.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.ClientCAFile}
}

// deriveTLS turns the fast path off on TLS listeners whose file did not
// set fast_path: its default is true only for plain listeners.
func (c *Config) deriveTLS(pos map[string]position) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if _, set := pos[fmt.Sprintf("listeners[%d].fast_path", i)]; l.TLS != nil && !set {
			l.FastPath = false
		}
	}
}

// UsesFastPath reports whether the listener runs the HTTP/1.1 fast path:
// FastPath, and no TLS (the fast path reads the plain socket).
func (l *Listener) UsesFastPath() bool { return l.FastPath && l.TLS == nil }

func (v *validator) tlsVersion(p string, ver TLSVersion) {
	switch ver {
	case TLS12, TLS13:
	default:
		v.errorf(p, "invalid TLS version %q: must be %q or %q", ver, TLS12, TLS13)
	}
}

// tlsFile checks that a PEM file exists and is a regular file; what it
// holds is checked by tlsPair and tlsPool.
func (v *validator) tlsFile(p, file string) bool {
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		v.errorf(p, "%v", err)
		return false
	case fi.IsDir():
		v.errorf(p, "%s is a directory, not a PEM file", file)
		return false
	}
	return true
}

// tlsPair checks that cert and key files load as a pair.
func (v *validator) tlsPair(p, certField, keyField, cert, key string) {
	switch {
	case cert == "" && key == "":
		return
	case cert == "":
		v.errorf(p+"."+certField, "required with %s", keyField)
		return
	case key == "":
		v.errorf(p+"."+keyField, "required with %s", certField)
		return
	}
	okC, okK := v.tlsFile(p+"."+certField, cert), v.tlsFile(p+"."+keyField, key)
	if !okC || !okK {
		return
	}
	if _, err := tlsfiles.LoadKeyPair(cert, key); err != nil {
		v.errorf(p+"."+certField, "%s", strings.TrimPrefix(err.Error(), "tlsfiles: "))
	}
}

func (v *validator) tlsPool(p, file string) {
	if file == "" || !v.tlsFile(p, file) {
		return
	}
	if _, err := tlsfiles.LoadPool(file); err != nil {
		v.errorf(p, "%s", strings.TrimPrefix(err.Error(), "tlsfiles: "))
	}
}

// upstreamTLS validates a cluster's tls section (p is the cluster's path).
func (v *validator) upstreamTLS(p string, c *Cluster) {
	if c.Client == ClientH2C {
		for j, e := range c.Endpoints {
			if !strings.HasPrefix(strings.ToLower(e.URL), "http://") {
				v.errorf(fmt.Sprintf("%s.endpoints[%d].url", p, j), "client h2c speaks HTTP/2 without TLS: endpoints must be http://, got %q (https endpoints negotiate HTTP/2 with client std)", e.URL)
			}
		}
		if c.TLS != nil {
			v.errorf(p+".tls", "client h2c speaks HTTP/2 without TLS: remove tls, or use client std for HTTP/2 over TLS")
		}
	}
	t := c.TLS
	if t == nil {
		return
	}
	p += ".tls"
	v.tlsVersion(p+".min_version", t.MinVersion)
	if t.InsecureSkipVerify && t.CAFile != "" {
		v.errorf(v.first(p+".insecure_skip_verify", p+".ca_file"), "insecure_skip_verify ignores ca_file: set one or the other")
	}
	if t.ServerName != "" && !isHostname(t.ServerName) {
		v.errorf(p+".server_name", "invalid server name %q: a DNS name", clip(t.ServerName))
	}
	v.tlsPool(p+".ca_file", t.CAFile)
	v.tlsPair(p, "cert_file", "key_file", t.CertFile, t.KeyFile)
}

// listenerTLS validates a listener's tls section (p is the listener's path).
func (v *validator) listenerTLS(p string, l *Listener) {
	t := l.TLS
	if t == nil {
		return
	}
	if l.FastPath {
		v.errorf(p+".fast_path", "the fast path does not serve TLS listeners (docs/tls.md): remove fast_path or set it false")
	}
	p += ".tls"
	if t.CertFile == "" {
		v.errorf(p+".cert_file", "required: the listener's certificate")
	}
	if t.KeyFile == "" {
		v.errorf(p+".key_file", "required: the private key of cert_file")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		v.tlsPair(p, "cert_file", "key_file", t.CertFile, t.KeyFile)
	}
	v.tlsPool(p+".client_ca_file", t.ClientCAFile)
	v.tlsVersion(p+".min_version", t.MinVersion)
}
