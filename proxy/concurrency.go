package proxy

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Concurrency caps (routes[].max_concurrent_requests and
// max_concurrent_requests_per_client) are a stage of the pipeline, right
// after the request phase's filters: a request a filter refused holds no
// slot, and one that passed holds it until its response is written and
// recorded. Each entry path takes and gives back its slot within its own
// call (serveHit on the fast path, ServeHTTP on net/http), with a defer,
// so a slot is released however the request ends: a response, an early
// answer, an upstream error, or a client that went away (its handler
// returns when the request's context is cancelled). A request the fast
// path hands over gave its slot back first; net/http takes one again.
//
// The counters belong to the configuration: after a reload, requests in
// flight on the old one count against the old counters, so for the
// length of the slowest request the caps may admit up to twice their
// value.

// concLimit is one route's caps and counts.
type concLimit struct {
	route     string
	max       int64 // 0 = no cap for the route as a whole
	perClient int64 // 0 = no cap per client address
	cur       atomic.Int64

	mu      sync.Mutex
	clients map[string]int64 // client IP -> requests in progress
}

func newConcLimit(route string, max, perClient int) *concLimit {
	if max == 0 && perClient == 0 {
		return nil
	}
	c := &concLimit{route: route, max: int64(max), perClient: int64(perClient)}
	if perClient > 0 {
		c.clients = map[string]int64{}
	}
	return c
}

// Reasons a request is refused a slot, as counted and as told.
const (
	concRoute  = "route"
	concClient = "client"
)

// enter takes a slot for a request from remote (host:port), or reports
// which cap refused it.
func (c *concLimit) enter(remote string) (ok bool, refusedBy string) {
	if c.max > 0 && c.cur.Add(1) > c.max {
		c.cur.Add(-1)
		return false, concRoute
	}
	if c.perClient > 0 {
		ip := clientIP(remote)
		c.mu.Lock()
		n := c.clients[ip]
		if n >= c.perClient {
			c.mu.Unlock()
			if c.max > 0 {
				c.cur.Add(-1)
			}
			return false, concClient
		}
		c.clients[ip] = n + 1
		c.mu.Unlock()
	}
	return true, ""
}

// leave gives back the slot enter took.
func (c *concLimit) leave(remote string) {
	if c.max > 0 {
		c.cur.Add(-1)
	}
	if c.perClient > 0 {
		ip := clientIP(remote)
		c.mu.Lock()
		if n := c.clients[ip] - 1; n > 0 {
			c.clients[ip] = n
		} else {
			delete(c.clients, ip) // the table holds active clients only
		}
		c.mu.Unlock()
	}
}

// clientIP is the address part of a host:port, without allocating.
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 && !strings.HasSuffix(remote, "]") {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

// attachConcurrency gives each route of st with a cap its counters.
func attachConcurrency(st *state) {
	for _, r := range st.routes {
		r.conc = newConcLimit(r.name, r.cfg.MaxConcurrentRequests, r.cfg.MaxConcurrentRequestsPerClient)
	}
}

// concMetrics counts the requests refused a slot.
type concMetrics struct {
	refused *prometheus.CounterVec // route, limit
}

func newConcMetrics(reg prometheus.Registerer) (*concMetrics, error) {
	m := &concMetrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_concurrency_refused_total",
		Help: "Requests answered 503 because a route's concurrency cap was reached (limit: route or client).",
	}, []string{"route", "limit"})}
	return m, reg.Register(m.refused)
}

// refuseConcurrency answers a request refused a slot: 503, with the cap
// named in Proxy-Status (RFC 9209) and a short Retry-After.
func (p *Proxy) refuseConcurrency(w http.ResponseWriter, x *exchange, limit string) {
	p.concm.refused.WithLabelValues(x.route.name, limit).Inc()
	h := w.Header()
	h.Set("Proxy-Status", `zerohop; error=proxy_internal_response; details="concurrency limit: `+limit+`"`)
	h.Set("Retry-After", "1")
	x.filterNote = "concurrency: " + limit
	p.fail(w, x, http.StatusServiceUnavailable, "too many concurrent requests ("+limit+" limit)")
}
