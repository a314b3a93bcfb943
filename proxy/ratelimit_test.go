package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// limitMetric reads name{limit, outcome} (outcome "" for series without
// one) from p's registry: a counter's or a gauge's value.
func limitMetric(t testing.TB, p *proxy.Proxy, name, limit, outcome string) float64 {
	t.Helper()
	mfs, err := p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l, o string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "limit":
					l = lp.GetValue()
				case "outcome":
					o = lp.GetValue()
				}
			}
			if l == limit && o == outcome {
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// withLimits adds limits and has route "main" apply routeLimits and the
// listener listenerLimits.
func withLimits(limits []config.Limit, routeLimits, listenerLimits []string) func(*config.Config) {
	return func(cfg *config.Config) {
		for i := range limits {
			if limits[i].Key == "" {
				limits[i].Key = config.KeyClientAddress
			}
			if limits[i].Period == 0 {
				limits[i].Period = time.Second
			}
			if limits[i].MaxKeys == 0 {
				limits[i].MaxKeys = config.DefaultLimitMaxKeys
			}
		}
		cfg.Limits = limits
		cfg.Routes[0].RateLimits = routeLimits
		cfg.Listeners[0].RateLimits = listenerLimits
		if err := cfg.Validate(); err != nil {
			panic(err)
		}
	}
}

// TestRateLimitBothPaths sends the same requests to a route limited per
// API key behind the fast path and behind net/http alone: the same
// answers, a 429 with Retry-After and the RateLimit fields, refused
// before the cache (a stored response is not served over the limit), a
// key's bucket refilled as the clock moves, and the limit named in the
// access log.
func TestRateLimitBothPaths(t *testing.T) {
	lim := []config.Limit{{Name: "per-key", Rate: 3, Period: time.Minute, Key: config.KeyHeader, Header: "X-Api-Key"}}
	type step struct {
		key     string
		advance time.Duration
		status  int
		retry   string
	}
	steps := []step{
		{"a", 0, 200, ""}, {"a", 0, 200, ""}, {"a", 0, 200, ""}, // a miss, then hits
		{"a", 0, 429, "20"}, {"a", 0, 429, "20"}, // one request per 20s
		{"b", 0, 200, ""},                                                        // another key, its own bucket
		{"", 0, 200, ""}, {"", 0, 200, ""}, {"", 0, 200, ""}, {"", 0, 429, "20"}, // no key: one shared bucket
		{"a", 19 * time.Second, 429, "1"},
		{"a", time.Second, 200, ""}, {"a", 0, 429, "20"},
	}
	var res [2][]*result
	for pi, plain := range []bool{false, true} {
		clk := newClock()
		h := newHarness(t, harnessOptions{handler: filterUpstream, clock: clk, plainServer: plain,
			config: withLimits(lim, []string{"per-key"}, nil)})
		for i, s := range steps {
			clk.Advance(s.advance)
			id := fmt.Sprintf("rl-%d", i)
			kv := []string{"X-Request-Id", id}
			if s.key != "" {
				kv = append(kv, "X-Api-Key", s.key)
			}
			r := h.get("/f", kv...)
			res[pi] = append(res[pi], r)
			name := fmt.Sprintf("plain=%v #%d key %q", plain, i, s.key)
			if r.StatusCode != s.status {
				t.Fatalf("%s: status %d; want %d", name, r.StatusCode, s.status)
			}
			if s.status != 429 {
				continue
			}
			want := map[string]string{"Retry-After": s.retry, "Ratelimit-Policy": `"per-key";q=3;w=60`,
				"Ratelimit": `"per-key";r=0;t=` + s.retry}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %s %q; want %q", name, k, got, v)
				}
			}
			if r.body != "rate limit exceeded\n" || strings.Contains(r.cacheStatus(), "hit") {
				t.Errorf("%s: body %q Cache-Status %q; want the limit's answer, not the stored response", name, r.body, r.cacheStatus())
			}
			for _, l := range h.logs.records() {
				if l["request_id"] == id && l["filter"] != "rate_limit: per-key" {
					t.Errorf("%s: access log filter %v; want the limit named", name, l["filter"])
				}
			}
		}
		if got := h.up.hits.Load(); got != 1 {
			t.Errorf("plain=%v: upstream asked %d times; want 1", plain, got)
		}
		if a, r := limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "per-key", "allowed"),
			limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "per-key", "rejected"); a != 8 || r != 5 {
			t.Errorf("plain=%v: decisions allowed %v rejected %v; want 8 and 5", plain, a, r)
		}
		if n := limitMetric(t, h.p, "zerohop_ratelimit_keys", "per-key", ""); n != 3 {
			t.Errorf("plain=%v: keys %v; want 3 (a, b and the keyless bucket)", plain, n)
		}
	}
	for i := range steps {
		sameAnswer(t, fmt.Sprintf("#%d", i), "fast", "net/http", res[0][i], res[1][i], res[0][i].body, res[1][i].body)
	}
}

