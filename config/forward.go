package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Destination is one forward.allow_destinations entry: a prefix of
// addresses, and a port or 0 for every port.
type Destination struct {
	Prefix netip.Prefix
	Port   uint16
}

// errDestination is wrapped by ParseDestination's errors.
var errDestination = errors.New("want an IP address or CIDR prefix (\"10.1.0.0/16\", \"::1\"), or an IP address and port (\"127.0.0.1:8080\", \"[::1]:8080\")")

// ParseDestination parses an allow_destinations entry. IPv4-mapped IPv6
// addresses are taken as the IPv4 address they map; zones and host names
// are not accepted (names would be checked before resolution, which
// DNS could then answer with anything).
func ParseDestination(s string) (Destination, error) {
	bad := func() (Destination, error) {
		return Destination{}, fmt.Errorf("invalid destination %q: %w", clip(s), errDestination)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return bad()
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return Destination{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return bad()
		}
		a = a.Unmap()
		return Destination{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return bad()
	}
	a := ap.Addr().Unmap()
	return Destination{Prefix: netip.PrefixFrom(a, a.BitLen()), Port: ap.Port()}, nil
}

// Contains reports whether d covers the address and port ap.
func (d Destination) Contains(ap netip.AddrPort) bool {
	return (d.Port == 0 || d.Port == ap.Port()) && d.Prefix.Contains(ap.Addr().Unmap())
}

// forward checks a listener's forward section.
func (v *validator) forward(p string, l *Listener) {
	f := &l.Forward
	if t := l.Transparent; l.Mode != ModeTransparent {
		if t.SniffTimeout != DefaultSniffTimeout || !t.Passthrough {
			v.errorf(p+".transparent", "transparent settings apply only to listeners with mode: transparent (this one is %q)", l.Mode)
		}
	} else {
		if t.SniffTimeout <= 0 {
			v.errorf(p+".transparent.sniff_timeout", "must be greater than 0")
		}
		if l.TLS != nil {
			v.errorf(p+".tls", "a transparent listener passes the app's TLS through untouched; it cannot terminate TLS")
		}
	}
	if l.Mode != ModeForward && l.Mode != ModeTransparent {
		// By value, not by presence: a marshalled config carries the
		// defaults of every listener.
		if f.AllowLoopback || len(f.AllowDestinations) > 0 || f.TunnelIdleTimeout != DefaultTunnelIdleTimeout {
			v.errorf(p+".forward", "forward settings apply only to listeners with mode: forward or transparent (this one is %q)", l.Mode)
		}
		return
	}
	for i, d := range f.AllowDestinations {
		if _, err := ParseDestination(d); err != nil {
			v.errorf(fmt.Sprintf("%s.forward.allow_destinations[%d]", p, i), "%v", err)
		}
	}
	v.nonNegative(p+".forward.tunnel_idle_timeout", f.TunnelIdleTimeout)
}

// Warnings lists what is valid but probably a mistake, one line each, in
// the form "listeners[1].address: ...". zerohop validate prints them and
// the sidecar logs them at start.
func (c *Config) Warnings() []string {
	var ws []string
	for i, l := range c.Listeners {
		if l.Mode != ModeForward {
			continue
		}
		host := l.Address
		if j := strings.LastIndex(host, ":"); j >= 0 {
			host = host[:j]
		}
		if !isLoopback(host) {
			ws = append(ws, fmt.Sprintf("listeners[%d].address: forward listener %q on %q is not a loopback address: "+
				"anyone who can reach it can use the sidecar as an open proxy from inside the pod; bind it to 127.0.0.1 "+
				"unless that is what you want", i, l.Name, l.Address))
		}
	}
	return append(ws, c.limitWarnings()...)
}
