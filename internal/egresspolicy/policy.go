// Package egresspolicy decides where a proxy's clients may connect: an
// ordered list of allow and deny rules on the destination's host name,
// address, port, scheme and method, the first match winning, and a
// default action. A Policy is built once per configuration, is immutable
// and safe for concurrent use, and deciding allocates nothing, so the
// forward path, CONNECT and a transparent listener can all call Decide
// per request or connection.
package egresspolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrRule is wrapped by the errors of New and Parse* for a bad rule.
var ErrRule = errors.New("egresspolicy: invalid rule")

// Spec is a rule as configured. Empty lists match everything; a rule
// matches a destination when every list it sets has an entry matching it.
type Spec struct {
	Name    string
	Allow   bool
	Hosts   []string // "api.example.com", "*.example.com" (subdomains only), "*"
	CIDRs   []string // "10.0.0.0/8", "2001:db8::/32", "192.0.2.7"
	Ports   []string // "443", "8000-8999"
	Schemes []string // "http", "https"
	Methods []string // "GET", "CONNECT"
}

// Rule is a compiled rule.
type Rule struct {
	// Name is the rule's name; "default" for the default action.
	Name  string
	Allow bool

	exact    []string            // lower-case host names
	exactSet map[string]struct{} // exact as a set, for long lists
	suffixes []string            // ".example.com" for "*.example.com"
	anyHost  bool                // "*"
	prefixes []netip.Prefix
	ports    [][2]uint16 // inclusive ranges
	schemes  []string
	methods  []string
}

// Dest is what is known of a destination. The zero value of a field
// means unknown, except Port.
type Dest struct {
	// Host is the name the client asked for: lower case, without port,
	// brackets or a trailing dot (NormalizeHost). An address literal is
	// given here and in Addr. "" when there is none (a transparent
	// connection without SNI).
	Host string
	// Addr is the address connected to, once known (after resolution);
	// the zero Addr before.
	Addr   netip.Addr
	Port   uint16
	Scheme string // lower case: "http", "https"
	Method string // "GET", "CONNECT", ...; "" if not an HTTP request
}

// Policy is an ordered rule list and a default action.
type Policy struct {
	rules []Rule
	def   Rule
}

// DefaultRule is the name Decide reports when no rule matched.
const DefaultRule = "default"

