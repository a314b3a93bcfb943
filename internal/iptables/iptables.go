// Package iptables writes, installs and removes the NAT rules that
// redirect a pod's TCP to the sidecar's transparent listener (outbound)
// and ingress listener (inbound), as istio-iptables and
// linkerd2-proxy-init do for their proxies. It runs in the pod's network
// namespace, from an init container with NET_ADMIN.
//
// The rules live in chains of their own in the nat table, reached by one
// jump each from OUTPUT and PREROUTING, so that installing is idempotent
// (the chains are rebuilt) and removing takes exactly what was added:
//
//	OUTPUT     -p tcp -j ZEROHOP_OUTPUT
//	ZEROHOP_OUTPUT   -m owner --uid-owner <proxy uid> -j RETURN   the sidecar's own traffic
//	                 -o lo -j RETURN                              loopback
//	                 -d <exclude cidr> -j RETURN                  each excluded range
//	                 [-d <include cidr>] -p tcp -m multiport --dports <ports> -j ZEROHOP_REDIRECT
//	ZEROHOP_REDIRECT -p tcp -j REDIRECT --to-ports <outbound port>
//	PREROUTING -p tcp -j ZEROHOP_INBOUND                          (with inbound ports)
//	ZEROHOP_INBOUND  -p tcp -m multiport --dports <app ports> -j ZEROHOP_IN_REDIRECT
//	ZEROHOP_IN_REDIRECT -p tcp -j REDIRECT --to-ports <inbound port>
package iptables

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Chains this package owns in the nat table.
const (
	ChainOutput     = "ZEROHOP_OUTPUT"
	ChainRedirect   = "ZEROHOP_REDIRECT"
	ChainInbound    = "ZEROHOP_INBOUND"
	ChainInRedirect = "ZEROHOP_IN_REDIRECT"
)

// ErrOptions is wrapped by every error of Options.Check.
var ErrOptions = errors.New("iptables: invalid options")

// Options are what to redirect, and where.
type Options struct {
	// ProxyUID is the user the sidecar runs as: its connections are never
	// redirected, or they would loop back into it. Required (> 0: a
	// sidecar running as root would exempt every root process of the pod).
	ProxyUID int
	// ProxyGID, if > 0, exempts the sidecar's group as well. Default 0 = none.
	ProxyGID int
	// OutboundPort is the transparent listener's port. Default 15001.
	OutboundPort uint16
	// Ports are the destination ports whose outbound connections are
	// redirected: single ports or ranges. Default [80].
	Ports []PortRange
	// IncludeCIDRs, if set, limits redirection to these destinations.
	// Default empty = every destination.
	IncludeCIDRs []netip.Prefix
	// ExcludeCIDRs are destinations never redirected (checked first).
	// Default empty.
	ExcludeCIDRs []netip.Prefix
	// InboundPorts are the app's ports whose inbound connections go to
	// the sidecar's ingress listener at InboundPort. Default empty = no
	// inbound redirection.
	InboundPorts []PortRange
	// InboundPort is the ingress listener's port. Required with
	// InboundPorts.
	InboundPort uint16
}

// PortRange is a port or an inclusive range of ports.
type PortRange struct{ First, Last uint16 }

func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d:%d", r.First, r.Last)
}

// ParsePorts parses a comma-separated list of ports and ranges
// ("80,8080-8090").
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		if !isRange {
			lo, hi, isRange = strings.Cut(f, ":")
		}
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
		}
		if b < a {
			return nil, fmt.Errorf("%w: port range %q ends before it starts", ErrOptions, f)
		}
		out = append(out, PortRange{a, b})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: %q is not a port (1-65535)", ErrOptions, s)
	}
	return uint16(n), nil
}

