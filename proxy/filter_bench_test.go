package proxy

import (
	"net/http"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
)

// BenchmarkFilterChain measures a pass through a route's chain, every
// phase, with each entry path's request view: empty (what every request
// pays today: 0 allocs) and with the response_headers example filter
// (0 allocs on the fast path's reused fields).
func BenchmarkFilterChain(b *testing.B) {
	fc, ok := fastpath.ConnForHead([]byte("GET /f HTTP/1.1\r\nHost: app.local\r\nX-Key: k\r\n\r\n"))
	if !ok {
		b.Fatal("head not parsed")
	}
	c := &fastSide{c: fc, h: &listenerHandler{l: config.Listener{Name: "app"}}}
	in, _ := http.NewRequest("GET", "http://app.local/f", nil)
	in.Header.Set("X-Key", "k")
	x := &exchange{in: in, lis: &config.Listener{Name: "app"}, host: "app.local", target: "/f"}
	hdr := http.Header{}
	for _, bb := range []struct {
		name  string
		chain chain
	}{
		{"empty", nil},
		{"response_headers", chain{newSetFieldsFilter(map[string]string{"X-Served-By": "zerohop"})}},
	} {
		rt := &route{name: "main", filters: bb.chain}
		b.Run(bb.name+"/fast", func(b *testing.B) {
			c.req = fastRequest{c: c, method: http.MethodGet, host: "app.local", target: "/f", route: rt}
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				if by, _ := rt.filters.onRequest(&c.req, &a); by != nil {
					b.Fatal("answered")
				}
				c.rf.reset()
				rt.filters.onResponse(&c.req, 200, &c.rf)
			}
		})
		b.Run(bb.name+"/net-http", func(b *testing.B) {
			x.route = rt
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				if by, _ := rt.filters.onRequest(x, &a); by != nil {
					b.Fatal("answered")
				}
				rt.filters.onUpstream(x, headerFields(hdr))
				rt.filters.onResponse(x, 200, headerFields(hdr))
			}
		})
	}
}

// TestEmptyChainAllocs is BenchmarkFilterChain's promise as a test: a
// pass through an empty chain, on either view, allocates nothing.
func TestEmptyChainAllocs(t *testing.T) {
	fc, _ := fastpath.ConnForHead([]byte("GET /f HTTP/1.1\r\nHost: app.local\r\n\r\n"))
	c := &fastSide{c: fc, h: &listenerHandler{}}
	c.req = fastRequest{c: c, method: http.MethodGet}
	x := &exchange{}
	var empty chain
	var a answer
	hdr := http.Header{}
	n := testing.AllocsPerRun(100, func() {
		empty.onRequest(&c.req, &a)
		empty.onResponse(&c.req, 200, &c.rf)
		empty.onRequest(x, &a)
		empty.onUpstream(x, headerFields(hdr))
		empty.onResponse(x, 200, headerFields(hdr))
	})
	if n != 0 {
		t.Errorf("an empty chain allocates %v times per pass; want 0", n)
	}
}
