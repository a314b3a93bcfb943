package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
)

// BenchmarkEgressFilter is the egress listener filter's request phase on
// a forward request without a route, on the fast path's view: the
// built-in refusals only, and with a policy of 100 rules decided by the
// last (allow) or by none (the default). 0 allocations when it lets the
// request through.
func BenchmarkEgressFilter(b *testing.B) {
	cfg := config.Default()
	rules := make([]config.EgressRule, 100)
	for i := range rules {
		rules[i] = config.EgressRule{Name: fmt.Sprintf("r%d", i), Action: "deny",
			Hosts: []string{fmt.Sprintf("svc%d.example.com", i), fmt.Sprintf("*.team%d.example.net", i)},
			Ports: []string{"443", "8000-8999"}, Methods: []string{"GET", "CONNECT"}}
	}
	rules[99] = config.EgressRule{Name: "last", Action: "allow", Hosts: []string{"api.example.org"}}
	p, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	l := config.Listener{Name: "app", Mode: config.ModeForward}
	for _, bb := range []struct {
		name   string
		egress *config.Egress
		host   string
	}{
		{"builtin", nil, "api.example.org"},
		{"100-rules-last", &config.Egress{Default: "deny", Rules: rules}, "api.example.org"},
		{"100-rules-default", &config.Egress{Default: "allow", Rules: rules}, "other.example.org"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ep, err := p.compileEgress(bb.egress)
			if err != nil {
				b.Fatal(err)
			}
			f := p.egressFilters(&state{egress: ep}, l)[0]
			fc, _ := fastpath.ConnForHead([]byte("GET http://" + bb.host + "/f HTTP/1.1\r\nHost: " + bb.host + "\r\n\r\n"))
			c := &fastSide{c: fc, h: &listenerHandler{l: l}}
			c.req = fastRequest{c: c, method: http.MethodGet, host: bb.host, target: "/f"}
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				if f.OnRequest(&c.req, &a) != filterContinue {
					b.Fatal("refused")
				}
			}
		})
	}
}
