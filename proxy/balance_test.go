package proxy_test

// Load balancing, active health checks and outlier detection against real
// upstream servers on loopback, through both entry paths (the fast path
// and net/http) and both forwarders (direct and ReverseProxy).

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// pool is a set of named upstreams whose /health and app answers tests
// control.
type pool struct {
	ups     []*upstream
	names   []string
	failApp []atomic.Int32 // status of app requests when not 0
	sick    []atomic.Bool  // /health answers 503
	hcHost  []atomic.Value // Host of the last health check
	hang    []atomic.Bool  // /health answers only when the check gives up
	block   chan struct{}  // /slow waits on it at the endpoints in slow
	slow    map[string]bool
}

func newPool(t *testing.T, names ...string) *pool {
	p := &pool{names: names, failApp: make([]atomic.Int32, len(names)), sick: make([]atomic.Bool, len(names)),
		hcHost: make([]atomic.Value, len(names)), hang: make([]atomic.Bool, len(names)), block: make(chan struct{}), slow: map[string]bool{}}
	for i, name := range names {
		p.ups = append(p.ups, newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Cache-Control", "no-store")
			if r.URL.Path == "/health" {
				p.hcHost[i].Store(r.Host)
				if p.hang[i].Load() {
					<-r.Context().Done()
					return
				}
				if p.sick[i].Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			if r.URL.Path == "/slow" && p.slow[name] {
				select {
				case <-p.block:
				case <-r.Context().Done():
				}
			}
			if code := p.failApp[i].Load(); code != 0 {
				w.WriteHeader(int(code))
			}
			io.WriteString(w, name)
		}))
	}
	t.Cleanup(func() {
		select {
		case <-p.block:
		default:
			close(p.block)
		}
	})
	return p
}

// endpoints are the pool's endpoints with weights (1 when not given).
func (p *pool) endpoints(weights ...int) []config.Endpoint {
	var eps []config.Endpoint
	for i, u := range p.ups {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		eps = append(eps, config.Endpoint{URL: u.URL, Weight: w})
	}
	return eps
}

func (p *pool) index(name string) int {
	for i, n := range p.names {
		if n == name {
			return i
		}
	}
	return -1
}

// lbHarness is a reverse-proxy harness whose one cluster "lb" (route
// "lb") is set up by edit.
func lbHarness(t *testing.T, plain bool, edit func(c *config.Cluster)) *harness {
	return newHarness(t, harnessOptions{plainServer: plain, config: func(cfg *config.Config) {
		c := cluster("lb", "http://127.0.0.1:1")
		edit(&c)
		cfg.Clusters = []config.Cluster{c}
		cfg.Routes = []config.Route{{Name: "lb", Cluster: "lb"}}
	}})
}

// served sends a GET of path (or, with post, a POST with a body, which
// takes ReverseProxy rather than the direct forwarder) and returns the
// name of the endpoint that answered.
func served(t *testing.T, h *harness, path string, post bool, kv ...string) string {
	t.Helper()
	var r *result
	if post {
		r = h.do(http.MethodPost, path, hdr(kv...), strings.NewReader("body"))
	} else {
		r = h.get(path, kv...)
	}
	if r.err != nil {
		t.Fatalf("%s: %v", path, r.err)
	}
	return r.body
}

