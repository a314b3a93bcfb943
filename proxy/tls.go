package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/tlsfiles"
)

// TLS on both sides: clusters' https endpoints (server verification
// against a CA file, SNI, minimum version, client certificates) and the
// listeners that terminate TLS. Certificate, key and CA files are held by
// a tlsfiles.Watcher, which reloads them when they rotate; the TLS
// configurations read the watcher's current material at each handshake,
// so a rotation needs no restart and closes no connection.

// tlsMetrics count certificate file reloads.
type tlsMetrics struct {
	reloads  *prometheus.CounterVec // kind, name, result
	notAfter *prometheus.GaugeVec   // kind, name
	refused  *prometheus.CounterVec // listener, reason
	log      *slog.Logger           // the proxy's
}

func (t *tlsMetrics) init() []prometheus.Collector {
	t.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_tls_reloads_total",
		Help: "Certificate, key and CA files reloaded after they changed on disk, by owner (kind cluster or listener, name) and result: ok, or error (the files did not load and the previous ones stay in use).",
	}, []string{"kind", "name", "result"})
	t.notAfter = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zerohop_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate in use (a listener's, or a cluster's client certificate) expires, in Unix seconds.",
	}, []string{"kind", "name"})
	t.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_tls_client_refused_total",
		Help: "TLS handshakes a listener with client_ca_file refused, by reason: no_certificate, or untrusted (a certificate that does not chain to the client CAs or is not for client authentication).",
	}, []string{"listener", "reason"})
	return []prometheus.Collector{t.reloads, t.notAfter, t.refused}
}

// watch starts a watcher for files, counting its reloads under kind and
// name.
func (t *tlsMetrics) watch(kind, name string, files tlsfiles.Files) (*tlsfiles.Watcher, error) {
	ok, failed := t.reloads.WithLabelValues(kind, name, "ok"), t.reloads.WithLabelValues(kind, name, "error")
	w, err := tlsfiles.NewWatcher(files, tlsfiles.Options{
		Name:   kind + " " + name,
		Logger: t.log,
		OnReload: func(m *tlsfiles.Material, err error) {
			if err != nil {
				failed.Inc()
				return
			}
			ok.Inc()
			t.expiry(kind, name, m)
		},
	})
	if err != nil {
		return nil, err
	}
	t.expiry(kind, name, w.Current())
	return w, nil
}

func (t *tlsMetrics) expiry(kind, name string, m *tlsfiles.Material) {
	if m.Cert != nil {
		t.notAfter.WithLabelValues(kind, name).Set(float64(m.Cert.Leaf.NotAfter.Unix()))
	}
}

// upstreamTLS builds the TLS configuration of c's tls section, starting
// the watcher of its files; nil for none (system roots, server name from
// the URL, TLS 1.2 or later).
func (c *cluster) upstreamTLS(m *metrics) (*tls.Config, error) {
	tc := c.cfg.TLS
	if tc == nil {
		return nil, nil
	}
	o := tlsfiles.ClientOptions{ServerName: tc.ServerName, MinVersion: tc.MinVersion.ID(), InsecureSkipVerify: tc.InsecureSkipVerify}
	files := tc.Files()
	if files == (tlsfiles.Files{}) {
		return tlsfiles.ClientConfig(nil, o), nil
	}
	w, err := m.tls.watch("cluster", c.name, files)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.tlsFiles = w
	return tlsfiles.ClientConfig(w, o), nil
}

func (c *cluster) closeTLS() {
	if c.tlsFiles != nil {
		c.tlsFiles.Close()
	}
}

// close releases a cluster that is no longer used: its idle connections
// and its certificate files' watcher.
func (c *cluster) close() {
	c.transport.CloseIdleConnections()
	c.closeTLS()
}

// closeNew closes the clusters of st that a failed compile made (those
// not in old): their certificate watchers would otherwise run on.
func closeNew(st, old *state) {
	for name, c := range st.clusters {
		if old == nil || old.clusters[name] != c {
			c.close()
		}
	}
}

// tlsFailure says what went wrong in an upstream TLS handshake, for the
// 502's body; "" if err is not a TLS failure.
func tlsFailure(err error) string {
	var (
		verr *tls.CertificateVerificationError
		op   *net.OpError
		rec  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verr):
		return "upstream TLS certificate not trusted"
	case errors.As(err, &op) && op.Op == "remote error": // crypto/tls's spelling of an alert received
		return "upstream TLS handshake refused: " + op.Err.Error()
	case errors.As(err, &rec):
		return "upstream did not answer TLS"
	}
	return ""
}

// h2cOnly is the protocol set of client h2c: HTTP/2 with prior knowledge
// on plain TCP (net/http's Transport then sends http:// requests as h2c).
func h2cOnly() *http.Protocols {
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	return &ps
}

// listenerTLS holds the watchers of the TLS listeners' files, closed with
// the proxy.
type listenerTLS struct {
	mu       sync.Mutex
	watchers []*tlsfiles.Watcher
}

func (l *listenerTLS) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.watchers {
		w.Close()
	}
	l.watchers = nil
}

// ListenerTLS returns the server TLS configuration of listener l (its tls
// section must be set): the certificate, and the client CAs if set, are
// read from their files and reloaded when the files change, until Close.
// The caller adds the ALPN protocols (net/http's ServeTLS does).
func (p *Proxy) ListenerTLS(l config.Listener) (*tls.Config, error) {
	if l.TLS == nil {
		return nil, fmt.Errorf("proxy: listener %q has no tls section", l.Name)
	}
	w, err := p.m.tls.watch("listener", l.Name, l.TLS.Files())
	if err != nil {
		return nil, fmt.Errorf("proxy: listener %q: tls: %w", l.Name, err)
	}
	p.listenerTLS.mu.Lock()
	p.listenerTLS.watchers = append(p.listenerTLS.watchers, w)
	p.listenerTLS.mu.Unlock()
	noCert, untrusted := p.m.tls.refused.WithLabelValues(l.Name, "no_certificate"), p.m.tls.refused.WithLabelValues(l.Name, "untrusted")
	return tlsfiles.ServerConfig(w, tlsfiles.ServerOptions{
		MinVersion: l.TLS.MinVersion.ID(),
		OnClientRefused: func(err error) {
			if errors.Is(err, tlsfiles.ErrNoClientCert) {
				noCert.Inc()
			} else {
				untrusted.Inc()
			}
		},
	}), nil
}
