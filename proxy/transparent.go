package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/egresspolicy"
	"github.com/zerohop/zerohop/proxy/internal/origdst"
	"github.com/zerohop/zerohop/proxy/internal/sniff"
)

// Transparent interception (docs/transparent.md). iptables rules
// (zerohop iptables) redirect the app's outbound TCP to a listener with
// mode transparent. For each connection the listener recovers the
// destination the app dialled (SO_ORIGINAL_DST) and looks at its first
// bytes without consuming them (MSG_PEEK):
//   - an HTTP/1.x request: the connection goes to the listener's HTTP
//     server, whose requests are forward requests to that destination
//     with their Host field kept: the whole pipeline (routes matching the
//     host, filters, the cache, the destination checks) applies;
//   - a TLS ClientHello, whose server name is logged, or any other bytes
//     (or none within sniff_timeout: a protocol whose server speaks
//     first): passed through to the destination as TCP, after the same
//     destination checks.
// A connection that was not redirected (no original destination), or
// that the sidecar's own passthrough dial made (a redirect loop: the
// rules failed to exclude the sidecar's traffic), is closed, logged and
// counted; an HTTP request that already went through a zerohop (its Via
// names one) is answered 508.

// Reasons an intercepted connection is closed unserved, the values of
// zerohop_intercept_refused_total's reason.
const (
	interceptNoDst       = "no_original_dst" // not redirected, or the kernel kept no destination
	interceptLoop        = "loop"            // the sidecar's own traffic came back
	interceptDestination = "destination"     // the destination checks refused it
	interceptNoPass      = "passthrough_off" // not HTTP, and transparent.passthrough is false
	interceptDial        = "dial"            // the destination did not answer
	interceptSniff       = "sniff"           // reading the first bytes failed
)

// interceptMetrics count what transparent listeners do.
type interceptMetrics struct {
	conns   *prometheus.CounterVec // listener, protocol
	refused *prometheus.CounterVec // listener, reason
}

func newInterceptMetrics() *interceptMetrics {
	return &interceptMetrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_intercepted_connections_total",
			Help: "Connections a transparent listener accepted, by protocol its first bytes showed (http, tls, other).",
		}, []string{"listener", "protocol"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_intercept_refused_total",
			Help: "Intercepted connections closed unserved, by reason (no_original_dst, loop, destination, passthrough_off, dial, sniff).",
		}, []string{"listener", "reason"}),
	}
}

func (m *interceptMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.conns, m.refused}
}

// TransparentListener wraps ln, the socket of a listener with mode
// transparent: its Accept returns the connections that carry HTTP/1.x,
// for the listener's HTTP server (and its fast path); the others are
// passed through or closed here. Serve its HTTP server with
// ConnContext set to TransparentConnContext.
func (p *Proxy) TransparentListener(ln net.Listener, l config.Listener) net.Listener {
	t := &transparentListener{Listener: ln, p: p, l: l, g: p.guardFor(l),
		http: make(chan net.Conn), done: make(chan struct{})}
	go t.acceptLoop()
	return t
}

type transparentListener struct {
	net.Listener
	p    *Proxy
	l    config.Listener
	g    *egressGuard
	http chan net.Conn
	err  error // the accept error that ended acceptLoop, set before done closes
	done chan struct{}
}

func (t *transparentListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.http:
		return c, nil
	case <-t.done:
		return nil, t.err
	}
}

func (t *transparentListener) Close() error {
	err := t.Listener.Close()
	<-t.done
	return err
}

func (t *transparentListener) acceptLoop() {
	var tempDelay time.Duration
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // as net/http's Serve backs off
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			t.err = err
			close(t.done)
			return
		}
		tempDelay = 0
		go t.classify(c)
	}
}

// classify decides what to do with an accepted connection.
func (t *transparentListener) classify(c net.Conn) {
	p, name := t.p, t.l.Name
	refuse := func(reason string, args ...any) {
		p.im.refused.WithLabelValues(name, reason).Inc()
		p.log.Info("intercepted connection refused", append([]any{"listener", name, "remote", c.RemoteAddr().String(), "reason", reason}, args...)...)
		c.Close()
	}
	dst, err := origdst.Of(c)
	if err != nil {
		refuse(interceptNoDst, "err", err)
		return
	}
	var buf [5 + 16<<10]byte // a TLS record
	n, kind, err := peekKind(c, buf[:], t.l.Transparent.SniffTimeout)
	if err != nil {
		refuse(interceptSniff, "destination", dst.String(), "err", err)
		return
	}
	if p.ownDial(c.RemoteAddr()) {
		refuse(interceptLoop, "destination", dst.String())
		return
	}
	if kind == sniff.HTTP {
		p.im.conns.WithLabelValues(name, "http").Inc()
		select {
		case t.http <- c:
		case <-t.done:
			c.Close()
		}
		return
	}
	proto, sni := "other", ""
	if kind == sniff.TLS {
		proto = "tls"
		sni, _ = sniff.ServerName(buf[:n]) // a name split over records is logged as none
	}
	p.im.conns.WithLabelValues(name, proto).Inc()
	if !t.l.Transparent.Passthrough {
		refuse(interceptNoPass, "destination", dst.String(), "protocol", proto)
		return
	}
	scheme := "" // other TCP: only rules without schemes apply
	if kind == sniff.TLS {
		scheme = "https"
	}
	if r := p.passCheck(name, t.g, sni, dst, scheme); r != nil {
		p.m.egressRefused.WithLabelValues(name, r.reason).Inc()
		refuse(interceptDestination, "destination", dst.String(), "protocol", proto, "server_name", sni, "rule", r.ruleName())
		return
	}
	p.passThrough(c, dst, t.l, proto, sni)
}

