package proxy_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// filterUpstream serves /f, cacheable, and tells what credentials it got.
func filterUpstream(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Cred-Seen", r.Header.Get("X-Cred"))
	fmt.Fprintf(w, "body %d", n)
}

// TestFilterChainBothPaths runs one route's filter chain behind the fast
// path and behind net/http alone, with the same requests: the phases run
// in the documented order (request phase in order before the cache,
// upstream phase on misses only, response phase in reverse order on
// every response), a filter's early answer is the same on both paths
// (status, fields, body, access-log line), and a cached response is
// never served to a request the request phase refuses.
func TestFilterChainBothPaths(t *testing.T) {
	type pathRun struct {
		traces [][]string
		views  [][]string
		res    []*result
		lines  []map[string]any
		hits   int64
	}
	reqs := []struct {
		method string
		kv     []string
		status int
		trace  []string
	}{
		// No credentials, nothing stored: B answers; the upstream is not asked.
		{"GET", nil, 401, []string{"A.request GET /f route=main", "B.request GET /f route=main", "B.response 401", "A.response 401"}},
		// A miss: the upstream phase runs, the credential goes upstream only.
		{"GET", []string{"X-Key", "k"}, 200, []string{"A.request GET /f route=main", "B.request GET /f route=main",
			"A.upstream", "B.upstream", "B.response 200", "A.response 200"}},
		// A fresh hit: no upstream phase.
		{"GET", []string{"X-Key", "k"}, 200, []string{"A.request GET /f route=main", "B.request GET /f route=main", "B.response 200", "A.response 200"}},
		// Stored and fresh, but no credentials: refused before the cache.
		{"GET", nil, 401, []string{"A.request GET /f route=main", "B.request GET /f route=main", "B.response 401", "A.response 401"}},
		{"HEAD", nil, 401, []string{"A.request HEAD /f route=main", "B.request HEAD /f route=main", "B.response 401", "A.response 401"}},
		{"HEAD", []string{"X-Key", "k"}, 200, []string{"A.request HEAD /f route=main", "B.request HEAD /f route=main", "B.response 200", "A.response 200"}},
	}
	runs := map[bool]*pathRun{}
	clk := newClock()
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: filterUpstream, clock: clk, plainServer: plain})
		tr, views := &proxy.Trace{}, &proxy.Trace{}
		proxy.AddFilter(h.p, "main", &proxy.TestFilter{Label: "A", Upstream: [2]string{"X-Cred", "secret"},
			Response: [2]string{"X-A", "a"}, Trace: tr, Views: views})
		proxy.AddFilter(h.p, "main", &proxy.TestFilter{Label: "B", Require: "X-Key", Response: [2]string{"X-B", "b"}, Trace: tr})
		run := &pathRun{}
		for i, rq := range reqs {
			id := fmt.Sprintf("filter-%d", i)
			r := h.do(rq.method, "/f", hdr(append([]string{"X-Request-Id", id, "Host", "app.local"}, rq.kv...)...), nil)
			if _, ok := h.logs.statusLogged(id); !ok {
				t.Fatalf("plain=%v #%d: no access-log line", plain, i)
			}
			for _, l := range h.logs.records() {
				if l["request_id"] == id {
					run.lines = append(run.lines, l)
				}
			}
			run.res = append(run.res, r)
			run.traces = append(run.traces, tr.Take())
			run.views = append(run.views, views.Take())
		}
		run.hits = h.up.hits.Load()
		runs[plain] = run
	}
	fast, plain := runs[false], runs[true]
	for i, rq := range reqs {
		name := fmt.Sprintf("#%d %s %v", i, rq.method, rq.kv)
		sameAnswer(t, name, "fast", "net/http", fast.res[i], plain.res[i], fast.res[i].body, plain.res[i].body)
		for p, run := range runs {
			r := run.res[i]
			if r.StatusCode != rq.status {
				t.Errorf("%s plain=%v: status %d; want %d", name, p, r.StatusCode, rq.status)
			}
			if !slices.Equal(run.traces[i], rq.trace) {
				t.Errorf("%s plain=%v: filters ran\n%q\nwant\n%q", name, p, run.traces[i], rq.trace)
			}
			if r.Header.Get("X-A") != "a" || r.Header.Get("X-B") != "b" {
				t.Errorf("%s plain=%v: response fields X-A %q X-B %q; want the filters' on every response", name, p, r.Header.Get("X-A"), r.Header.Get("X-B"))
			}
			if rq.status == 401 {
				if r.Header.Get("Www-Authenticate") == "" || (rq.method == "GET" && r.body != "no credentials\n") || strings.Contains(r.cacheStatus(), "hit") {
					t.Errorf("%s plain=%v: answer %q %v; want the filter's 401", name, p, r.body, r.Header)
				}
				if got := run.lines[i]["filter"]; got != "B: missing X-Key" {
					t.Errorf("%s plain=%v: log filter %v; want the answering filter and why", name, p, got)
				}
			} else if got := r.Header.Get("X-Cred-Seen"); got != "secret" {
				t.Errorf("%s plain=%v: the upstream saw X-Cred %q; want the upstream phase's", name, p, got)
			}
			if r.Header.Get("X-Cred") != "" {
				t.Errorf("%s plain=%v: the credential reached the client", name, p)
			}
		}
		for _, k := range []string{"msg", "listener", "method", "host", "target", "status", "route", "upstream", "cache", "bytes", "filter"} {
			fv, pv := fmt.Sprint(fast.lines[i][k]), fmt.Sprint(plain.lines[i][k])
			if k == "upstream" { // cluster/address: two upstream servers
				fv, _, _ = strings.Cut(fv, "/")
				pv, _, _ = strings.Cut(pv, "/")
			}
			if fv != pv {
				t.Errorf("%s log %s: fast %v; net/http %v", name, k, fast.lines[i][k], plain.lines[i][k])
			}
		}
		// The fast path runs the request phase on its parsed head, for hits
		// and for what it hands over, and writes fresh hits itself;
		// net/http runs everything on its request.
		wantFast := []string{"fast", "response:net/http"}
		if rq.status == 200 && i != 1 {
			wantFast[1] = "response:fast"
		}
		if !slices.Equal(fast.views[i], wantFast) || !slices.Equal(plain.views[i], []string{"net/http", "response:net/http"}) {
			t.Errorf("%s: views fast %v (want %v), net/http %v", name, fast.views[i], wantFast, plain.views[i])
		}
	}
	for p, run := range runs {
		if run.hits != 1 {
			t.Errorf("plain=%v: upstream asked %d times; want 1 (one miss; refusals never reach it)", p, run.hits)
		}
		if !strings.Contains(run.res[2].cacheStatus(), "hit") || !strings.Contains(run.res[5].cacheStatus(), "hit") {
			t.Errorf("plain=%v: allowed repeats %q %q; want hits", p, run.res[2].cacheStatus(), run.res[5].cacheStatus())
		}
	}
}

