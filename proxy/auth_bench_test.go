package proxy

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/apikey"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
)

// BenchmarkAuthFilter is a pass through an API key filter and an IP
// list filter that let the request through, on each entry path's view:
// what authentication adds to a hit. The fast path's view remembers the
// key accepted on its connection (authmemo.go), so api_key/fast is a
// keep-alive client's repeated key; api_key/net-http checks it each time.
func BenchmarkAuthFilter(b *testing.B) {
	key := "key-0123456789abcdef0123456789abcdef"
	file := filepath.Join(b.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(apikey.Line("svc", "salt", key)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	res := func(string) prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}) }
	kf, err := newAPIKeyFilter("keys", &config.APIKeyAuth{File: file, Header: "X-Api-Key", Realm: "zerohop"}, res)
	if err != nil {
		b.Fatal(err)
	}
	ipf := newIPFilter("net", &config.IPAuth{Allow: []string{"10.0.0.0/8", "127.0.0.0/8", "::1"}}, res)
	fc, ok := fastpath.ConnForHead([]byte("GET /f HTTP/1.1\r\nHost: app.local\r\nX-Api-Key: " + key + "\r\n\r\n"))
	if !ok {
		b.Fatal("head not parsed")
	}
	c := &fastSide{c: fc, h: &listenerHandler{l: config.Listener{Name: "app"}}}
	in, _ := http.NewRequest("GET", "http://app.local/f", nil)
	in.Header.Set("X-Api-Key", key)
	in.RemoteAddr = "127.0.0.1:40000"
	x := &exchange{in: in, lis: &config.Listener{Name: "app"}, host: "app.local", target: "/f"}
	for _, bb := range []struct {
		name  string
		chain chain
	}{{"api_key", chain{kf}}, {"ip", chain{ipf}}} {
		rt := &route{name: "main", filters: bb.chain}
		b.Run(bb.name+"/net-http", func(b *testing.B) {
			x.route = rt
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				x.consumer = ""
				if by, _ := rt.filters.onRequest(x, &a); by != nil {
					b.Fatal("answered")
				}
			}
		})
		if bb.name == "api_key" { // the fast view's address comes from a real connection
			b.Run(bb.name+"/fast", func(b *testing.B) {
				c.req = fastRequest{c: c, method: http.MethodGet, host: "app.local", target: "/f", route: rt}
				var a answer
				b.ReportAllocs()
				for b.Loop() {
					if by, _ := rt.filters.onRequest(&c.req, &a); by != nil {
						b.Fatal("answered")
					}
				}
			})
		}
	}
}
