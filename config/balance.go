package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// LBPolicy is how a cluster chooses an endpoint for each request.
// Endpoints that active health checks marked down or outlier detection
// ejected are skipped by every policy, unless fewer than the cluster's
// panic_threshold percent are available (then all are used).
type LBPolicy string

// Load-balancing policies.
const (
	// LBRandom picks at random in proportion to weight. The default.
	LBRandom LBPolicy = "random"
	// LBRoundRobin is nginx's smooth weighted round robin: with weights
	// 5, 1, 1 the endpoints are used in the order a a b a c a a.
	LBRoundRobin LBPolicy = "round_robin"
	// LBLeastRequest draws two endpoints at random by weight and sends
	// to the one with fewer requests waiting for a response ("power of
	// two choices", Envoy's LEAST_REQUEST).
	LBLeastRequest LBPolicy = "least_request"
	// LBMaglev is consistent hashing (Google's Maglev table, as Envoy's
	// MAGLEV) on the key hash_policy names: a key keeps its endpoint,
	// and adding one of N endpoints moves about 1/N of the keys.
	LBMaglev LBPolicy = "maglev"
)

// DefaultPanicThreshold is a cluster's panic_threshold: Envoy's
// healthy_panic_threshold default.
const DefaultPanicThreshold = 50

// HashPolicy is the request key a maglev cluster hashes. Exactly one of
// its fields is set. A request without the key (the header or cookie is
// absent) goes to an endpoint picked at random by weight, as Envoy does
// when no hash policy produces a hash.
type HashPolicy struct {
	// Header hashes the value of this request header field (all its
	// lines, as sent). Default "".
	Header string `yaml:"header"`
	// Cookie hashes the value of this cookie of the request. Default "".
	Cookie string `yaml:"cookie"`
	// SourceAddress hashes the client's IP address (without port): the
	// connection's peer, not X-Forwarded-For. Default false.
	SourceAddress bool `yaml:"source_address"`
}

// HealthCheck is an active HTTP health check of each endpoint of a
// cluster: a GET of Path every Interval (plus up to Jitter), over a
// connection of its own. An endpoint starts healthy, and its first check
// decides at once; after that it is marked down after UnhealthyThreshold
// failed checks in a row and up again after HealthyThreshold good ones.
type HealthCheck struct {
	// Path is the request target, e.g. "/healthz". Required; starts
	// with "/".
	Path string `yaml:"path"`
	// Interval between checks of one endpoint. Default 10s; must be > 0.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one check (connect, response and body); a check
	// that takes longer failed. Default 2s; must be > 0.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter adds a random delay of up to this much to each interval, so
	// that endpoints are not checked in lock step. Default 0.
	Jitter time.Duration `yaml:"jitter"`
	// HealthyThreshold is the number of good checks in a row that mark a
	// down endpoint up. Default 2; at least 1.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is the number of failed checks in a row that
	// mark an endpoint down. Default 3; at least 1.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// ExpectedStatuses are the response statuses that pass. Default
	// [200]; each from 100 to 599.
	ExpectedStatuses []int `yaml:"expected_statuses"`
	// Host is the Host header of checks. Default "" = the endpoint's
	// host:port.
	Host string `yaml:"host"`
}

// OutlierDetection ejects an endpoint whose requests fail in a row
// (passive health checking, Envoy's consecutive_5xx and
// consecutive_gateway_failure detectors). An ejected endpoint gets no
// requests for BaseEjectionTime times the number of times it was ejected
// (one ejection forgiven per BaseEjectionTime it then stays in rotation),
// at most MaxEjectionTime.
type OutlierDetection struct {
	// Consecutive5xx ejects after this many responses with a 5xx status
	// or no response (connect error, reset, timeout) in a row. Default 5;
	// 0 turns this detector off.
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// ConsecutiveGatewayFailure ejects after this many 502, 503 or 504
	// responses or failures to get a response in a row. Default 5 (Envoy
	// defaults its enforcement to off; a sidecar with few endpoints gains
	// more from it than it risks); 0 turns it off.
	ConsecutiveGatewayFailure int `yaml:"consecutive_gateway_failure"`
	// BaseEjectionTime is the first ejection's length. Default 30s; must
	// be > 0.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps an ejection; at least base_ejection_time.
	// Default 0 = 300s, or base_ejection_time if that is longer (as
	// Envoy).
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of the cluster's endpoints
	// ejected at once (0 to 100); one endpoint may always be ejected, as
	// in Envoy. Default 10.
	MaxEjectionPercent int `yaml:"max_ejection_percent"`
}

func (h *HealthCheck) setDefaults() {
	h.Interval = 10 * time.Second
	h.Timeout = 2 * time.Second
	h.HealthyThreshold = 2
	h.UnhealthyThreshold = 3
	h.ExpectedStatuses = []int{http.StatusOK}
}

func (o *OutlierDetection) setDefaults() {
	o.Consecutive5xx = 5
	o.ConsecutiveGatewayFailure = 5
	o.BaseEjectionTime = 30 * time.Second
	o.MaxEjectionPercent = 10
}