// metricValue is the value of the series name{labels...} of h's proxy
// (counter or gauge); -1 when absent.
func metricValue(t *testing.T, h *harness, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func awaitLB(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestRoundRobinBothPaths: smooth weighted round robin in its exact
// order, whichever entry path and forwarder each request takes.
func TestRoundRobinBothPaths(t *testing.T) {
	for _, plain := range []bool{false, true} {
		p := newPool(t, "a", "b", "c")
		h := lbHarness(t, plain, func(c *config.Cluster) {
			c.Endpoints = p.endpoints(5, 1, 1)
			c.LBPolicy = config.LBRoundRobin
		})
		var got strings.Builder
		for i := range 21 {
			got.WriteString(served(t, h, fmt.Sprintf("/rr/%d", i), i%3 == 2))
		}
		if want := strings.Repeat("aabacaa", 3); got.String() != want {
			t.Errorf("plain=%v: order %s, want %s", plain, got.String(), want)
		}
	}
}

// TestLeastRequestPrefersIdle: with requests hanging at two endpoints, the
// third, which answers at once, gets most new requests (a random policy
// would give it a third).
func TestLeastRequestPrefersIdle(t *testing.T) {
	p := newPool(t, "busy1", "busy2", "idle")
	p.slow["busy1"], p.slow["busy2"] = true, true
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = p.endpoints()
		c.LBPolicy = config.LBLeastRequest
		c.MaxIdleConns = 256
	})
	const n = 240
	var wg sync.WaitGroup
	idle := 0
	for i := range n {
		before := p.ups[0].hits.Load() + p.ups[1].hits.Load()
		done := make(chan string, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.get(fmt.Sprintf("/slow?%d", i))
			done <- r.body
		}()
		// The request either hangs at a busy endpoint or comes back from
		// the idle one.
		awaitLB(t, "the request to land", func() bool {
			select {
			case body := <-done:
				if body == "idle" {
					idle++
				}
				return true
			default:
				return p.ups[0].hits.Load()+p.ups[1].hits.Load() > before
			}
		})
	}
	close(p.block)
	wg.Wait()
	t.Logf("idle endpoint served %d of %d", idle, n)
	// Expected about 5/9 of n (133, standard deviation 8) once the busy
	// ones are busy; a random policy would give 1/3 (80).
	if idle < n*42/100 {
		t.Errorf("idle endpoint served %d of %d requests", idle, n)
	}
}

// TestMaglevSticky: a key keeps its endpoint on both paths (the same
// endpoint for the same key), keys spread over the endpoints, and a
// request without the key goes anywhere.
// stickyByKey runs a hash policy's header and cookie cases: a key keeps
// its endpoint on both paths (the same endpoint for the same key), keys
// spread over the endpoints, and a request without the key goes anywhere.
func stickyByKey(t *testing.T, lb config.LBPolicy) {
	for _, tc := range []struct {
		name   string
		policy config.HashPolicy
		key    func(k int) []string
	}{
		{"header", config.HashPolicy{Header: "X-User"}, func(k int) []string { return []string{"X-User", fmt.Sprint("u", k)} }},
		{"cookie", config.HashPolicy{Cookie: "sid"}, func(k int) []string { return []string{"Cookie", fmt.Sprintf("a=1; sid=s%d; z=2", k)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := map[int]string{}
			p := newPool(t, "a", "b", "c")
			for _, plain := range []bool{false, true} {
				pol := tc.policy
				h := lbHarness(t, plain, func(c *config.Cluster) {
					c.Endpoints = p.endpoints()
					c.LBPolicy, c.HashPolicy = lb, &pol
				})
				spread := map[string]int{}
				for k := range 60 {
					// The second run (net/http) must agree with the
					// first (fast path) on every key.
					for rep := range 3 {
						got := served(t, h, fmt.Sprintf("/k/%d/%d", k, rep), rep == 2, tc.key(k)...)
						spread[got]++
						if f, ok := first[k]; ok && got != f {
							t.Fatalf("plain=%v key %d: %s, then %s", plain, k, f, got)
						}
						first[k] = got
					}
				}
				if len(spread) != 3 {
					t.Errorf("plain=%v: keys reached %v", plain, spread)
				}
				keyless := map[string]bool{}
				for i := range 60 {
					keyless[served(t, h, fmt.Sprintf("/nokey/%d", i), false)] = true
				}
				if len(keyless) < 2 {
					t.Errorf("plain=%v: requests without the key all went to %v", plain, keyless)
				}
			}
		})
	}
}

func TestMaglevSticky(t *testing.T) {
	stickyByKey(t, config.LBMaglev)
	t.Run("source_address", func(t *testing.T) {
		p := newPool(t, "a", "b", "c")
		h := lbHarness(t, false, func(c *config.Cluster) {
			c.Endpoints = p.endpoints()
			c.LBPolicy, c.HashPolicy = config.LBMaglev, &config.HashPolicy{SourceAddress: true}
		})
		one := served(t, h, "/s/0", false)
		for i := range 20 {
			if got := served(t, h, fmt.Sprintf("/s/%d", i), i%2 == 0); got != one {
				t.Fatalf("one client address went to %s and %s", one, got)
			}
		}
	})
}

// TestHealthCheckDownUp: an endpoint that starts failing its health check
// is marked down and gets no traffic; when it passes again it is marked
// up and gets traffic again.
func TestHealthCheckDownUp(t *testing.T) {
	p := newPool(t, "a", "b")
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = p.endpoints()
		c.LBPolicy = config.LBRoundRobin
		c.HealthCheck = &config.HealthCheck{Path: "/health", Interval: 30 * time.Millisecond, Timeout: time.Second,
			Jitter: 10 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2, ExpectedStatuses: []int{200, 204},
			Host: "health.internal"}
	})
	a := p.ups[0].hostport()
	healthy := func(want float64) func() bool {
		return func() bool {
			return metricValue(t, h, "zerohop_endpoint_healthy", "cluster", "lb", "endpoint", a) == want
		}
	}
	awaitLB(t, "a first check", func() bool {
		return metricValue(t, h, "zerohop_health_checks_total", "endpoint", a, "result", "success") > 0
	})
	if got, _ := p.hcHost[0].Load().(string); got != "health.internal" {
		t.Errorf("health check Host %q, want the configured one", got)
	}
	p.sick[0].Store(true)
	awaitLB(t, "a marked down", healthy(0))
	for i := range 10 {
		if got := served(t, h, fmt.Sprintf("/d/%d", i), i%2 == 0); got != "b" {
			t.Fatalf("request %d went to %s, marked down", i, got)
		}
	}
	if metricValue(t, h, "zerohop_health_checks_total", "endpoint", a, "result", "failure") < 2 {
		t.Error("failed checks not counted")
	}
	p.sick[0].Store(false)
	awaitLB(t, "a marked up", healthy(1))
	seen := map[string]bool{}
	for i := range 4 {
		seen[served(t, h, fmt.Sprintf("/u/%d", i), false)] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after recovery, traffic reached %v", seen)
	}
}

