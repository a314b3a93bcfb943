package sidecar

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/zerohop/zerohop/config"
)

// listenerTLS returns the TLS configuration of listener l, nil for a
// plain listener, and sets the protocols it serves: HTTP/1.1 and HTTP/2
// through ALPN on TLS, HTTP/1.1 and h2c without. A TLS listener is served
// by net/http alone, without the fast path (docs/tls.md): net/http must
// see the *tls.Conn to run the handshake under its timeouts, negotiate
// HTTP/2 and give each request its connection state.
func (s *Sidecar) listenerTLS(l config.Listener, protos *http.Protocols) (*tls.Config, error) {
	if l.TLS == nil {
		return nil, nil
	}
	cfg, err := s.proxy.ListenerTLS(l)
	if err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	protos.SetUnencryptedHTTP2(false)
	protos.SetHTTP2(true)
	return cfg, nil
}
