// Package connlimit caps the connections a listener holds open: in all,
// and from any one client address, as nginx's limit_conn and Envoy's
// listener connection limits do. A connection over a cap is closed as soon
// as it is accepted, without a response, and counted; its slot was never
// taken, and a slot frees when a connection closes.
//
// Refusing at accept, before a byte is read, is what keeps the cap cheap
// under a flood and makes it hold for every protocol the listener serves
// (HTTP/1.1 on the fast path or net/http, h2c, hijacked CONNECT tunnels,
// which stay counted until closed). A 503 would need the request read
// first, which is what a flood of idle connections never sends.
package connlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Reasons a connection is refused, the label of the refusal counter.
const (
	ReasonListener = "listener_limit" // the listener holds Options.Max connections
	ReasonClient   = "client_limit"   // the client's address holds Options.PerClient
)

// Options are a Listener's caps.
type Options struct {
	// Max is the most connections the listener holds open at once.
	// 0: no cap.
	Max int
	// PerClient is the most connections open at once from one client IP
	// address (the port aside; IPv4-mapped IPv6 counts as IPv4). 0: no cap.
	PerClient int
	// Refused, if set, is called on the accepting goroutine for every
	// connection refused, with its reason (ReasonListener, ReasonClient).
	Refused func(reason string)
}

// Listener wraps a net.Listener with Options' caps. Its connections are
// *Conn, which free their slot when closed.
type Listener struct {
	net.Listener
	o    Options
	open atomic.Int64

	mu      sync.Mutex
	clients map[netip.Addr]int // open connections per client, when PerClient > 0
}

// NewListener returns ln with o's caps applied at Accept.
func NewListener(ln net.Listener, o Options) *Listener {
	l := &Listener{Listener: ln, o: o}
	if o.PerClient > 0 {
		l.clients = map[netip.Addr]int{}
	}
	return l
}

// Open reports how many of the listener's connections are open.
func (l *Listener) Open() int64 { return l.open.Load() }

// Accept returns the next connection within the caps, closing and
// counting those over them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &Conn{Conn: c, l: l}
		reason := l.acquire(lc)
		if reason == "" {
			return lc, nil
		}
		c.Close()
		if l.o.Refused != nil {
			l.o.Refused(reason)
		}
	}
}

// acquire takes a slot for c, or reports why there is none.
func (l *Listener) acquire(c *Conn) (refused string) {
	if n := l.open.Add(1); l.o.Max > 0 && n > int64(l.o.Max) {
		l.open.Add(-1)
		return ReasonListener
	}
	if l.clients == nil {
		return ""
	}
	ip, ok := clientAddr(c.RemoteAddr())
	if !ok {
		return "" // not an IP connection: only the listener's cap applies
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients[ip] >= l.o.PerClient {
		l.open.Add(-1)
		return ReasonClient
	}
	l.clients[ip]++
	c.ip, c.perClient = ip, true
	return ""
}

func (l *Listener) release(c *Conn) {
	if c.perClient {
		l.mu.Lock()
		if n := l.clients[c.ip] - 1; n > 0 {
			l.clients[c.ip] = n
		} else {
			delete(l.clients, c.ip)
		}
		l.mu.Unlock()
	}
	l.open.Add(-1)
}

func clientAddr(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.AddrPort().Addr().Unmap()
		return ip, ip.IsValid()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Conn is a connection holding a slot of its Listener until closed.
type Conn struct {
	net.Conn
	l         *Listener
	ip        netip.Addr
	perClient bool // counted in l.clients under ip
	closed    atomic.Bool
}

// Close closes the connection and frees its slot (once).
func (c *Conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return err
}

// CloseWrite half-closes the connection when it can (a CONNECT tunnel whose
// upstream finished sending), and else closes it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// ReadFrom keeps the connection's own ReadFrom (splice, sendfile) for
// io.Copy into it.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn is the connection under the slot.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Rewrap replaces the connection under the slot by wrap's result, so that
// a listener above this one can wrap the accepted connection itself (the
// fast path's raw-syscall reads, internal/nbconn) without losing the slot.
// It must be called before the connection is used.
func (c *Conn) Rewrap(wrap func(net.Conn) net.Conn) { c.Conn = wrap(c.Conn) }
