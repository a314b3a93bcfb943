package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// routeTable builds n routes of mixed kinds, as an operator with many
// services might: exact and wildcard hosts and any host; path prefixes,
// exact paths and regular expressions; methods, exact header values,
// header rules and query conditions.
func routeTable(rng *rand.Rand, n int) []*route {
	var rs []*route
	for i := range n {
		rc := config.Route{Name: fmt.Sprintf("r%d", i)}
		m := &rc.Match
		svc := rng.IntN(n/4 + 1)
		switch k := rng.IntN(6); k {
		case 0, 1:
			m.Host = fmt.Sprintf("h%d.example.com", rng.IntN(20))
		case 2:
			m.Host = fmt.Sprintf("*.w%d.example.com", rng.IntN(10))
		}
		switch k := rng.IntN(20); {
		case k < 8:
			m.PathPrefix = fmt.Sprintf("/svc%d/v%d/", svc, rng.IntN(3))
		case k < 12:
			m.PathExact = fmt.Sprintf("/svc%d/items/%d", svc, rng.IntN(50))
		case k < 15:
			m.PathRegex = fmt.Sprintf("/svc%d/items/[0-9]+/detail", svc)
		case k < 17:
			m.PathRegex = fmt.Sprintf("/api/v[0-9]+/svc%d/.*", svc)
		default:
			// Routes by host alone: for every path of one virtual host.
			m.Host = fmt.Sprintf("h%d.example.com", rng.IntN(20))
		}
		if rng.IntN(10) < 3 {
			m.Methods = []string{http.MethodGet}
		}
		switch rng.IntN(10) {
		case 0, 1:
			m.Headers = map[string]string{"X-Tenant": fmt.Sprintf("t%d", rng.IntN(5))}
		case 2:
			m.HeaderRules = []config.FieldMatch{{Name: "User-Agent", Prefix: "curl/"}}
		case 3:
			m.HeaderRules = []config.FieldMatch{{Name: "X-Version", Regex: "v[23]", Invert: true}}
		case 4:
			m.HeaderRules = []config.FieldMatch{{Name: "X-Canary", Present: true}}
		case 5:
			m.Query = []config.FieldMatch{{Name: "v", Exact: fmt.Sprint(rng.IntN(3))}}
		case 6:
			m.Query = []config.FieldMatch{{Name: "id", Regex: "[0-9]+"}}
		}
		rs = append(rs, mustCompileRoute(rc))
	}
	return rs
}

type routeReq struct {
	method, host, path, query string
	h                         http.Header
}

// routeRequests makes requests aimed at the routes of rs (and some at
// nothing in particular).
func routeRequests(rng *rand.Rand, rs []*route, n int) []routeReq {
	var out []routeReq
	for range n {
		r := rs[rng.IntN(len(rs))]
		q := routeReq{method: http.MethodGet, host: fmt.Sprintf("h%d.example.com", rng.IntN(25)), h: http.Header{}}
		switch {
		case r.wildcard:
			q.host = "a" + r.host
		case r.host != "":
			q.host = r.host
		}
		switch {
		case r.pathExact != "":
			q.path = r.pathExact
		case r.pathPrefix != "":
			q.path = r.pathPrefix + "x/y"
		case r.conds.pathRE != nil:
			p, _ := r.conds.pathRE.LiteralPrefix()
			q.path = p + "12/detail"
		default:
			q.path = fmt.Sprintf("/svc%d/v1/z", rng.IntN(300))
		}
		if rng.IntN(4) == 0 {
			q.method = http.MethodPost
		}
		for _, kv := range r.headers {
			if rng.IntN(3) > 0 {
				q.h.Set(kv[0], kv[1])
			}
		}
		switch rng.IntN(6) {
		case 0:
			q.h.Set("User-Agent", "curl/8")
		case 1:
			q.h.Set("X-Version", "v2")
		case 2:
			q.h.Set("X-Canary", "1")
		}
		switch rng.IntN(5) {
		case 0:
			q.query = "v=1&id=42"
		case 1:
			q.query = "id=x%20y&v=2"
		case 2:
			q.query = "v"
		}
		out = append(out, q)
	}
	return out
}