// ParseCIDRs parses a comma-separated list of CIDR prefixes or addresses.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a CIDR prefix or an address", ErrOptions, f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Check fills defaults and reports what is wrong with o.
func (o *Options) Check() error {
	if o.ProxyUID <= 0 {
		return fmt.Errorf("%w: --proxy-uid must be the sidecar's user id, greater than 0 (a sidecar running as root "+
			"would exempt every root process in the pod from interception)", ErrOptions)
	}
	if o.OutboundPort == 0 {
		o.OutboundPort = 15001
	}
	if len(o.Ports) == 0 {
		o.Ports = []PortRange{{80, 80}}
	}
	for _, r := range o.Ports {
		if r.First <= o.OutboundPort && o.OutboundPort <= r.Last {
			return fmt.Errorf("%w: the redirected ports %s include the transparent listener's own port %d", ErrOptions, r, o.OutboundPort)
		}
	}
	if len(o.InboundPorts) > 0 && o.InboundPort == 0 {
		return fmt.Errorf("%w: --inbound-ports needs --inbound-port, the sidecar's ingress listener", ErrOptions)
	}
	return nil
}

// Rules returns the nat table's rules for one address family, in
// iptables-restore form (without the table and COMMIT lines): chain
// declarations first, then rules.
func (o *Options) Rules(v6 bool) []string {
	fam := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			if p.Addr().Is6() == v6 {
				out = append(out, p)
			}
		}
		return out
	}
	inbound := len(o.InboundPorts) > 0
	lines := []string{":" + ChainOutput + " - [0:0]", ":" + ChainRedirect + " - [0:0]"}
	if inbound {
		lines = append(lines, ":"+ChainInbound+" - [0:0]", ":"+ChainInRedirect+" - [0:0]")
	}
	add := func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }
	add("-A %s -p tcp -j REDIRECT --to-ports %d", ChainRedirect, o.OutboundPort)
	add("-A %s -m owner --uid-owner %d -j RETURN", ChainOutput, o.ProxyUID)
	if o.ProxyGID > 0 {
		add("-A %s -m owner --gid-owner %d -j RETURN", ChainOutput, o.ProxyGID)
	}
	add("-A %s -o lo -j RETURN", ChainOutput)
	for _, p := range fam(o.ExcludeCIDRs) {
		add("-A %s -d %s -j RETURN", ChainOutput, p)
	}
	includes := fam(o.IncludeCIDRs)
	if len(o.IncludeCIDRs) == 0 {
		includes = []netip.Prefix{{}} // every destination
	}
	for _, p := range includes {
		dest := ""
		if p.IsValid() {
			dest = " -d " + p.String()
		}
		for _, ports := range multiport(o.Ports) {
			add("-A %s%s -p tcp -m multiport --dports %s -j %s", ChainOutput, dest, ports, ChainRedirect)
		}
	}
	add("-A OUTPUT -p tcp -j %s", ChainOutput)
	if inbound {
		add("-A %s -p tcp -j REDIRECT --to-ports %d", ChainInRedirect, o.InboundPort)
		for _, ports := range multiport(o.InboundPorts) {
			add("-A %s -p tcp -m multiport --dports %s -j %s", ChainInbound, ports, ChainInRedirect)
		}
		add("-A PREROUTING -p tcp -j %s", ChainInbound)
	}
	return lines
}

// multiport splits ranges into --dports lists of at most 15 ports (a
// range counts two), the multiport match's limit.
func multiport(rs []PortRange) []string {
	var out []string
	var cur []string
	n := 0
	for _, r := range rs {
		w := 1
		if r.First != r.Last {
			w = 2
		}
		if n+w > 15 {
			out = append(out, strings.Join(cur, ","))
			cur, n = nil, 0
		}
		cur = append(cur, r.String())
		n += w
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, ","))
	}
	return out
}

// Jumps are the rules outside this package's chains: the ones Cleanup
// deletes from the built-in chains (in iptables -D form, after -t nat).
var Jumps = [][]string{
	{"OUTPUT", "-p", "tcp", "-j", ChainOutput},
	{"PREROUTING", "-p", "tcp", "-j", ChainInbound},
}

// Chains are this package's chains, in the order Cleanup removes them.
var Chains = []string{ChainOutput, ChainRedirect, ChainInbound, ChainInRedirect}
