package proxy

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
)

// healthChecker runs a cluster's active health checks (health_check):
// one goroutine per endpoint, each a GET of the path every interval plus
// jitter, over a connection pool of its own so that checks neither wait
// behind nor count against the app's requests.
type healthChecker struct {
	c       *cluster
	cfg     config.HealthCheck
	client  *http.Client
	tr      *http.Transport
	log     *slog.Logger
	results []healthCounters // per endpoint
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type healthCounters struct{ success, failure prometheus.Counter }

func newHealthChecker(c *cluster, hc config.HealthCheck, m *metrics, log *slog.Logger) *healthChecker {
	tlsConfig := c.tlsConfig.Clone() // the cluster's: its CA, server name and client certificate
	d := &net.Dialer{Timeout: hc.Timeout}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2*hc.Interval + hc.Jitter,
		DisableCompression:  true,
	}
	h := &healthChecker{c: c, cfg: hc, tr: tr, log: log,
		client: &http.Client{Transport: tr, Timeout: hc.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	for i := range c.endpoints {
		host := c.endpoints[i].url.Host
		h.results = append(h.results, healthCounters{
			success: m.healthChecks.WithLabelValues(c.name, host, "success"),
			failure: m.healthChecks.WithLabelValues(c.name, host, "failure"),
		})
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

func (h *healthChecker) start() {
	h.once.Do(func() {
		for i := range h.c.endpoints {
			if h.c.endpoints[i].weight == 0 {
				continue // drained: no traffic to protect
			}
			h.wg.Add(1)
			go h.run(i)
		}
	})
}

// stop ends the checks and waits for them: a reload's new cluster takes
// over the endpoints' state.
func (h *healthChecker) stop() {
	h.cancel()
	h.wg.Wait()
	h.tr.CloseIdleConnections()
}

// run checks endpoint i until stopped: at once (plus jitter), then every
// interval plus jitter.
func (h *healthChecker) run(i int) {
	defer h.wg.Done()
	t := time.NewTimer(h.jitter())
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.check(i)
		t.Reset(h.cfg.Interval + h.jitter())
	}
}

func (h *healthChecker) jitter() time.Duration {
	if h.cfg.Jitter <= 0 {
		return 0
	}
	return rand.N(h.cfg.Jitter)
}

// check makes one check of endpoint i and records its result.
func (h *healthChecker) check(i int) {
	ep := &h.c.endpoints[i]
	ok, why := h.probe(ep)
	if h.ctx.Err() != nil {
		return // stopped mid-check: the result says nothing
	}
	if ok {
		h.results[i].success.Inc()
	} else {
		h.results[i].failure.Inc()
	}
	if ep.host.CheckResult(ok, h.cfg.HealthyThreshold, h.cfg.UnhealthyThreshold) {
		if ok {
			h.log.Info("endpoint healthy", "cluster", h.c.name, "endpoint", ep.url.Host)
		} else {
			h.log.Warn("endpoint unhealthy", "cluster", h.c.name, "endpoint", ep.url.Host, "reason", why)
		}
	}
}

// probe GETs the health path of ep; the body is read (up to 64 KiB) so
// that the connection can be reused.
func (h *healthChecker) probe(ep *endpoint) (bool, string) {
	u := *ep.url
	u.Path, u.RawQuery = h.cfg.Path, ""
	if p, q, ok := cutQuery(h.cfg.Path); ok {
		u.Path, u.RawQuery = p, q
	}
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	switch {
	case h.cfg.Host != "":
		req.Host = h.cfg.Host
	case ep.hostHeader != "":
		req.Host = ep.hostHeader // an address of a name (dns_refresh)
	}
	req.Header.Set("User-Agent", "zerohop-health-check")
	resp, err := h.client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !slices.Contains(h.cfg.ExpectedStatuses, resp.StatusCode) {
		return false, "status " + resp.Status
	}
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

func cutQuery(path string) (string, string, bool) {
	for i := range len(path) {
		if path[i] == '?' {
			return path[:i], path[i+1:], true
		}
	}
	return path, "", false
}