// scan is the definition the index must agree with: the first route, in
// configuration order, whose conditions hold.
func scan(rs []*route, q *routeReq) *route {
	for _, r := range rs {
		if r.match(q.method, requestFields(q.h), q.host, q.path, q.query) {
			return r
		}
	}
	return nil
}

func TestRouteIndexMatchesScan(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		rs := routeTable(rng, 50+rng.IntN(400))
		ix := newRouteIndex(rs)
		matched := 0
		for _, q := range routeRequests(rng, rs, 2000) {
			want := scan(rs, &q)
			got := ix.find(q.method, requestFields(q.h), q.host, q.path, q.query)
			if got != want {
				t.Fatalf("seed %d: %s %s%s?%s %v: index found %v, scan %v", seed, q.method, q.host, q.path, q.query, q.h, name(got), name(want))
			}
			if got != nil {
				matched++
			}
		}
		if matched < 500 {
			t.Fatalf("seed %d: only %d of 2000 requests matched a route: the table tests too little", seed, matched)
		}
	}
}

func name(r *route) string {
	if r == nil {
		return "<nil>"
	}
	return r.name
}

// TestRouteMatchKinds checks each condition on its own, through routeFor.
func TestRouteMatchKinds(t *testing.T) {
	routes := []config.Route{
		{Name: "regex", Match: config.Match{PathRegex: `/items/[0-9]+`}},
		{Name: "exact", Match: config.Match{PathExact: "/x"}},
		{Name: "hdr-present", Match: config.Match{PathPrefix: "/h/", HeaderRules: []config.FieldMatch{{Name: "x-canary", Present: true}}}},
		{Name: "hdr-prefix", Match: config.Match{PathPrefix: "/h/", HeaderRules: []config.FieldMatch{{Name: "User-Agent", Prefix: "curl/"}}}},
		{Name: "hdr-regex", Match: config.Match{PathPrefix: "/h/", HeaderRules: []config.FieldMatch{{Name: "X-V", Regex: "v[23]"}}}},
		{Name: "hdr-not-exact", Match: config.Match{PathPrefix: "/h/", HeaderRules: []config.FieldMatch{{Name: "X-Env", Exact: "prod", Invert: true}}}},
		{Name: "q-present", Match: config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "debug", Present: true}}}},
		{Name: "q-exact", Match: config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "a b", Exact: "c&d"}}}},
		{Name: "q-regex", Match: config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "id", Regex: "[0-9]+"}}}},
		{Name: "q-absent", Match: config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "skip", Present: true, Invert: true}}}},
		{Name: "wild", Match: config.Match{Host: "*.example.com", PathPrefix: "/w/"}},
		{Name: "post", Match: config.Match{Methods: []string{"POST"}}},
	}
	var rs []*route
	for _, rc := range routes {
		rs = append(rs, mustCompileRoute(rc))
	}
	st := &state{routes: rs, index: newRouteIndex(rs)}
	for _, tt := range []struct {
		method, host, path, query string
		h                         http.Header
		want                      string
	}{
		{"GET", "a", "/items/42", "", nil, "regex"},
		{"GET", "a", "/items/42/more", "", nil, ""}, // a regex matches the whole path
		{"GET", "a", "/items/", "", nil, ""},
		{"GET", "a", "/x", "", nil, "exact"},
		{"GET", "a", "/x/", "", nil, ""},
		{"GET", "a", "/h/1", "", http.Header{"X-Canary": {"1"}}, "hdr-present"},
		{"GET", "a", "/h/1", "", http.Header{"User-Agent": {"curl/8.1"}}, "hdr-prefix"},
		{"GET", "a", "/h/1", "", http.Header{"X-V": {"v3"}, "X-Env": {"prod"}}, "hdr-regex"},
		{"GET", "a", "/h/1", "", http.Header{"X-V": {"v33"}, "X-Env": {"prod"}}, ""},
		{"GET", "a", "/h/1", "", http.Header{"X-Env": {"dev"}}, "hdr-not-exact"},
		{"GET", "a", "/h/1", "", nil, "hdr-not-exact"}, // absent is not "prod"
		{"GET", "a", "/q/", "debug", nil, "q-present"},
		{"GET", "a", "/q/", "x=1&debug=", nil, "q-present"},
		{"GET", "a", "/q/", "a+b=c%26d", nil, "q-exact"},
		{"GET", "a", "/q/", "a%20b=c%26d", nil, "q-exact"},
		{"GET", "a", "/q/", "id=17&skip", nil, "q-regex"},
		{"GET", "a", "/q/", "id=x17", nil, "q-absent"},
		{"GET", "a", "/q/", "skip=1", nil, ""},
		{"GET", "a.example.com", "/w/", "", nil, "wild"},
		{"GET", "a.b.example.com", "/w/", "", nil, "wild"},
		{"GET", "example.com", "/w/", "", nil, ""},
		{"POST", "a", "/nothing", "", nil, "post"},
		{"POST", "a", "/x", "", nil, "exact"}, // first match wins
	} {
		h := tt.h
		if h == nil {
			h = http.Header{}
		}
		got := st.routeFor(tt.method, requestFields(h), tt.host, tt.path, tt.query)
		if g := name(got); g != tt.want && !(g == "<nil>" && tt.want == "") {
			t.Errorf("%s %s%s?%s %v: route %s, want %q", tt.method, tt.host, tt.path, tt.query, tt.h, g, tt.want)
		}
	}
}

func TestRouteMatchAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rs := routeTable(rng, 1000)
	ix := newRouteIndex(rs)
	qs := routeRequests(rng, rs, 256)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		q := &qs[i%len(qs)]
		i++
		ix.find(q.method, requestFields(q.h), q.host, q.path, q.query)
	}); n != 0 {
		t.Fatalf("route matching allocates %.1f times per request; want 0", n)
	}
}

// BenchmarkRouteMatch matches requests among 1,000 routes of mixed kinds
// and reports the per-match p50 and p99 (each match timed on its own, the
// clock reading included) besides the mean.
func BenchmarkRouteMatch(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n, "routes"), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			rs := routeTable(rng, n)
			ix := newRouteIndex(rs)
			qs := routeRequests(rng, rs, 4096)
			durs := make([]time.Duration, 0, 1<<20)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				q := &qs[i&4095]
				t0 := time.Now()
				ix.find(q.method, requestFields(q.h), q.host, q.path, q.query)
				if len(durs) < cap(durs) {
					durs = append(durs, time.Since(t0))
				}
			}
			b.StopTimer()
			if len(durs) > 0 {
				slices.Sort(durs)
				b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}

// BenchmarkRouteScan is the linear scan the index replaces, for comparison.
func BenchmarkRouteScan(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	rs := routeTable(rng, 1000)
	qs := routeRequests(rng, rs, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		scan(rs, &qs[i&4095])
	}
}

// BenchmarkRouteIndex is BenchmarkRouteMatch's 1,000 routes without the
// per-match clock readings: the mean alone.
func BenchmarkRouteIndex(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	rs := routeTable(rng, 1000)
	ix := newRouteIndex(rs)
	qs := routeRequests(rng, rs, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q := &qs[i&4095]
		ix.find(q.method, requestFields(q.h), q.host, q.path, q.query)
	}
}

func TestRequiredLiteral(t *testing.T) {
	for re, want := range map[string]string{
		`/api/v[0-9]+/svc12/.*`: "/svc12/",
		`/items/[0-9]+`:         "/items/",
		`(?i)/abc`:              "",
		`/a|/b`:                 "/", // factored: "/" then [ab]
		`(/x/y)[0-9]`:           "/x/y",
		`.*`:                    "",
	} {
		if got := requiredLiteral(re); got != want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", re, got, want)
		}
	}
}

// mustCompileRoute compiles a route without clusters, limits or splits.
func mustCompileRoute(rc config.Route) *route {
	r, err := compileRoute(rc, nil, nil)
	if err != nil {
		panic(err)
	}
	return r
}
