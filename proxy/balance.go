package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/balance"
)

// A cluster's load balancing (lb_policy), availability (health_check,
// outlier_detection) and their state. Endpoint state lives in
// balance.Host values kept by endpoint URL: a reload that rebuilds a
// cluster hands the same hosts to the new one, so an endpoint that was
// down or ejected stays so, and its counters go on.

// lbState is a cluster's balancer and what feeds it.
type lbState struct {
	bal    *balance.Balancer
	policy balance.Policy
	od     *balance.Detector // nil: no outlier detection
	hc     *healthChecker    // nil: no active health checks
	hash   hashKey
}

// hashKey is the request key a maglev or ring_hash cluster hashes.
type hashKey struct {
	header string // canonical header name
	cookie string
	source bool
}

var lbPolicies = map[config.LBPolicy]balance.Policy{
	"": balance.Random, config.LBRandom: balance.Random, config.LBRoundRobin: balance.RoundRobin,
	config.LBLeastRequest: balance.LeastRequest, config.LBMaglev: balance.Maglev, config.LBRingHash: balance.RingHash,
}

// newLB builds c's balancer over its endpoints, reusing the hosts of old
// (the cluster of the same name before a reload, or nil) by URL.
func newLB(c *cluster, old *cluster, m *metrics, log *slog.Logger) (*lbState, error) {
	cc := c.cfg
	prev := map[string]*balance.Host{}
	if old != nil && old.lb != nil {
		for i := range old.endpoints {
			prev[old.endpoints[i].key] = old.endpoints[i].host
		}
	}
	hosts := make([]*balance.Host, len(c.endpoints))
	weights := make([]int, len(c.endpoints))
	for i := range c.endpoints {
		ep := &c.endpoints[i]
		ep.host = prev[ep.key]
		if ep.host == nil {
			ep.host = balance.NewHost(ep.key)
		}
		hosts[i], weights[i] = ep.host, ep.weight
	}
	lb := &lbState{policy: lbPolicies[cc.LBPolicy]}
	if h := cc.HashPolicy; h != nil {
		lb.hash = hashKey{header: textproto.CanonicalMIMEHeaderKey(h.Header), cookie: h.Cookie, source: h.SourceAddress}
	}
	points, maxRing := cc.RingSizes()
	bal, err := balance.New(hosts, weights, balance.Options{Policy: lb.policy, PanicThreshold: cc.PanicThreshold,
		RingPoints: points, MaxRingSize: maxRing})
	if err != nil {
		return nil, err
	}
	lb.bal = bal
	if od := cc.OutlierDetection; od != nil {
		byHost := map[*balance.Host]*endpoint{}
		for i := range c.endpoints {
			byHost[c.endpoints[i].host] = &c.endpoints[i]
		}
		lb.od = balance.NewDetector(bal, balance.OutlierOptions{
			Consecutive5xx: od.Consecutive5xx, ConsecutiveGatewayFailure: od.ConsecutiveGatewayFailure,
			BaseEjectionTime: od.BaseEjectionTime, MaxEjectionTime: od.EffectiveMaxEjectionTime(),
			MaxEjectionPercent: od.MaxEjectionPercent,
			OnEject: func(h *balance.Host, d time.Duration) {
				ep := byHost[h]
				m.ejections.WithLabelValues(c.name, ep.url.Host).Inc()
				log.Warn("endpoint ejected", "cluster", c.name, "endpoint", ep.url.Host, "for", d, "ejections", h.Ejections())
			},
		})
	}
	if cc.HealthCheck != nil {
		lb.hc = newHealthChecker(c, *cc.HealthCheck, m, log)
	}
	return lb, nil
}

// pick chooses the endpoint of x's next upstream try, and remembers it
// for observe.
func (c *cluster) pick(x *exchange) *endpoint {
	key, ok := uint64(0), false
	if c.lb.policy == balance.Maglev || c.lb.policy == balance.RingHash {
		key, ok = c.lb.hash.of(x.in)
	}
	if x.ep != nil {
		// A try whose outcome nobody reported (a caller that retried
		// without going through modifyResponse or errorHandler): end its
		// count in flight, judging nothing.
		x.observeUpstream(0, errTryAbandoned)
	}
	ep := &c.endpoints[c.lb.bal.Pick(key, ok)]
	x.ep = ep
	return ep
}

