package iptables

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []PortRange
		err  bool
	}{
		{"80", []PortRange{{80, 80}}, false},
		{"80, 443,8080-8090", []PortRange{{80, 80}, {443, 443}, {8080, 8090}}, false},
		{"8080:8090", []PortRange{{8080, 8090}}, false},
		{"", nil, false},
		{"0", nil, true},
		{"65536", nil, true},
		{"90-80", nil, true},
		{"http", nil, true},
	} {
		got, err := ParsePorts(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrOptions) {
			t.Errorf("ParsePorts(%q): %v does not wrap ErrOptions", tt.in, err)
		}
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs("10.0.0.0/8, 10.1.2.3, fd00::/8,192.168.1.7/24")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.2.3/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.168.1.0/24")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseCIDRs = %v, %v; want %v", got, err, want)
	}
	if _, err := ParseCIDRs("10.0.0.0/33"); !errors.Is(err, ErrOptions) {
		t.Errorf("a bad prefix: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"no uid", Options{}, "--proxy-uid"},
		{"root", Options{ProxyUID: 0}, "--proxy-uid"},
		{"own port", Options{ProxyUID: 1337, Ports: []PortRange{{15000, 15100}}}, "own port 15001"},
		{"inbound without port", Options{ProxyUID: 1337, InboundPorts: []PortRange{{8080, 8080}}}, "--inbound-port"},
		{"ok", Options{ProxyUID: 1337}, ""},
	} {
		err := tt.o.Check()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrOptions) {
			t.Errorf("%s: %v; want an ErrOptions naming %q", tt.name, err, tt.want)
		}
	}
	o := Options{ProxyUID: 1337}
	o.Check()
	if o.OutboundPort != 15001 || !slices.Equal(o.Ports, []PortRange{{80, 80}}) {
		t.Errorf("defaults: port %d, ports %v", o.OutboundPort, o.Ports)
	}
}

func TestRules(t *testing.T) {
	o := Options{ProxyUID: 1337, ProxyGID: 1338, Ports: []PortRange{{80, 80}, {8080, 8090}},
		IncludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		InboundPorts: []PortRange{{9090, 9090}}, InboundPort: 15006}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	want4 := []string{
		":ZEROHOP_OUTPUT - [0:0]", ":ZEROHOP_REDIRECT - [0:0]", ":ZEROHOP_INBOUND - [0:0]", ":ZEROHOP_IN_REDIRECT - [0:0]",
		"-A ZEROHOP_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
		"-A ZEROHOP_OUTPUT -m owner --uid-owner 1337 -j RETURN",
		"-A ZEROHOP_OUTPUT -m owner --gid-owner 1338 -j RETURN",
		"-A ZEROHOP_OUTPUT -o lo -j RETURN",
		"-A ZEROHOP_OUTPUT -d 10.96.0.0/12 -j RETURN",
		"-A ZEROHOP_OUTPUT -d 10.0.0.0/8 -p tcp -m multiport --dports 80,8080:8090 -j ZEROHOP_REDIRECT",
		"-A OUTPUT -p tcp -j ZEROHOP_OUTPUT",
		"-A ZEROHOP_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
		"-A ZEROHOP_INBOUND -p tcp -m multiport --dports 9090 -j ZEROHOP_IN_REDIRECT",
		"-A PREROUTING -p tcp -j ZEROHOP_INBOUND",
	}
	if got := o.Rules(false); !slices.Equal(got, want4) {
		t.Errorf("IPv4 rules:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want4, "\n"))
	}
	got6 := strings.Join(o.Rules(true), "\n")
	if !strings.Contains(got6, "-d fd00::/8 -p tcp") || strings.Contains(got6, "10.") {
		t.Errorf("IPv6 rules take the IPv6 ranges only:\n%s", got6)
	}
	// A script is one transaction.
	if s := Script(&o, false); !strings.HasPrefix(s, "*nat\n") || !strings.HasSuffix(s, "COMMIT\n") {
		t.Errorf("script:\n%s", s)
	}
}

// TestMultiport: --dports holds at most 15 ports, a range counting two.
func TestMultiport(t *testing.T) {
	var rs []PortRange
	for p := uint16(1); p <= 20; p++ {
		rs = append(rs, PortRange{p, p})
	}
	rs = append(rs, PortRange{100, 200})
	got := multiport(rs)
	if len(got) != 2 || strings.Count(got[0], ",") != 14 || got[1] != "16,17,18,19,20,100:200" {
		t.Errorf("multiport = %q", got)
	}
}
