package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"time"

	"github.com/zerohop/zerohop/internal/config"
)

// cluster is a compiled config.Cluster: its endpoints and one connection
// pool shared by them.
type cluster struct {
	name      string
	cfg       config.Cluster
	endpoints []endpoint
	total     int // sum of weights
	transport *http.Transport
}

type endpoint struct {
	url    *url.URL
	weight int
}

func newCluster(cc config.Cluster) (*cluster, error) {
	c := &cluster{name: cc.Name, cfg: cc}
	for _, e := range cc.Endpoints {
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, fmt.Errorf("proxy: cluster %q: endpoint %q: %w", cc.Name, e.URL, err)
		}
		c.endpoints = append(c.endpoints, endpoint{url: u, weight: e.Weight})
		c.total += e.Weight
	}
	if len(c.endpoints) == 0 {
		return nil, fmt.Errorf("proxy: cluster %q has no endpoints", cc.Name)
	}
	t, err := newTransport(cc.ConnectTimeout, cc.ResponseTimeout, cc.MaxIdleConns, cc.TLS)
	if err != nil {
		return nil, fmt.Errorf("proxy: cluster %q: %w", cc.Name, err)
	}
	c.transport = t
	return c, nil
}

// sameConfig reports whether a reload can keep this cluster (and so its
// warm connection pool) for cc.
func (c *cluster) sameConfig(cc config.Cluster) bool { return reflect.DeepEqual(c.cfg, cc) }

// pick chooses an endpoint in proportion to weight. Weight 0 drains.
func (c *cluster) pick() *endpoint {
	if len(c.endpoints) == 1 || c.total <= 0 {
		return &c.endpoints[0]
	}
	n := rand.IntN(c.total)
	for i := range c.endpoints {
		if n < c.endpoints[i].weight {
			return &c.endpoints[i]
		}
		n -= c.endpoints[i].weight
	}
	return &c.endpoints[len(c.endpoints)-1]
}

// newTransport builds an upstream connection pool. It never consults
// HTTP_PROXY: the sidecar is the proxy, and honouring the variable the app
// container shares would loop requests back into it.
func newTransport(connect, response time.Duration, maxIdle int, tc *config.UpstreamTLS) (*http.Transport, error) {
	if maxIdle <= 0 {
		maxIdle = 64
	}
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          maxIdle * 4,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: response,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		// The proxy negotiates compression with the app itself; upstream
		// sees the app's Accept-Encoding unchanged.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	if tc != nil {
		cfg := &tls.Config{ServerName: tc.ServerName, InsecureSkipVerify: tc.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if tc.CAFile != "" {
			pem, err := os.ReadFile(tc.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca_file %s: no certificates", tc.CAFile)
			}
			cfg.RootCAs = pool
		}
		t.TLSClientConfig = cfg
	}
	return t, nil
}