// TestRouteResponseHeaders: a route's response_headers (the worked
// example filter, setFieldsFilter) reach every response of the route,
// hit, miss, HEAD, uncacheable and error alike, the same on both paths.
func TestRouteResponseHeaders(t *testing.T) {
	clk := newClock()
	set := func(cfg *config.Config) {
		cfg.Routes[0].ResponseHeaders = map[string]string{"x-served-by": "zerohop-test", "Cache-Control": "private, max-age=5"}
	}
	fast := newHarness(t, harnessOptions{handler: fastUpstream, clock: clk, config: set})
	plain := newHarness(t, harnessOptions{handler: fastUpstream, clock: clk, config: set, plainServer: true})
	for i, rq := range []struct{ method, path string }{
		{"GET", "/cache?a=1"}, {"GET", "/cache?a=1"}, {"HEAD", "/cache?a=1"}, {"GET", "/nocache"},
		{"GET", "/missing"}, {"GET", "/big"}, {"GET", "/big"},
	} {
		a := fast.do(rq.method, rq.path, nil, nil)
		b := plain.do(rq.method, rq.path, nil, nil)
		name := fmt.Sprintf("#%d %s %s", i, rq.method, rq.path)
		for _, r := range []*result{a, b} {
			if r.Header.Get("X-Served-By") != "zerohop-test" || r.Header.Get("Cache-Control") != "private, max-age=5" {
				t.Errorf("%s: X-Served-By %q Cache-Control %q; want the route's", name, r.Header.Get("X-Served-By"), r.Header.Values("Cache-Control"))
			}
		}
		sameAnswer(t, name, "fast", "net/http", a, b, a.body, b.body)
	}
	// What is stored is the upstream's response, not the filter's fields.
	if r := fast.get("/cache?a=1"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("the route's Cache-Control changed what is cached: %q", r.cacheStatus())
	}
}
