package proxy

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
)

// BenchmarkRouteActions measures the route actions per request: header
// operations in every phase on each entry path's view (0 allocations on
// the fast path's reused fields), a redirect's answer (its Location is
// built per request), a direct response, and a path rewrite.
func BenchmarkRouteActions(b *testing.B) {
	fc, ok := fastpath.ConnForHead([]byte("GET /v1/items/1?x=2 HTTP/1.1\r\nHost: app.local\r\n\r\n"))
	if !ok {
		b.Fatal("head not parsed")
	}
	c := &fastSide{c: fc, h: &listenerHandler{l: config.Listener{Name: "app"}}}
	in, _ := http.NewRequest("GET", "http://app.local/v1/items/1?x=2", nil)
	x := &exchange{in: in, lis: &config.Listener{Name: "app"}, host: "app.local", target: "/v1/items/1?x=2"}
	ops := &config.HeaderOps{Set: map[string]string{"X-Env": "prod"}, Add: map[string]string{"X-Route": "items"}, Remove: []string{"Server"}}
	rc := config.Route{Name: "items", Match: config.Match{PathPrefix: "/v1/"}, RequestHeaderOps: ops, ResponseHeaderOps: ops}
	rt := &route{name: "items", filters: appendRouteFilters(nil, rc)}
	b.Run("header_ops/fast", func(b *testing.B) {
		c.req = fastRequest{c: c, method: http.MethodGet, host: "app.local", target: "/v1/items/1?x=2", route: rt}
		b.ReportAllocs()
		for b.Loop() {
			c.rf.reset()
			rt.filters.onResponse(&c.req, 200, &c.rf)
		}
	})
	b.Run("header_ops/net-http", func(b *testing.B) {
		x.route = rt
		b.ReportAllocs()
		h := http.Header{}
		srv := []string{"origin"}
		for b.Loop() {
			h["Server"] = srv
			delete(h, "X-Route")
			rt.filters.onUpstream(x, headerFields(h))
			rt.filters.onResponse(x, 200, headerFields(h))
		}
	})
	for _, act := range []struct {
		name string
		rc   config.Route
	}{
		{"redirect", config.Route{Match: config.Match{PathPrefix: "/v1/"}, Redirect: &config.Redirect{Status: 308, PathPrefix: "/v2/"}}},
		{"direct_response", config.Route{DirectResponse: &config.DirectResponse{Status: 200, Body: "ok"}}},
	} {
		rt := &route{name: act.name, filters: appendRouteFilters(nil, act.rc)}
		b.Run(act.name, func(b *testing.B) {
			c.req = fastRequest{c: c, method: http.MethodGet, host: "app.local", target: "/v1/items/1?x=2", route: rt}
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				if by, _ := rt.filters.onRequest(&c.req, &a); by == nil {
					b.Fatal("not answered")
				}
			}
		})
	}
	b.Run("rewrite", func(b *testing.B) {
		rw := compileRewrite(config.Route{Match: config.Match{PathPrefix: "/v1/"}, Rewrite: &config.Rewrite{PathPrefix: "/api/v1/", Host: "items.internal"}})
		ep, _ := url.Parse("http://10.0.0.1:8080")
		b.ReportAllocs()
		for b.Loop() {
			out := *in
			u := *in.URL
			out.URL = &u
			pr := httputil.ProxyRequest{In: in, Out: &out}
			pr.Out.URL.Scheme, pr.Out.URL.Host = ep.Scheme, ep.Host
			rw.apply(&pr)
		}
	})
}
