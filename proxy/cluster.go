package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"syscall"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/tlsfiles"
	"github.com/zerohop/zerohop/proxy/internal/balance"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// cluster is a compiled config.Cluster: its endpoints and one connection
// pool shared by them.
type cluster struct {
	name      string
	cfg       config.Cluster
	endpoints []endpoint
	lb        *lbState // balancing and endpoint health (balance.go)
	transport upstreamClient
	tlsFiles  *tlsfiles.Watcher // the cluster's certificate files; nil: none
	tlsConfig *tls.Config       // what its connections use (and its health checks); nil: plain or defaults
	cred      *credential       // outbound credentials (credentials.go); nil: none
	lim       *limits           // circuit breakers, retry budget and policy (breaker.go)
}

// upstreamClient is a pool of upstream connections: an *h1.Transport, or
// an *http.Transport for clusters that use net/http (client: std, and by
// default those with TLS, where it may negotiate HTTP/2).
type upstreamClient interface {
	http.RoundTripper
	CloseIdleConnections()
}

type endpoint struct {
	url    *url.URL
	weight int
	key    string        // the configured URL: endpoint state survives reloads by it
	label  string        // "cluster/host:port", for logs
	host   *balance.Host // availability and counters
	// hostHeader is the Host of requests to an address resolved from a
	// name (dns_refresh): the name. "" otherwise: the URL's host.
	hostHeader string
}

func newCluster(cc config.Cluster, m *metrics) (*cluster, error) {
	c := &cluster{name: cc.Name, cfg: cc}
	for _, e := range cc.Endpoints {
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, fmt.Errorf("proxy: cluster %q: endpoint %q: %w", cc.Name, e.URL, err)
		}
		c.endpoints = append(c.endpoints, endpoint{url: u, weight: e.Weight, key: e.URL, label: cc.Name + "/" + u.Host})
	}
	if len(c.endpoints) == 0 {
		return nil, fmt.Errorf("proxy: cluster %q has no endpoints", cc.Name)
	}
	tlsConfig, err := c.upstreamTLS(m)
	if err != nil {
		return nil, fmt.Errorf("proxy: cluster %q: %w", cc.Name, err)
	}
	c.tlsConfig = tlsConfig
	t, err := newTransport(upstreamOptions{
		connect: cc.ConnectTimeout, response: cc.ResponseTimeout, bodyIdle: cc.BodyIdleTimeout,
		maxIdle: cc.MaxIdleConns, tls: tlsConfig, client: cc.EffectiveClient(),
	}, newUpstreamEvents(m, cc.Name))
	if err != nil {
		c.closeTLS()
		return nil, fmt.Errorf("proxy: cluster %q: %w", cc.Name, err)
	}
	c.transport = t
	c.lim = newLimits(cc)
	return c, nil
}

// sameConfig reports whether a reload can keep this cluster (and so its
// warm connection pool) for cc.
func (c *cluster) sameConfig(cc config.Cluster) bool { return reflect.DeepEqual(c.cfg, cc) }

// upstreamOptions are a pool's settings: a cluster's, or the egress
// pool's defaults.
type upstreamOptions struct {
	connect, response time.Duration // 0: none
	bodyIdle          time.Duration // 0: none
	maxIdle           int           // <= 0: 64
	tls               *tls.Config   // nil: system roots, TLS 1.2 or later
	client            config.ClusterClient
	// control checks each address dialled (net.Dialer.ControlContext),
	// and checkConn (h1 only) the connection each request goes on:
	// forward mode's egress guard and policy. Nil: none.
	control   func(ctx context.Context, network, address string, c syscall.RawConn) error
	checkConn func(ctx context.Context, c net.Conn, reused bool) error
}

// newTransport builds an upstream connection pool with the client named,
// counting its refusals in ev. Neither client consults HTTP_PROXY: the
// sidecar is the proxy, and honouring the variable the app container
// shares would loop requests back into it. Neither adds Accept-Encoding:
// the proxy negotiates compression with the app itself, and upstream sees
// the app's header unchanged.
func newTransport(o upstreamOptions, ev *upstreamEvents) (upstreamClient, error) {
	connect, response, maxIdle := o.connect, o.response, o.maxIdle
	if maxIdle <= 0 {
		maxIdle = 64
	}
	tlsConfig := o.tls
	if o.client == config.ClientH1 {
		if connect == 0 {
			connect = -1 // config: 0 = none; h1: 0 = its default
		}
		return h1.New(h1.Options{
			DialTimeout:           connect,
			ResponseHeaderTimeout: response,
			IdleConnTimeout:       90 * time.Second,
			MaxIdlePerHost:        maxIdle,
			MaxInterimResponses:   maxInterim,
			BodyIdleTimeout:       o.bodyIdle,
			OnEvent:               ev.on,
			TLSConfig:             tlsConfig,
			ControlContext:        o.control,
			CheckConn:             o.checkConn,
		}), nil
	}
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second, ControlContext: o.control}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          maxIdle * 4,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: response,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		TLSClientConfig:       tlsConfig,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	if o.client == config.ClientH2C {
		t.Protocols = h2cOnly()
	}
	return &stdClient{Transport: t, bodyIdle: o.bodyIdle, events: ev}, nil
}
