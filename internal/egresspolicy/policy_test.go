package egresspolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

func mustNew(t testing.TB, def bool, specs ...Spec) *Policy {
	t.Helper()
	p, err := New(def, specs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	p := mustNew(t, false,
		Spec{Name: "no-internal", CIDRs: []string{"10.0.0.0/8", "fd00::/8", "::ffff:192.168.0.0/112"}},
		Spec{Name: "api", Allow: true, Hosts: []string{"api.example.com"}, Ports: []string{"443"}, Methods: []string{"CONNECT"}},
		Spec{Name: "sub", Allow: true, Hosts: []string{"*.example.net"}, Schemes: []string{"http"}},
		Spec{Name: "high", Allow: true, Ports: []string{"8000-8999"}, CIDRs: []string{"192.0.2.0/24"}},
		Spec{Name: "gets", Allow: true, Methods: []string{"GET"}, Hosts: []string{"*"}},
	)
	a := netip.MustParseAddr
	for _, tt := range []struct {
		name  string
		d     Dest
		rule  string // "" = pending (needs the address)
		allow bool
	}{
		{"name, cidr rule pending", Dest{Host: "x.test", Port: 80, Scheme: "http", Method: "POST"}, "", true},
		{"address in 10/8", Dest{Host: "x.test", Addr: a("10.1.2.3"), Port: 80, Scheme: "http", Method: "GET"}, "no-internal", false},
		{"v6 in fd00::/8", Dest{Addr: a("fd00::1"), Port: 443, Method: "CONNECT"}, "no-internal", false},
		{"mapped prefix taken as v4", Dest{Addr: a("192.168.1.1"), Port: 443, Method: "CONNECT"}, "no-internal", false},
		{"exact host, port, method", Dest{Host: "api.example.com", Addr: a("192.0.2.1"), Port: 443, Scheme: "https", Method: "CONNECT"}, "api", true},
		{"exact host, wrong port", Dest{Host: "api.example.com", Addr: a("198.51.100.1"), Port: 444, Scheme: "https", Method: "CONNECT"}, "default", false},
		{"suffix", Dest{Host: "a.b.example.net", Addr: a("198.51.100.1"), Port: 80, Scheme: "http", Method: "POST"}, "sub", true},
		{"suffix is not the apex", Dest{Host: "example.net", Addr: a("198.51.100.1"), Port: 80, Scheme: "http", Method: "POST"}, "default", false},
		{"suffix, other scheme", Dest{Host: "a.example.net", Addr: a("198.51.100.1"), Port: 443, Scheme: "https", Method: "CONNECT"}, "default", false},
		{"no lookalike suffix", Dest{Host: "badexample.net", Addr: a("198.51.100.1"), Port: 80, Scheme: "http", Method: "POST"}, "default", false},
		{"port range and cidr", Dest{Host: "h", Addr: a("192.0.2.9"), Port: 8500, Method: "POST"}, "high", true},
		{"port range edge", Dest{Host: "h", Addr: a("192.0.2.9"), Port: 9000, Method: "POST"}, "default", false},
		{"first match: GET to 10/8 is denied", Dest{Host: "h", Addr: a("10.0.0.1"), Port: 80, Method: "GET"}, "no-internal", false},
		{"any host", Dest{Host: "anything", Addr: a("198.51.100.1"), Port: 80, Method: "GET"}, "gets", true},
		{"no host: * does not match", Dest{Addr: a("198.51.100.1"), Port: 80, Method: "GET"}, "default", false},
	} {
		r, allow := p.Decide(tt.d)
		name := ""
		if r != nil {
			name = r.Name
		}
		if name != tt.rule || allow != tt.allow {
			t.Errorf("%s: Decide(%+v) = %q %v; want %q %v", tt.name, tt.d, name, allow, tt.rule, tt.allow)
		}
	}
	// A rule the other fields rule out does not leave a name pending.
	r, allow := p.Decide(Dest{Host: "api.example.com", Port: 443, Scheme: "https", Method: "CONNECT"})
	if r != nil || !allow {
		t.Errorf("a name before no-internal is decided pending; got %v %v", r, allow)
	}
	long := Spec{Name: "long", Allow: true}
	for i := 0; i < 50; i++ {
		long.Hosts = append(long.Hosts, fmt.Sprintf("H%d.Example.com", i))
	}
	lp := mustNew(t, false, long)
	for h, want := range map[string]bool{"h7.example.com": true, "h49.example.com": true, "h50.example.com": false} {
		if r, allow := lp.Decide(Dest{Host: h, Port: 443}); allow != want || (r.Name == "long") != want {
			t.Errorf("a long host list: Decide(%q) = %q %v; want allowed %v", h, r.Name, allow, want)
		}
	}
	q := mustNew(t, true, Spec{Name: "v6only", CIDRs: []string{"2001:db8::/32"}, Methods: []string{"POST"}})
	if r, allow := q.Decide(Dest{Host: "h", Port: 80, Method: "GET"}); r == nil || r.Name != DefaultRule || !allow {
		t.Errorf("method rules out the cidr rule: %v %v; want the default", r, allow)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{"API.Example.COM.": "api.example.com", "[::1]": "::1", "a.b": "a.b"} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q; want %q", in, got, want)
		}
	}
	var sink string
	if n := testing.AllocsPerRun(100, func() { sink = NormalizeHost("api.example.com.") }); n != 0 || sink == "" {
		t.Errorf("NormalizeHost of a lower-case name allocates %v times", n)
	}
}