// of hashes r's key; false when r has none.
func (k *hashKey) of(r *http.Request) (uint64, bool) {
	switch {
	case k.header != "":
		vv := r.Header[k.header]
		if len(vv) == 0 {
			return 0, false
		}
		h := balance.HashString(vv[0])
		for _, v := range vv[1:] {
			h = balance.Mix(h ^ balance.HashString(v))
		}
		return h, true
	case k.cookie != "":
		for _, line := range r.Header["Cookie"] {
			if v, ok := cookieValue(line, k.cookie); ok {
				return balance.HashString(v), true
			}
		}
		return 0, false
	case k.source:
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		return balance.HashString(ip), ip != ""
	}
	return 0, false
}

// cookieValue finds name's value in a Cookie field line ("a=1; b=2"),
// without the allocations of http.Request.Cookie.
func cookieValue(line, name string) (string, bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = strings.TrimSpace(part)
		if k, v, ok := strings.Cut(part, "="); ok && k == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}

// errTryAbandoned marks a try whose outcome was not reported.
var errTryAbandoned = errors.New("proxy: upstream try abandoned")

// observeUpstream records the outcome of x's upstream try at the
// endpoint pick chose: a response's status, or the error that stopped
// it. Only the first call after a pick counts.
func (x *exchange) observeUpstream(status int, err error) {
	if x == nil || x.ep == nil {
		return
	}
	ep := x.ep
	x.ep = nil
	lb := x.cluster.lb
	if lb.policy == balance.LeastRequest {
		ep.host.Release()
	}
	if lb.od != nil && lb.od.Observe(ep.host, outcome(x, status, err)) {
		x.decisions |= decEjected
	}
}

// outcome classifies a try for outlier detection, as Envoy does: 502,
// 503, 504 and failures to get a response are gateway failures; the
// client leaving or its body being too large say nothing of the
// endpoint.
func outcome(x *exchange, status int, err error) balance.Outcome {
	if err != nil {
		if err == errTryAbandoned {
			return balance.Local
		}
		ctx := x.in.Context()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && context.Cause(ctx) != errUpstreamTimeout {
			return balance.Local
		}
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return balance.Local
		}
		return balance.GatewayFailure
	}
	return outcome5xx(status)
}

// outcome5xx is outcome's judgement of a status.
func outcome5xx(status int) balance.Outcome {
	switch {
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return balance.GatewayFailure
	case status >= 500:
		return balance.Status5xx
	}
	return balance.Success
}

// start begins the health checks of st's clusters that have not begun.
func (st *state) start() {
	for _, c := range st.clusters {
		c.start()
	}
}

// adopt gives st's clusters their hosts back after a failed reload, whose
// balancers took them (nil st: nothing to do).
func (st *state) adopt() {
	if st == nil {
		return
	}
	for _, c := range st.clusters {
		c.lb.bal.Adopt()
	}
}

// start begins the cluster's health checks, once.
func (c *cluster) start() {
	if c.lb.hc != nil {
		c.lb.hc.start()
	}
}

// stop ends them; the cluster is no longer in use.
func (c *cluster) stop() {
	if c.lb.hc != nil {
		c.lb.hc.stop()
	}
}

// endpointCollector exports each endpoint's availability at scrape time,
// from the configuration in use: no series outlive a reload that removed
// their endpoint.
type endpointCollector struct{ p *Proxy }

var endpointHealthyDesc = prometheus.NewDesc("zerohop_endpoint_healthy",
	"1 when the endpoint receives traffic (not marked down by health checks nor ejected by outlier detection), else 0.",
	[]string{"cluster", "endpoint"}, nil)

func (c endpointCollector) Describe(ch chan<- *prometheus.Desc) { ch <- endpointHealthyDesc }

func (c endpointCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.st.Load()
	if st == nil {
		return
	}
	for _, cl := range st.clusters {
		for i := range cl.endpoints {
			ep := &cl.endpoints[i]
			v := 0.0
			if ep.host.Available() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(endpointHealthyDesc, prometheus.GaugeValue, v, cl.name, ep.url.Host)
		}
	}
}