// passCheck decides on a connection passed through to dst: the built-in
// refusals on dst, then the egress policy with the TLS server name (if
// any) as the host, dst's address and port, and scheme ("https" for TLS,
// "" for other TCP; no method). With a policy the decision is counted
// and audited (kind passthrough).
func (p *Proxy) passCheck(listener string, g *egressGuard, sni string, dst netip.AddrPort, scheme string) *refusal {
	ep := p.st.Load().egress
	ref := g.check(dst)
	rule, allow := "", ref == nil
	if ref != nil {
		rule = ref.ruleName()
	} else if ep != nil {
		d, _ := parseDest(sni, dst.Port())
		d.Addr, d.Port = dst.Addr().Unmap().WithZone(""), dst.Port()
		d.Scheme = scheme
		var r *egresspolicy.Rule
		r, allow = ep.pol.Decide(d)
		rule = r.Name
		if !allow {
			dest := sni
			if dest == "" {
				dest = dst.String()
			}
			ref = &refusal{reason: refusePolicy, rule: rule, dest: dest, addr: dst}
		}
	}
	if ep == nil {
		return ref
	}
	p.eg.count(listener, rule, allow)
	if ep.audit != nil {
		decision := "deny"
		if allow {
			decision = "allow"
		}
		ep.audit.LogAttrs(context.Background(), slog.LevelInfo, "egress",
			slog.String("listener", listener),
			slog.String("kind", "passthrough"),
			slog.String("scheme", scheme),
			slog.String("destination", sni),
			slog.String("address", dst.String()),
			slog.String("rule", rule),
			slog.String("decision", decision))
	}
	return ref
}

// peekKind waits up to d for enough of c's first bytes to classify them,
// leaving them unread. No bytes by then (a server-first protocol) is
// sniff.Other. A ClientHello is peeked whole when its record fits buf,
// for its server name.
func peekKind(c net.Conn, buf []byte, d time.Duration) (int, sniff.Kind, error) {
	rc, err := rawConnOf(c)
	if err != nil {
		return 0, sniff.Other, err
	}
	deadline := time.Now().Add(d)
	c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	var (
		n, last int
		kind    sniff.Kind
	)
	for {
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			m, _, e := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if e == syscall.EAGAIN || (e == nil && m == last && m < len(buf)) {
				return false // nothing new yet: wait for the poller
			}
			n, perr = m, e
			return true
		})
		if err != nil {
			if !isTimeout(err) {
				return n, sniff.Other, err
			}
			if n == 0 {
				return 0, sniff.Other, nil // a quiet client (the server speaks first): pass it through
			}
			// A request line or a ClientHello begun and not finished in
			// time: no client does that; do not hold or forward it.
			return n, sniff.Other, errIncomplete
		}
		if perr != nil {
			return n, sniff.Other, perr
		}
		if n == 0 {
			return 0, sniff.Other, errors.New("closed before sending anything")
		}
		last = n
		kind = sniff.Classify(buf[:n])
		switch kind {
		case sniff.NeedMore:
			continue
		case sniff.TLS:
			if l := sniff.RecordLen(buf[:n]); l > 0 && l <= len(buf) && n < l {
				continue // the rest of the ClientHello record
			}
		}
		return n, kind, nil
	}
}