// TestRateLimitStrictest: every limit of a route's list counts a
// request, and when several refuse it the one that frees last answers; a
// listener's limits run before the route's (a request they refuse does
// not reach the route's), and also refuse requests no route takes.
func TestRateLimitStrictest(t *testing.T) {
	lim := []config.Limit{
		{Name: "route-fast", Rate: 1, Period: time.Second, Burst: 2, Key: config.KeyAll},
		{Name: "route-slow", Rate: 1, Period: time.Minute},
		{Name: "listener-cap", Rate: 1, Period: time.Minute, Burst: 6, Key: config.KeyAll},
	}
	for _, plain := range []bool{false, true} {
		clk := newClock()
		h := newHarness(t, harnessOptions{handler: filterUpstream, clock: clk, plainServer: plain,
			config: withLimits(lim, []string{"route-fast", "route-slow"}, []string{"listener-cap"})})
		for i, st := range []struct {
			advance   time.Duration
			status    int
			by, retry string
		}{
			{0, 200, "", ""},
			{0, 429, "route-slow", "60"}, // route-fast allows (and counts) it
			{0, 429, "route-slow", "60"}, // both refuse: route-slow frees later
			{time.Second, 429, "route-slow", "59"},
			{0, 429, "route-slow", "59"},
			{0, 429, "route-slow", "59"}, // listener-cap's sixth
			{0, 429, "listener-cap", "59"},
		} {
			clk.Advance(st.advance)
			r := h.get("/f")
			if r.StatusCode != st.status || r.Header.Get("Retry-After") != st.retry ||
				(st.by != "" && r.Header.Get("Ratelimit") != fmt.Sprintf("%q;r=0;t=%s", st.by, st.retry)) {
				t.Errorf("plain=%v #%d: %d Retry-After %q RateLimit %q; want %d from %s in %s", plain, i, r.StatusCode,
					r.Header.Get("Retry-After"), r.Header.Get("Ratelimit"), st.status, st.by, st.retry)
			}
		}
		if n := limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "route-fast", "allowed"); n != 3 {
			t.Errorf("plain=%v: route-fast allowed %v; want 3 (it counts requests route-slow refuses)", plain, n)
		}
	}
	// Unrouted requests (forward mode) run the listener's limits too.
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: filterUpstream, plainServer: plain,
			config: func(cfg *config.Config) {
				cfg.Limits = []config.Limit{{Name: "fwd", Rate: 1, Period: time.Minute, Key: config.KeyAll, MaxKeys: 10}}
				cfg.Listeners[0].RateLimits = []string{"fwd"}
			}})
		if a, b := h.get("/f").StatusCode, h.get("/f").StatusCode; a != 200 || b != 429 {
			t.Errorf("plain=%v: forward mode without a route: %d then %d; want 200 then 429", plain, a, b)
		}
	}
}

// TestRateLimitBurst: a quiet key may send burst requests at once, then
// one per interval; a bucket never holds more than burst.
func TestRateLimitBurst(t *testing.T) {
	clk := newClock()
	h := newHarness(t, harnessOptions{handler: filterUpstream, clock: clk,
		config: withLimits([]config.Limit{{Name: "b", Rate: 1, Period: time.Second, Burst: 5}}, []string{"b"}, nil)})
	count := func() (ok int) {
		for range 20 {
			switch r := h.get("/f"); r.StatusCode {
			case 200:
				ok++
			case 429:
				return ok
			default:
				t.Fatalf("status %d", r.StatusCode)
			}
		}
		return ok
	}
	for i, st := range []struct {
		advance time.Duration
		want    int
	}{
		{0, 5},                       // a full bucket
		{time.Second, 1},             // one interval: one request
		{2500 * time.Millisecond, 2}, // two and a half: two (the half is kept)
		{500 * time.Millisecond, 1},
		{time.Hour, 5}, // quiet for long: still only burst
	} {
		clk.Advance(st.advance)
		if got := count(); got != st.want {
			t.Errorf("#%d after %v: %d allowed; want %d", i, st.advance, got, st.want)
		}
	}
}

// TestRateLimitShadow: a shadow limit counts what it would refuse and
// refuses nothing.
func TestRateLimitShadow(t *testing.T) {
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain,
			config: withLimits([]config.Limit{{Name: "try", Rate: 2, Period: time.Minute, Shadow: true}}, []string{"try"}, nil)})
		for i := range 6 {
			if r := h.get("/f"); r.StatusCode != 200 {
				t.Fatalf("plain=%v #%d: %d; a shadow limit refuses nothing", plain, i, r.StatusCode)
			}
		}
		if a, s := limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "try", "allowed"),
			limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "try", "shadow_rejected"); a != 2 || s != 4 {
			t.Errorf("plain=%v: allowed %v shadow_rejected %v; want 2 and 4", plain, a, s)
		}
	}
}

