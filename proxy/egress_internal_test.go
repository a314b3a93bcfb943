package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// TestEgressCheck is the guard's decision table. No address here is
// dialled.
func TestEgressCheck(t *testing.T) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.AddLocalAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9901}) // admin
	p.AddLocalAddr(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080})    // a listener on every address
	guard := func(loopback bool, allow ...string) *egressGuard {
		return p.guardFor(config.Listener{Name: "t", Mode: config.ModeForward,
			Forward: config.Forward{AllowLoopback: loopback, AllowDestinations: allow}})
	}
	strict, loop := guard(false), guard(true)
	for _, tt := range []struct {
		g    *egressGuard
		dest string
		want string // "" = allowed
	}{
		{strict, "10.0.0.7:80", ""},
		{strict, "192.0.2.1:443", ""},
		{strict, "[2001:db8::1]:80", ""},
		{strict, "127.0.0.1:80", "loopback"},
		{strict, "127.255.255.254:80", "loopback"},
		{strict, "[::1]:80", "loopback"},
		{strict, "[::ffff:127.0.0.1]:80", "loopback"},
		{strict, "0.0.0.0:80", "loopback"},
		{strict, "[::]:80", "loopback"},
		{strict, "169.254.0.1:80", "link_local"},
		{strict, "[fe80::1]:80", "link_local"},
		{strict, "[fe80::1%eth0]:80", "link_local"},
		{strict, "169.254.169.254:80", "metadata"},
		{strict, "[::ffff:169.254.169.254]:80", "metadata"},
		{strict, "169.254.170.2:80", "metadata"},
		{strict, "[fd00:ec2::254]:80", "metadata"},
		{strict, "100.100.100.200:80", "metadata"},
		{strict, "100.100.100.201:80", ""},
		{strict, "127.0.0.1:9901", "self"},
		{strict, "0.0.0.0:9901", "self"},
		{strict, "127.0.0.2:9901", "loopback"}, // not the admin socket, but loopback
		{strict, "127.0.0.1:8080", "self"},     // bound to every address
		{strict, "[::1]:8080", "self"},
		{loop, "127.0.0.1:80", ""},
		{loop, "[::1]:80", ""},
		{loop, "127.0.0.2:9901", ""},
		{loop, "127.0.0.1:9901", "self"},
		{loop, "169.254.169.254:80", "metadata"},
		{loop, "169.254.0.1:80", "link_local"},
		{guard(false, "127.0.0.1:80"), "127.0.0.1:80", ""},
		{guard(false, "127.0.0.1:80"), "127.0.0.1:81", "loopback"},
		{guard(false, "127.0.0.0/8"), "127.0.0.9:81", ""},
		{guard(false, "127.0.0.0/8"), "127.0.0.1:9901", "self"}, // a prefix does not open the sidecar
		{guard(false, "127.0.0.1"), "127.0.0.1:9901", "self"},   // nor an address without the port
		{guard(false, "127.0.0.1:9901"), "127.0.0.1:9901", ""},
		{guard(false, "169.254.0.0/16"), "169.254.1.1:80", ""},
		{guard(false, "169.254.0.0/16"), "169.254.169.254:80", "metadata"}, // nor a metadata service
		{guard(false, "169.254.169.254"), "169.254.169.254:80", ""},
		{guard(false, "[fd00:ec2::254]:80"), "[fd00:ec2::254]:80", ""},
	} {
		var got string
		if r := tt.g.check(netip.MustParseAddrPort(tt.dest)); r != nil {
			got = r.reason
		}
		if got != tt.want {
			t.Errorf("allow_loopback=%v allow=%v %s: %q; want %q", tt.g.cfg.AllowLoopback, tt.g.cfg.AllowDestinations, tt.dest, got, tt.want)
		}
	}
	for _, tt := range []struct{ host, want string }{
		{"localhost:9901", "self"},
		{"LocalHost.:80", "loopback"},
		{"a.b.localhost", "loopback"},
		{"127.0.0.1", "loopback"}, // port 80
		{"[::1]:80", "loopback"},
		{"metadata.google.internal", "metadata"},
		{"catalog.internal:80", ""},  // names are checked when dialled
		{"1password.example:80", ""}, // a name that starts with a digit
		{"localhost.example.com:80", ""},
	} {
		var got string
		if r := strict.checkHost(tt.host, 80); r != nil {
			got = r.reason
		}
		if got != tt.want {
			t.Errorf("checkHost(%q) = %q; want %q", tt.host, got, tt.want)
		}
	}
}

// TestEgressDialCheck: what checkHost lets through (any name) is checked
// by address at the dial, for requests and tunnels alike, before the
// socket connects: the listener below never sees a connection.
func TestEgressDialCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	g := p.guardFor(config.Listener{Name: "t", Mode: config.ModeForward})
	if _, err := g.dialer.Dial("tcp", ln.Addr().String()); !errors.Is(err, ErrDestinationProhibited) {
		t.Errorf("tunnel dial: %v; want ErrDestinationProhibited", err)
	}
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	if _, err := g.transport.RoundTrip(req); !errors.Is(err, ErrDestinationProhibited) {
		t.Errorf("request: %v; want ErrDestinationProhibited", err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("the refused dial connected")
	}
}
