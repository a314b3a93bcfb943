package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zerohop/zerohop/config"
)

// dnsServer is a real DNS server on a loopback UDP socket answering A
// queries for its names from a table the test changes (AAAA: no
// records). With fail set it answers SERVFAIL.
type dnsServer struct {
	pc      net.PacketConn
	mu      sync.Mutex
	names   map[string][]netip.Addr // "name." -> addresses
	fail    atomic.Bool
	queries atomic.Int64
}

func newDNSServer(t *testing.T) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, names: map[string][]netip.Addr{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out, err := s.answer(buf[:n]); err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

func (s *dnsServer) set(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[name+"."] = nil
	for _, a := range addrs {
		s.names[name+"."] = append(s.names[name+"."], netip.MustParseAddr(a))
	}
}

func (s *dnsServer) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.queries.Add(1)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	s.mu.Lock()
	addrs, known := s.names[q.Name.String()]
	s.mu.Unlock()
	switch {
	case s.fail.Load():
		rh.RCode = dnsmessage.RCodeServerFailure
	case !known:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if rh.RCode == dnsmessage.RCodeSuccess && q.Type == dnsmessage.TypeA {
		for _, a := range addrs {
			if a.Is4() {
				rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
				if err := b.AResource(rr, dnsmessage.AResource{A: a.As4()}); err != nil {
					return nil, err
				}
			}
		}
	}
	return b.Finish()
}

// TestDNSRefresh: an endpoint named by a host name follows the name's
// addresses as they change, keeps the last ones while resolution fails,
// and sends the name as Host.
func TestDNSRefresh(t *testing.T) {
	// Two upstreams on one port of two loopback addresses: the name moves
	// from one to the other.
	type up struct {
		srv  *http.Server
		host atomic.Value
	}
	var ups [2]*up
	var port string
	for attempt := 0; ups[1] == nil; attempt++ {
		if attempt == 20 {
			t.Skip("no free port on both 127.0.0.1 and 127.0.0.2")
		}
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(l1.Addr().String())
		l2, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err != nil {
			l1.Close()
			continue
		}
		for i, l := range []net.Listener{l1, l2} {
			u := &up{}
			name := fmt.Sprint("ip", i+1)
			u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u.host.Store(r.Host)
				w.Header().Set("Cache-Control", "no-store")
				io.WriteString(w, name)
			})}
			go u.srv.Serve(l)
			t.Cleanup(func() { u.srv.Close() })
			ups[i] = u
		}
	}
	dns := newDNSServer(t)
	dns.set("svc.test", "127.0.0.1")
	h := lbHarness(t, false, func(c *config.Cluster) {
		c.Endpoints = []config.Endpoint{{URL: "http://svc.test:" + port, Weight: 1}}
		c.DNSRefresh = 30 * time.Millisecond
		c.DNSResolver = dns.pc.LocalAddr().String()
		c.LBPolicy = config.LBRoundRobin
	})
	if got := served(t, h, "/a", false); got != "ip1" {
		t.Fatalf("svc.test -> 127.0.0.1: answered by %q", got)
	}
	if got := ups[0].host.Load(); got != "svc.test:"+port {
		t.Errorf("Host %q, want the endpoint's name", got)
	}
	dns.set("svc.test", "127.0.0.2")
	awaitLB(t, "requests to follow the new address", func() bool { return served(t, h, "/b", false) == "ip2" })
	// Resolution failing: the last address stays, and failures count.
	dns.fail.Store(true)
	awaitLB(t, "failures counted", func() bool { return metricValue(t, h, "zerohop_dns_failures_total", "cluster", "lb") >= 2 })
	for i := range 5 {
		if got := served(t, h, fmt.Sprint("/c/", i), i%2 == 0); got != "ip2" {
			t.Fatalf("resolution failing: request went to %q", got)
		}
	}
	// Both addresses: both used, round robin.
	dns.fail.Store(false)
	dns.set("svc.test", "127.0.0.1", "127.0.0.2")
	awaitLB(t, "both addresses in use", func() bool {
		a, b := served(t, h, "/d", false), served(t, h, "/d", false)
		return a != b
	})
	if got := metricValue(t, h, "zerohop_endpoint_healthy", "endpoint", "127.0.0.2:"+port); got != 1 {
		t.Errorf("per-address endpoint gauge %v", got)
	}
	if !strings.HasPrefix(h.p.Config().Clusters[0].Endpoints[0].URL, "http://svc.test") {
		t.Error("the configuration in use lost the name")
	}
}