func TestBadRules(t *testing.T) {
	for _, s := range []Spec{
		{Name: "a", Hosts: []string{"10.0.0.1"}},
		{Name: "a", Hosts: []string{"*.*.x"}},
		{Name: "a", Hosts: []string{"a b"}},
		{Name: "a", CIDRs: []string{"10.0.0.0/40"}},
		{Name: "a", CIDRs: []string{"fe80::1%eth0"}},
		{Name: "a", Ports: []string{"0"}},
		{Name: "a", Ports: []string{"70000"}},
		{Name: "a", Ports: []string{"9-1"}},
	} {
		if _, err := New(true, []Spec{s}); !errors.Is(err, ErrRule) {
			t.Errorf("New(%+v) = %v; want ErrRule", s, err)
		}
	}
}

// hundredRules is a policy of 100 rules, each with a few hosts, a cidr
// and a port, in the shape an operator writes; the destination is
// decided by the last one.
func hundredRules(tb testing.TB) *Policy {
	specs := make([]Spec, 100)
	for i := range specs {
		specs[i] = Spec{Name: fmt.Sprintf("r%d", i), Allow: i%2 == 0,
			Hosts:   []string{fmt.Sprintf("svc%d.example.com", i), fmt.Sprintf("*.team%d.example.net", i)},
			CIDRs:   []string{fmt.Sprintf("10.%d.0.0/16", i)},
			Ports:   []string{"443", "8000-8999"},
			Methods: []string{"GET", "CONNECT"},
		}
	}
	specs[99].Hosts = append(specs[99].Hosts, "*.target.example.org")
	specs[99].CIDRs = append(specs[99].CIDRs, "203.0.113.0/24")
	return mustNew(tb, false, specs...)
}

func TestHundredRulesAllocs(t *testing.T) {
	p := hundredRules(t)
	d := Dest{Host: "a.target.example.org", Addr: netip.MustParseAddr("203.0.113.5"), Port: 443, Scheme: "https", Method: "CONNECT"}
	if r, allow := p.Decide(d); r == nil || r.Name != "r99" || allow {
		t.Fatalf("Decide = %v %v; want r99 deny", r, allow)
	}
	if n := testing.AllocsPerRun(100, func() { p.Decide(d) }); n != 0 {
		t.Errorf("Decide allocates %v times", n)
	}
}

// BenchmarkDecide100 decides among 100 rules, the match being the last
// (the worst case: every rule is looked at); Default is a destination no
// rule matches.
func BenchmarkDecide100(b *testing.B) {
	p := hundredRules(b)
	for _, bc := range []struct {
		name string
		d    Dest
	}{
		{"last", Dest{Host: "a.target.example.org", Addr: netip.MustParseAddr("203.0.113.5"), Port: 443, Scheme: "https", Method: "CONNECT"}},
		{"default", Dest{Host: "nowhere.example", Addr: netip.MustParseAddr("198.51.100.5"), Port: 443, Scheme: "https", Method: "CONNECT"}},
		{"first", Dest{Host: "svc0.example.com", Addr: netip.MustParseAddr("10.0.1.1"), Port: 443, Scheme: "https", Method: "GET"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Decide(bc.d)
			}
		})
	}
}