// balancing validates a cluster's load balancing, health check and
// outlier detection; p is the cluster's path.
func (v *validator) balancing(p string, c *Cluster) {
	switch c.LBPolicy {
	case "", LBRandom, LBRoundRobin, LBLeastRequest:
		if c.HashPolicy != nil {
			v.errorf(p+".hash_policy", "only for lb_policy %q", LBMaglev)
		}
	case LBMaglev:
		h := c.HashPolicy
		n := 0
		if h != nil {
			for _, set := range []bool{h.Header != "", h.Cookie != "", h.SourceAddress} {
				if set {
					n++
				}
			}
		}
		switch {
		case n != 1:
			v.errorf(p+".hash_policy", "lb_policy %q needs a hash_policy with exactly one of header, cookie or source_address", LBMaglev)
		case h.Header != "" && !isToken(h.Header):
			v.errorf(p+".hash_policy.header", "invalid header name %q", clip(h.Header))
		case h.Cookie != "" && !isToken(h.Cookie):
			v.errorf(p+".hash_policy.cookie", "invalid cookie name %q", clip(h.Cookie))
		}
	default:
		v.errorf(p+".lb_policy", "invalid lb_policy %q: must be %q, %q, %q or %q", clip(string(c.LBPolicy)), LBRandom, LBRoundRobin, LBLeastRequest, LBMaglev)
	}
	v.dnsRefresh(p, c)
	if c.PanicThreshold < 0 || c.PanicThreshold > 100 {
		v.errorf(p+".panic_threshold", "must be a percentage from 0 to 100, got %d", c.PanicThreshold)
	}
	if h := c.HealthCheck; h != nil {
		hp := p + ".health_check"
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n#") {
			v.errorf(hp+".path", "must be a request path starting with \"/\", e.g. \"/healthz\", got %q", clip(h.Path))
		}
		v.positive(hp+".interval", h.Interval)
		v.positive(hp+".timeout", h.Timeout)
		v.nonNegative(hp+".jitter", h.Jitter)
		if h.HealthyThreshold < 1 {
			v.errorf(hp+".healthy_threshold", "must be at least 1, got %d", h.HealthyThreshold)
		}
		if h.UnhealthyThreshold < 1 {
			v.errorf(hp+".unhealthy_threshold", "must be at least 1, got %d", h.UnhealthyThreshold)
		}
		if len(h.ExpectedStatuses) == 0 {
			v.errorf(hp+".expected_statuses", "must list at least one status, e.g. [200]")
		}
		for i, s := range h.ExpectedStatuses {
			if s < 100 || s > 599 {
				v.errorf(fmt.Sprintf("%s.expected_statuses[%d]", hp, i), "must be a status from 100 to 599, got %d", s)
			}
		}
		if h.Host != "" && !isHostname(strings.TrimSuffix(h.Host, portOf(h.Host))) {
			v.errorf(hp+".host", "invalid host %q", clip(h.Host))
		}
	}
	if o := c.OutlierDetection; o != nil {
		op := p + ".outlier_detection"
		if o.Consecutive5xx < 0 {
			v.errorf(op+".consecutive_5xx", "must not be negative, got %d", o.Consecutive5xx)
		}
		if o.ConsecutiveGatewayFailure < 0 {
			v.errorf(op+".consecutive_gateway_failure", "must not be negative, got %d", o.ConsecutiveGatewayFailure)
		}
		v.positive(op+".base_ejection_time", o.BaseEjectionTime)
		if o.MaxEjectionTime != 0 && o.MaxEjectionTime < o.BaseEjectionTime {
			v.errorf(op+".max_ejection_time", "must be at least base_ejection_time (%v), got %v", o.BaseEjectionTime, o.MaxEjectionTime)
		}
		if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			v.errorf(op+".max_ejection_percent", "must be a percentage from 0 to 100, got %d", o.MaxEjectionPercent)
		}
	}
}

// dnsRefresh validates dns_refresh and dns_resolver.
func (v *validator) dnsRefresh(p string, c *Cluster) {
	v.nonNegative(p+".dns_refresh", c.DNSRefresh)
	if c.DNSResolver != "" {
		if c.DNSRefresh <= 0 {
			v.errorf(p+".dns_resolver", "only with dns_refresh")
		} else if err := checkAddress(c.DNSResolver); err != nil {
			v.errorf(p+".dns_resolver", "%v", err)
		}
	}
	if c.DNSRefresh <= 0 || (c.TLS != nil && c.TLS.ServerName != "") {
		return
	}
	// Addresses dialled for https still verify the certificate for the
	// name: one name per cluster, or tls.server_name.
	names := map[string]bool{}
	for _, e := range c.Endpoints {
		if u, err := url.Parse(e.URL); err == nil && strings.EqualFold(u.Scheme, "https") && net.ParseIP(u.Hostname()) == nil {
			names[strings.ToLower(u.Hostname())] = true
		}
	}
	if len(names) > 1 {
		v.errorf(p+".dns_refresh", "https endpoints with different host names: set tls.server_name, the name their certificates are checked against")
	}
}

// DefaultMaxEjectionTime is outlier_detection.max_ejection_time when it
// is 0 and base_ejection_time is not longer.
const DefaultMaxEjectionTime = 300 * time.Second

// EffectiveMaxEjectionTime is MaxEjectionTime, or for 0 the default:
// 300s, or BaseEjectionTime if longer.
func (o *OutlierDetection) EffectiveMaxEjectionTime() time.Duration {
	if o.MaxEjectionTime > 0 {
		return o.MaxEjectionTime
	}
	return max(DefaultMaxEjectionTime, o.BaseEjectionTime)
}

// portOf is host's ":port" suffix, if any.
func portOf(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[i:]
	}
	return ""
}