// TestHealthCheckTimeout: a check that gets no answer within timeout
// failed; a status outside expected_statuses failed too.
func TestHealthCheckTimeout(t *testing.T) {
	p := newPool(t, "a", "b", "c")
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = p.endpoints()
		c.PanicThreshold = 0
		c.HealthCheck = &config.HealthCheck{Path: "/health", Interval: 30 * time.Millisecond, Timeout: 100 * time.Millisecond,
			HealthyThreshold: 1, UnhealthyThreshold: 2, ExpectedStatuses: []int{200}}
	})
	p.hang[0].Store(true)
	p.sick[1].Store(true) // 503
	for _, i := range []int{0, 1} {
		host := p.ups[i].hostport()
		awaitLB(t, p.names[i]+" down", func() bool { return metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", host) == 0 })
	}
	for i := range 6 {
		if got := served(t, h, fmt.Sprintf("/t/%d", i), false); got != "c" {
			t.Fatalf("request %d went to %s", i, got)
		}
	}
}

// TestOutlierEjection: consecutive 5xx eject an endpoint, which gets no
// traffic until the ejection time is over; connection failures eject as
// gateway failures; the access log names the endpoint.
func TestOutlierEjection(t *testing.T) {
	p := newPool(t, "a", "b", "c")
	dead := newUpstream(t, nil, func(http.ResponseWriter, *http.Request, int64) {})
	deadURL := dead.URL
	dead.Close() // connection refused from now on
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = append(p.endpoints(), config.Endpoint{URL: deadURL, Weight: 1})
		c.LBPolicy = config.LBRoundRobin
		c.OutlierDetection = &config.OutlierDetection{Consecutive5xx: 3, ConsecutiveGatewayFailure: 2,
			BaseEjectionTime: 2 * time.Second, MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}
	})
	a := p.ups[0].hostport()
	p.failApp[0].Store(500)
	// Round robin over a, b, c, dead: within 12 requests a failed three
	// times (500) and the dead endpoint twice (502): both ejected.
	codes := map[int]int{}
	for i := range 12 {
		r := h.get(fmt.Sprintf("/o/%d", i), "X-Request-Id", fmt.Sprintf("o-%d", i))
		codes[r.StatusCode]++
	}
	deadHost := strings.TrimPrefix(deadURL, "http://")
	if metricValue(t, h, "zerohop_outlier_ejections_total", "endpoint", a) != 1 ||
		metricValue(t, h, "zerohop_outlier_ejections_total", "endpoint", deadHost) != 1 {
		t.Fatalf("ejections: a %v, dead %v (answers %v)", metricValue(t, h, "zerohop_outlier_ejections_total", "endpoint", a),
			metricValue(t, h, "zerohop_outlier_ejections_total", "endpoint", deadHost), codes)
	}
	if metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", a) != 0 {
		t.Error("ejected endpoint reported healthy")
	}
	// The access log names the endpoint of each request.
	logged := map[any]bool{}
	for _, l := range h.logs.records() {
		if id, _ := l["request_id"].(string); strings.HasPrefix(id, "o-") {
			logged[l["upstream"]] = true
		}
	}
	if !logged["lb/"+a] || !logged["lb/"+deadHost] {
		t.Errorf("access log upstreams %v, want lb/<endpoint> of each", logged)
	}
	p.failApp[0].Store(0)
	for i := range 10 {
		if got := served(t, h, fmt.Sprintf("/e/%d", i), i%2 == 0); got != "b" && got != "c" {
			t.Fatalf("request %d: %q while a and dead are ejected", i, got)
		}
	}
	awaitLB(t, "a back in rotation", func() bool {
		return metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", a) == 1
	})
	seen := false
	for i := range 8 {
		seen = seen || served(t, h, fmt.Sprintf("/r/%d", i), false) == "a"
	}
	if !seen {
		t.Error("a got no traffic after its ejection ended")
	}
}