// TestRateLimitConsumer: a limit keyed by consumer counts each caller the
// authentication filter (here a test filter of the listener) named.
func TestRateLimitConsumer(t *testing.T) {
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain,
			config: withLimits([]config.Limit{{Name: "per-consumer", Rate: 1, Period: time.Minute, Key: config.KeyConsumer}}, []string{"per-consumer"}, nil)})
		proxy.AddListenerFilter(h.p, h.lis.Name, &proxy.TestFilter{Label: "auth", Consumer: "X-Who", Trace: &proxy.Trace{}})
		got := []int{}
		for _, who := range []string{"alice", "alice", "bob", "bob", "carol"} {
			got = append(got, h.get("/f", "X-Who", who).StatusCode)
		}
		if fmt.Sprint(got) != "[200 429 200 429 200]" {
			t.Errorf("plain=%v: %v; want each consumer its own bucket", plain, got)
		}
	}
}

// TestRateLimitEvictions: a limit holds at most about max_keys keys; the
// least recently used go, counted.
func TestRateLimitEvictions(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: filterUpstream,
		config: withLimits([]config.Limit{{Name: "small", Rate: 1, Period: time.Hour, Key: config.KeyHeader, Header: "X-K", MaxKeys: 64}}, []string{"small"}, nil)})
	const n = 1000
	for i := range n {
		if r := h.get("/f", "X-K", fmt.Sprint(i)); r.StatusCode != 200 {
			t.Fatalf("key %d: %d", i, r.StatusCode)
		}
	}
	keys := limitMetric(t, h.p, "zerohop_ratelimit_keys", "small", "")
	ev := limitMetric(t, h.p, "zerohop_ratelimit_evictions_total", "small", "")
	if keys > 64 || keys+ev != n {
		t.Errorf("keys %v evictions %v; want at most 64 keys and the rest evicted", keys, ev)
	}
	// A recent key is still remembered (refused); an evicted one starts over.
	if r := h.get("/f", "X-K", fmt.Sprint(n-1)); r.StatusCode != 429 {
		t.Errorf("the most recent key: %d; want 429", r.StatusCode)
	}
	if r := h.get("/f", "X-K", "0"); r.StatusCode != 200 {
		t.Errorf("the first, evicted key: %d; want 200 (forgotten)", r.StatusCode)
	}
}

var _ = http.StatusOK

// TestRateLimitReload: a reload that keeps a limit's settings keeps its
// buckets (a refused key stays refused); one that changes them starts
// afresh; the counters carry over.
func TestRateLimitReload(t *testing.T) {
	lim := []config.Limit{{Name: "r", Rate: 1, Period: time.Hour}}
	h := newHarness(t, harnessOptions{handler: filterUpstream, config: withLimits(lim, []string{"r"}, nil)})
	if a, b := h.get("/f").StatusCode, h.get("/f").StatusCode; a != 200 || b != 429 {
		t.Fatalf("%d %d", a, b)
	}
	// A reload that fails (here: an unknown limit) changes nothing.
	bad := h.cfg.Clone()
	bad.Limits[0].Rate = 5
	bad.Listeners[0].RateLimits = []string{"missing"}
	if err := h.p.Reload(bad); err == nil {
		t.Fatal("a reload naming an unknown limit succeeded")
	}
	same := h.cfg.Clone()
	if err := h.p.Reload(same); err != nil {
		t.Fatal(err)
	}
	if r := h.get("/f"); r.StatusCode != 429 {
		t.Errorf("after a reload with the same limit: %d; want 429 (buckets kept)", r.StatusCode)
	}
	changed := h.cfg.Clone()
	changed.Limits[0].Rate = 2
	if err := h.p.Reload(changed); err != nil {
		t.Fatal(err)
	}
	if r := h.get("/f"); r.StatusCode != 200 {
		t.Errorf("after a reload that changed the limit: %d; want 200 (new buckets)", r.StatusCode)
	}
	if a, r := limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "r", "allowed"),
		limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", "r", "rejected"); a != 2 || r != 2 {
		t.Errorf("allowed %v rejected %v after reloads; want 2 and 2", a, r)
	}
}

// TestRateLimitUnknownRefused: a configuration built in code, not
// validated, that names a limit it does not define is refused by New and
// Reload rather than run without the limit.
func TestRateLimitUnknownRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: filterUpstream})
	bad := h.cfg.Clone()
	bad.Routes[0].RateLimits = []string{"missing"}
	if err := h.p.Reload(bad); err == nil || !strings.Contains(err.Error(), `unknown limit "missing"`) {
		t.Errorf("Reload: %v; want the unknown limit refused", err)
	}
	if _, err := proxy.New(bad, proxy.Options{}); err == nil {
		t.Errorf("New accepted a route naming an unknown limit")
	}
}
