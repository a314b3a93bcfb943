package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/httpcache"
)

// A forward listener fetches whatever its client names, so without a
// check its clients reach what only the pod should: the sidecar's own
// admin endpoint (which purges), other containers' loopback ports, and
// the cloud's metadata service (which hands out credentials). The guard
// refuses those destinations unless the listener's forward section
// allows them (config.Forward). Literal addresses and well-known names
// are refused before anything else happens; every other name is resolved
// by the dialer and the address it is about to connect to is checked
// there (net.Dialer.Control), so the address checked is the address
// dialled and DNS cannot answer its way past the check. Routes'
// clusters, chosen by the operator, are not checked.

// ErrDestinationProhibited is wrapped by the error of a dial the egress
// check refused.
var ErrDestinationProhibited = errors.New("proxy: destination prohibited")

// Refusal reasons, the values of zerohop_egress_refused_total's reason.
const (
	refuseSelf      = "self"       // one of the sidecar's own listeners or admin
	refuseLoopback  = "loopback"   // 127.0.0.0/8, ::1, 0.0.0.0, ::
	refuseLinkLocal = "link_local" // 169.254.0.0/16, fe80::/10
	refuseMetadata  = "metadata"   // cloud metadata services
)

// metadataAddrs are the cloud metadata and credential services: AWS IMDS
// (and GCP's, Azure's, OpenStack's at the same address), ECS task
// credentials, EKS Pod Identity, AWS IMDS over IPv6, Alibaba Cloud.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("169.254.170.23"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("fd00:ec2::23"),
	netip.MustParseAddr("100.100.100.200"),
}

// metadataNames resolve to a metadata service inside their cloud only, so
// they are refused by name as well (and by address where they resolve).
var metadataNames = []string{"metadata.google.internal"}

// refusal is a destination the guard refused.
type refusal struct {
	reason string
	dest   string         // host:port as checked, or as the client named it
	rule   string         // the egress rule that refused (reason policy)
	addr   netip.AddrPort // the address refused at dial time, if any
}

func (r *refusal) Error() string {
	return fmt.Sprintf("proxy: destination %s prohibited (%s)", r.dest, r.ruleName())
}

func (r *refusal) Unwrap() error { return ErrDestinationProhibited }

// explain is the refusal's message to the client.
func (r *refusal) explain() string {
	switch r.reason {
	case refuseSelf:
		return "it is this sidecar's own listener or admin endpoint"
	case refuseLoopback:
		return "loopback destinations are refused (listeners[].forward.allow_loopback allows them)"
	case refuseMetadata:
		return "cloud metadata services are refused (listeners[].forward.allow_destinations can name one)"
	case refusePolicy:
		return "the egress policy does not allow it"
	}
	return "link-local destinations are refused (listeners[].forward.allow_destinations allows them)"
}

// egressGuard is a forward listener's destination check, with the
// connection pool and dialer its requests and tunnels use.
type egressGuard struct {
	p             *Proxy
	cfg           config.Forward
	allowLoopback bool
	allow         []config.Destination
	transport     upstreamClient // requests without a route (h1)
	dialer        net.Dialer     // CONNECT
}

// guardFor returns the guard of listener l, made once per listener name
// and forward configuration, so that a listener's net/http handler and
// its fast path share one pool.
func (p *Proxy) guardFor(l config.Listener) *egressGuard {
	p.guardsMu.Lock()
	defer p.guardsMu.Unlock()
	if g, ok := p.guards[l.Name]; ok && reflect.DeepEqual(g.cfg, l.Forward) {
		return g
	}
	g := &egressGuard{p: p, cfg: l.Forward, allowLoopback: l.Forward.AllowLoopback}
	for _, s := range l.Forward.AllowDestinations {
		if d, err := config.ParseDestination(s); err == nil { // validated
			g.allow = append(g.allow, d)
		}
	}
	g.transport, _ = newTransport(upstreamOptions{ // h1 without TLS: no error
		connect: 5 * time.Second, response: 30 * time.Second, bodyIdle: config.DefaultBodyIdleTimeout,
		client: config.ClientH1, control: g.controlCtx, checkConn: g.checkConn,
	}, newUpstreamEvents(p.m, "egress"))
	g.dialer = net.Dialer{Timeout: 10 * time.Second, ControlContext: g.controlCtx}
	if p.guards == nil {
		p.guards = map[string]*egressGuard{}
	}
	if old, ok := p.guards[l.Name]; ok {
		p.oldGuards = append(p.oldGuards, old)
	}
	p.guards[l.Name] = g
	return g
}

// closeGuards closes the idle connections of every guard's pool.
func (p *Proxy) closeGuards() {
	p.guardsMu.Lock()
	defer p.guardsMu.Unlock()
	for _, g := range p.guards {
		g.transport.CloseIdleConnections()
	}
	for _, g := range p.oldGuards {
		g.transport.CloseIdleConnections()
	}
}