// New compiles rules; defaultAllow is the action when none matches.
func New(defaultAllow bool, specs []Spec) (*Policy, error) {
	p := &Policy{def: Rule{Name: DefaultRule, Allow: defaultAllow}}
	for i, s := range specs {
		r, err := compile(s)
		if err != nil {
			return nil, fmt.Errorf("rule %d (%s): %w", i, s.Name, err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func compile(s Spec) (Rule, error) {
	r := Rule{Name: s.Name, Allow: s.Allow}
	for _, h := range s.Hosts {
		exact, suffix, any, err := ParseHost(h)
		if err != nil {
			return r, err
		}
		switch {
		case any:
			r.anyHost = true
		case suffix != "":
			r.suffixes = append(r.suffixes, suffix)
		default:
			r.exact = append(r.exact, exact)
		}
	}
	if len(r.exact) > exactSetMin {
		r.exactSet = make(map[string]struct{}, len(r.exact))
		for _, h := range r.exact {
			r.exactSet[h] = struct{}{}
		}
	}
	for _, c := range s.CIDRs {
		pfx, err := ParseCIDR(c)
		if err != nil {
			return r, err
		}
		r.prefixes = append(r.prefixes, pfx)
	}
	for _, ps := range s.Ports {
		lo, hi, err := ParsePorts(ps)
		if err != nil {
			return r, err
		}
		r.ports = append(r.ports, [2]uint16{lo, hi})
	}
	for _, sc := range s.Schemes {
		r.schemes = append(r.schemes, strings.ToLower(sc))
	}
	r.methods = append(r.methods, s.Methods...)
	return r, nil
}

// ParseHost parses a hosts entry: an exact name (returned lower case,
// without a trailing dot), "*.suffix" (returned as ".suffix"), or "*".
func ParseHost(h string) (exact, suffix string, any bool, err error) {
	if h == "*" {
		return "", "", true, nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	wild := strings.HasPrefix(name, "*.")
	if wild {
		name = name[2:]
	}
	if !validName(name) {
		return "", "", false, fmt.Errorf("%w: host %q: want a name (\"api.example.com\"), a suffix (\"*.example.com\") or \"*\"; addresses go in cidrs", ErrRule, h)
	}
	if wild {
		return "", "." + name, false, nil
	}
	return name, "", false, nil
}

// validName accepts DNS names: labels of letters, digits, '-' and '_'.
// Address literals are refused (a name rule would never see them: they
// belong in cidrs).
func validName(s string) bool {
	if s == "" || len(s) > 253 || strings.ContainsRune(s, ':') {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParseCIDR parses a cidrs entry: a prefix or a single address, either
// family; IPv4-mapped IPv6 is taken as IPv4.
func ParseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: cidr %q: want a prefix (\"10.0.0.0/8\", \"fd00::/8\") or an address", ErrRule, s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w: cidr %q: want a prefix (\"10.0.0.0/8\", \"fd00::/8\") or an address", ErrRule, s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePorts parses a ports entry: "443" or an inclusive range "8000-8999".
func ParsePorts(s string) (lo, hi uint16, err error) {
	bad := fmt.Errorf("%w: port %q: want a port (\"443\") or a range (\"8000-8999\") within 1-65535", ErrRule, s)
	a, b, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, bad
	}
	return uint16(l), uint16(h), nil
}

// NormalizeHost returns host (no port) as Dest.Host wants it: lower
// case, without brackets or a trailing dot. It allocates only when host
// has upper-case letters.
func NormalizeHost(host string) string {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// Decide returns the first rule matching d, or the default rule, and
// whether it allows d.
//
// A rule with cidrs cannot be decided on a destination whose address is
// not known yet (a name before resolution). When such a rule would match
// if its address did, Decide returns a nil rule and true: not refused
// so far, and the caller must decide again with the address before
// connecting (the proxy does, on the address dialled). Anything decided
// by an earlier rule, or by a rule the other fields already rule out, is
// final.
func (p *Policy) Decide(d Dest) (r *Rule, allow bool) {
	for i := range p.rules {
		r := &p.rules[i]
		switch r.match(&d) {
		case matchYes:
			return r, r.Allow
		case matchNeedAddr:
			return nil, true
		}
	}
	return &p.def, p.def.Allow
}

// Default is the default rule.
func (p *Policy) Default() *Rule { return &p.def }

// Len is the number of rules, without the default.
func (p *Policy) Len() int { return len(p.rules) }

// NeedsAddr reports whether any rule looks at addresses: if none does, a
// decision on a name is final.
func (p *Policy) NeedsAddr() bool {
	for i := range p.rules {
		if len(p.rules[i].prefixes) > 0 {
			return true
		}
	}
	return false
}

// exactSetMin is the length of a rule's exact host list above which it is
// looked up in a map rather than compared entry by entry.
const exactSetMin = 8

type match uint8

const (
	matchNo match = iota
	matchYes
	matchNeedAddr
)

func (r *Rule) match(d *Dest) match {
	if len(r.methods) > 0 && !contains(r.methods, d.Method) {
		return matchNo
	}
	if len(r.schemes) > 0 && !contains(r.schemes, d.Scheme) {
		return matchNo
	}
	if len(r.ports) > 0 {
		ok := false
		for _, pr := range r.ports {
			if pr[0] <= d.Port && d.Port <= pr[1] {
				ok = true
				break
			}
		}
		if !ok {
			return matchNo
		}
	}
	if (len(r.exact) > 0 || len(r.suffixes) > 0 || r.anyHost) && !r.matchHost(d.Host) {
		return matchNo
	}
	if len(r.prefixes) > 0 {
		if !d.Addr.IsValid() {
			return matchNeedAddr
		}
		a := d.Addr.Unmap()
		for _, p := range r.prefixes {
			if p.Contains(a) {
				return matchYes
			}
		}
		return matchNo
	}
	return matchYes
}

func (r *Rule) matchHost(h string) bool {
	if h == "" {
		return false
	}
	if r.anyHost {
		return true
	}
	if r.exactSet != nil {
		if _, ok := r.exactSet[h]; ok {
			return true
		}
	} else {
		for _, e := range r.exact {
			if e == h {
				return true
			}
		}
	}
	for _, s := range r.suffixes {
		if len(h) > len(s) && h[len(h)-len(s):] == s {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
