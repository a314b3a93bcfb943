package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseDestination(t *testing.T) {
	for _, tt := range []struct {
		in      string
		prefix  string
		port    uint16
		wantErr bool
	}{
		{in: "10.0.0.0/8", prefix: "10.0.0.0/8"},
		{in: "10.1.2.3/8", prefix: "10.0.0.0/8"}, // masked
		{in: "127.0.0.1", prefix: "127.0.0.1/32"},
		{in: "::1", prefix: "::1/128"},
		{in: "::ffff:127.0.0.1", prefix: "127.0.0.1/32"},
		{in: "::ffff:169.254.0.0/112", prefix: "169.254.0.0/16"},
		{in: "127.0.0.1:8080", prefix: "127.0.0.1/32", port: 8080},
		{in: "[fd00:ec2::254]:80", prefix: "fd00:ec2::254/128", port: 80},
		{in: "localhost:80", wantErr: true}, // names come with the egress policy
		{in: "example.com", wantErr: true},
		{in: "127.0.0.1:0", wantErr: true},
		{in: "127.0.0.1:99999", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "", wantErr: true},
	} {
		d, err := ParseDestination(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseDestination(%q) = %+v; want an error", tt.in, d)
			}
			continue
		}
		if err != nil || d.Prefix.String() != tt.prefix || d.Port != tt.port {
			t.Errorf("ParseDestination(%q) = %v port %d, %v; want %s port %d", tt.in, d.Prefix, d.Port, err, tt.prefix, tt.port)
		}
	}
	d, _ := ParseDestination("127.0.0.1:8080")
	if !d.Contains(netip.MustParseAddrPort("127.0.0.1:8080")) || d.Contains(netip.MustParseAddrPort("127.0.0.1:8081")) ||
		!d.Contains(netip.MustParseAddrPort("[::ffff:127.0.0.1]:8080")) {
		t.Error("Contains does not match on address and port")
	}
}

func TestForwardSection(t *testing.T) {
	c, err := Parse("t.yaml", []byte("listeners: [{name: a, address: 127.0.0.1:1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Listeners[0].Forward; f.AllowLoopback || len(f.AllowDestinations) != 0 || f.TunnelIdleTimeout != time.Hour {
		t.Errorf("defaults: %+v; want nothing allowed and a 1h tunnel idle timeout", f)
	}
	c, err = Parse("t.yaml", []byte("listeners: [{name: a, address: 127.0.0.1:1, forward: {allow_loopback: true}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Listeners[0].Forward; !f.AllowLoopback || f.TunnelIdleTimeout != time.Hour {
		t.Errorf("a partial forward section lost its defaults: %+v", f)
	}

	for _, tt := range []struct{ yaml, want string }{
		{lines("listeners:", "  - {name: a, address: 127.0.0.1:1, forward: {allow_destinations: [ok, 10.0.0.0/8, 'localhost:80']}}"),
			`t.yaml:2: listeners[0].forward.allow_destinations[0]: invalid destination "ok"`},
		{lines("listeners:", "  - {name: a, address: 127.0.0.1:1, forward: {tunnel_idle_timeout: -1s}}"),
			`t.yaml:2: listeners[0].forward.tunnel_idle_timeout: invalid duration "-1s": must not be negative`},
		{lines("listeners:", "  - name: a", "    mode: reverse", "    forward: {allow_loopback: true}") + validTail,
			`t.yaml:4: listeners[0].forward: forward settings apply only to listeners with mode: forward`},
		{lines("listeners:", "  - {name: a, forward: {allow_all: true}}"),
			`listeners[0].forward.allow_all: unknown field`},
	} {
		_, err := Parse("t.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\ngot %v\nwant %s", tt.yaml, err, tt.want)
		}
	}
	c = Default()
	c.Listeners[0].Forward.AllowDestinations = []string{"nope"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "listeners[0].forward.allow_destinations[0]") {
		t.Errorf("Validate without a file: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want string // "" = no warning
	}{
		{"listeners: [{name: a, address: 127.0.0.1:8089}]\n", ""},
		{"listeners: [{name: a, address: 'localhost:8089'}]\n", ""},
		{"listeners: [{name: a, address: '[::1]:8089'}]\n", ""},
		{"listeners: [{name: a, address: '0.0.0.0:8089'}]\n", `listeners[0].address: forward listener "a" on "0.0.0.0:8089" is not a loopback address`},
		{"listeners: [{name: a, address: ':8089'}]\n", `listeners[0].address: forward listener "a" on ":8089"`},
		{"listeners: [{name: a, address: '0.0.0.0:8080', mode: reverse}]\n" + validTail, ""},
	} {
		c, err := Parse("t.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		ws := strings.Join(c.Warnings(), "\n")
		if tt.want == "" && ws != "" || !strings.Contains(ws, tt.want) {
			t.Errorf("%s: warnings %q; want %q", tt.yaml, ws, tt.want)
		}
	}
}