// control is the dialers' net.Dialer.Control: address is the IP and port
// about to be connected to.
func (g *egressGuard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil { // the dialer always passes an IP and port
		return fmt.Errorf("proxy: cannot check dial address %q: %w", address, ErrDestinationProhibited)
	}
	if r := g.check(ap); r != nil {
		return r
	}
	return nil
}

// check decides on the address and port about to be dialled.
func (g *egressGuard) check(ap netip.AddrPort) *refusal {
	a := ap.Addr().Unmap().WithZone("")
	ap = netip.AddrPortFrom(a, ap.Port())
	refuse := func(reason string) *refusal { return &refusal{reason: reason, dest: ap.String()} }
	if g.p.isSelf(ap) {
		// Only an entry naming the address and port opens the sidecar to
		// its own clients.
		for _, d := range g.allow {
			if d.Port == ap.Port() && d.Prefix.IsSingleIP() && d.Prefix.Addr() == a {
				return nil
			}
		}
		return refuse(refuseSelf)
	}
	for _, d := range metadataAddrs {
		if d == a {
			// Only an entry naming the address opens a metadata service,
			// not a prefix that happens to cover it.
			for _, d := range g.allow {
				if d.Contains(ap) && d.Prefix.IsSingleIP() {
					return nil
				}
			}
			return refuse(refuseMetadata)
		}
	}
	for _, d := range g.allow {
		if d.Contains(ap) {
			return nil
		}
	}
	switch {
	case a.IsLoopback() || a.IsUnspecified():
		if !g.allowLoopback {
			return refuse(refuseLoopback)
		}
	case a.IsLinkLocalUnicast():
		return refuse(refuseLinkLocal)
	}
	return nil
}

// checkHost is the check made before anything else: hostport is the
// client's host[:port] (port defaults to defPort). A literal address is
// decided here; so are localhost names (RFC 6761 reserves them for
// loopback) and metadata service names. Other names pass, to be checked
// by address when dialled.
func (g *egressGuard) checkHost(hostport string, defPort uint16) *refusal {
	host, port := hostport, defPort
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[i:], ']') < 0 {
		n, err := strconv.ParseUint(hostport[i+1:], 10, 16)
		if err != nil {
			return nil // not a port: the dial fails on its own
		}
		host, port = hostport[:i], uint16(n)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return nil
	}
	if c := host[0]; '0' <= c && c <= '9' || strings.IndexByte(host, ':') >= 0 {
		if a, err := netip.ParseAddr(host); err == nil {
			return g.check(netip.AddrPortFrom(a, port))
		}
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if r := g.check(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)); r != nil {
			r.dest = hostport
			return r
		}
		return nil
	}
	for _, m := range metadataNames {
		if name == m {
			if r := g.check(netip.AddrPortFrom(metadataAddrs[0], port)); r != nil {
				r.dest = hostport
				return r
			}
		}
	}
	return nil
}

// refuse answers a request whose destination the guard or the egress
// policy refused: 403, with the reason and rule in the body, in a
// Proxy-Status field (RFC 9209) and in X-Zerohop-Egress-Rule.
func (p *Proxy) refuse(w http.ResponseWriter, x *exchange, r *refusal) {
	p.egressRefused(x, r)
	x.status.Fwd, x.status.Detail = httpcache.FwdBypass, "destination-prohibited"
	for _, kv := range r.fields() {
		w.Header().Set(kv[0], kv[1])
	}
	p.fail(w, x, http.StatusForbidden, r.message())
}

// sfString keeps what an RFC 8941 string may hold, minus quote and
// backslash.
func sfString(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return '?'
		}
		return c
	}, s)
}

// self is the set of the sidecar's own listening addresses.
type self struct {
	mu    sync.RWMutex
	addrs []netip.AddrPort // as bound; unspecified addresses stand for every local one
	local []netip.Addr     // the host's interface addresses, if an unspecified address is bound
}

// AddLocalAddr tells the proxy an address the sidecar listens on (a
// listener or the admin endpoint): forward-mode clients are refused it.
func (p *Proxy) AddLocalAddr(a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	s := &p.self
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = append(s.addrs, ap)
	if ap.Addr().IsUnspecified() && s.local == nil {
		ifs, _ := net.InterfaceAddrs()
		for _, ia := range ifs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				s.local = append(s.local, pfx.Addr().Unmap())
			}
		}
	}
}

// isSelf reports whether dialling ap would reach one of the sidecar's own
// listening sockets.
func (p *Proxy) isSelf(ap netip.AddrPort) bool {
	s := &p.self
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := ap.Addr()
	for _, own := range s.addrs {
		if own.Port() != ap.Port() {
			continue
		}
		switch o := own.Addr(); {
		case o == a:
			return true
		case a.IsUnspecified() && (o.IsLoopback() || o.IsUnspecified()):
			return true // connecting to 0.0.0.0 reaches the local host
		case o.IsUnspecified() && (a.IsLoopback() || isLocal(s.local, a)):
			return true
		}
	}
	return false
}

func isLocal(local []netip.Addr, a netip.Addr) bool {
	for _, l := range local {
		if l == a {
			return true
		}
	}
	return false
}