var errIncomplete = errors.New("first bytes incomplete when the sniff timeout ended (a stalled request line or ClientHello)")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rawConnOf finds the socket under c's wrappers.
func rawConnOf(c net.Conn) (syscall.RawConn, error) {
	for range 8 {
		if sc, ok := c.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return nil, errors.New("proxy: intercepted connection is not a socket")
}

// passThrough connects c to dst and copies both ways, as a CONNECT tunnel
// does, until both sides close or no byte moves for the listener's
// forward.tunnel_idle_timeout.
func (p *Proxy) passThrough(c net.Conn, dst netip.AddrPort, l config.Listener, proto, sni string) {
	g := p.guardFor(l)
	up, err := g.dialer.Dial("tcp", dst.String())
	if err != nil {
		p.im.refused.WithLabelValues(l.Name, interceptDial).Inc()
		p.log.Info("intercepted connection: destination unreachable", "listener", l.Name, "destination", dst.String(), "err", err)
		c.Close()
		return
	}
	// The dial's own address, so that this connection coming back to a
	// transparent listener (rules that do not exclude the sidecar) is
	// recognised as a loop rather than dialled again.
	local := up.LocalAddr()
	p.own.Store(addrKey(local), struct{}{})
	defer p.own.Delete(addrKey(local))
	p.log.Debug("intercepted connection passed through", "listener", l.Name, "destination", dst.String(),
		"protocol", proto, "server_name", sni)
	var iw *idleWatch
	if d := l.Forward.TunnelIdleTimeout; d > 0 {
		iw = newIdleWatch(d, p.m.tunnelIdle.Inc)
		iw.closeOnIdle(c)
		iw.closeOnIdle(up)
		defer iw.stop()
	}
	if a, ok := tcpOf(c); ok {
		if b, ok := up.(*net.TCPConn); ok {
			spliceTCP(a, b, iw)
			c.Close() // through its wrappers: a listener's connection slot
			up.Close()
			return
		}
	}
	splice(c, up, iw)
	c.Close()
	up.Close()
}

// spliceTCP copies both ways between two sockets with splice(2) (what
// TCPConn.ReadFrom does for a TCPConn source, also under an
// io.LimitedReader), so the bytes never enter user space; copying in
// steps of 1 MiB tells iw of activity.
func spliceTCP(a, b *net.TCPConn, iw *idleWatch) {
	var wg sync.WaitGroup
	cp := func(dst, src *net.TCPConn) {
		defer wg.Done()
		for {
			n, err := io.CopyN(dst, src, 1<<20)
			if n > 0 && iw != nil {
				iw.touch()
			}
			if err != nil {
				break
			}
		}
		dst.CloseWrite()
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// tcpOf finds the TCP socket under c's wrappers.
func tcpOf(c net.Conn) (*net.TCPConn, bool) {
	for range 8 {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc, true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return nil, false
}

// ownDial reports whether remote, the peer of an accepted connection, is
// the local end of a connection this sidecar dialled for a passthrough.
func (p *Proxy) ownDial(remote net.Addr) bool {
	_, ok := p.own.Load(addrKey(remote))
	return ok
}

func addrKey(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// dstKey is the context key of an intercepted connection's destination.
type dstKey struct{}

// TransparentConnContext is the http.Server ConnContext of a transparent
// listener: it records the connection's original destination for its
// requests.
func TransparentConnContext(ctx context.Context, c net.Conn) context.Context {
	if ap, err := origdst.Of(c); err == nil {
		return context.WithValue(ctx, dstKey{}, ap)
	}
	return ctx
}

// interceptedDst returns the original destination recorded for r's
// connection.
func interceptedDst(r *http.Request) netip.AddrPort {
	ap, _ := r.Context().Value(dstKey{}).(netip.AddrPort)
	return ap
}

// resolveIntercepted completes the URL parts of a request on a
// transparent listener: its destination is where the app's connection
// was going, its host the Host field (or that address). It answers a
// request that cannot be forwarded: no destination (the connection was
// not redirected) or a loop (a zerohop already forwarded it).
func (p *Proxy) resolveIntercepted(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	if !x.dst.IsValid() {
		x.dst = interceptedDst(r)
	}
	if !x.dst.IsValid() {
		p.im.refused.WithLabelValues(x.lis.Name, interceptNoDst).Inc()
		p.fail(w, x, http.StatusMisdirectedRequest, "this listener serves connections redirected to it (mode transparent); this one was not")
		return false
	}
	if x.host == "" {
		x.host = x.dst.String()
	}
	for _, v := range r.Header["Via"] {
		if viaNamesZerohop(v) {
			p.im.refused.WithLabelValues(x.lis.Name, interceptLoop).Inc()
			p.fail(w, x, http.StatusLoopDetected, "redirect loop: this request already went through zerohop (Via: "+v+"); "+
				"the interception rules must exclude the sidecar's own traffic (zerohop iptables --proxy-uid)")
			return false
		}
	}
	return true
}

// viaNamesZerohop reports whether a Via field value lists a zerohop hop
// ("1.1 zerohop", viaValue).
func viaNamesZerohop(v string) bool {
	for len(v) > 0 {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		elem = strings.TrimSpace(elem)
		if _, by, ok := strings.Cut(elem, " "); ok {
			by, _, _ = strings.Cut(strings.TrimSpace(by), " ")
			if by == "zerohop" {
				return true
			}
		}
	}
	return false
}