// TestPanicThreshold: when fewer than panic_threshold percent of the
// endpoints are healthy, traffic goes to all of them.
func TestPanicThreshold(t *testing.T) {
	p := newPool(t, "a", "b", "c")
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = p.endpoints()
		c.LBPolicy = config.LBRoundRobin
		c.PanicThreshold = 50
		c.HealthCheck = &config.HealthCheck{Path: "/health", Interval: 30 * time.Millisecond, Timeout: time.Second,
			HealthyThreshold: 1, UnhealthyThreshold: 1, ExpectedStatuses: []int{200}}
	})
	down := func(name string) func() bool {
		return func() bool {
			return metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", p.ups[p.index(name)].hostport()) == 0
		}
	}
	p.sick[0].Store(true)
	awaitLB(t, "a down", down("a"))
	for i := range 6 {
		if got := served(t, h, fmt.Sprintf("/p/%d", i), false); got == "a" {
			t.Fatal("2 of 3 healthy (67% ≥ 50%): a must be skipped")
		}
	}
	p.sick[1].Store(true)
	awaitLB(t, "b down", down("b"))
	seen := map[string]int{}
	for i := range 6 {
		seen[served(t, h, fmt.Sprintf("/q/%d", i), false)]++
	}
	if seen["a"] != 2 || seen["b"] != 2 || seen["c"] != 2 {
		t.Errorf("1 of 3 healthy (33%% < 50%%): round robin over all gave %v", seen)
	}
}

// TestReloadKeepsEndpointState: a reload that changes other fields of a
// cluster, and adds an endpoint, keeps an ejected endpoint ejected.
func TestReloadKeepsEndpointState(t *testing.T) {
	p := newPool(t, "a", "b", "c")
	od := &config.OutlierDetection{Consecutive5xx: 2, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Hour, MaxEjectionPercent: 50}
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = p.endpoints()[:2]
		c.LBPolicy = config.LBRoundRobin
		c.OutlierDetection = od
	})
	a := p.ups[0].hostport()
	p.failApp[0].Store(503)
	for i := range 4 {
		h.get(fmt.Sprintf("/x/%d", i))
	}
	if metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", a) != 0 {
		t.Fatal("a not ejected")
	}
	p.failApp[0].Store(0)
	cfg := h.p.Config().Clone()
	cfg.Clusters[0].ResponseTimeout = 7 * time.Second
	cfg.Clusters[0].LBPolicy = config.LBRandom
	cfg.Clusters[0].Endpoints = p.endpoints()
	if err := h.p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", a) != 0 {
		t.Fatal("the reload forgot a's ejection")
	}
	seen := map[string]int{}
	for i := range 30 {
		seen[served(t, h, fmt.Sprintf("/y/%d", i), false)]++
	}
	if seen["a"] != 0 || seen["b"] == 0 || seen["c"] == 0 {
		t.Errorf("after the reload: %v; want b and the new c, not the ejected a", seen)
	}
	// A reload that fails keeps the old state working (its balancers own
	// their endpoints again).
	bad := cfg.Clone()
	bad.Clusters[0].ResponseTimeout = 8 * time.Second
	bad.Routes[0].Cluster = "missing"
	if err := h.p.Reload(bad); err == nil {
		t.Fatal("a reload to an unknown cluster succeeded")
	}
	if metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", a) != 0 {
		t.Error("a failed reload changed a's state")
	}
}
