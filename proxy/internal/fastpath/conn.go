// Package fastpath is the sidecar's HTTP/1.1 connection adapter: it sits
// under net/http, parses request heads itself without allocating, frames
// requests, hands connections (or single requests) to net/http, and
// writes responses as net/http's server would. It knows nothing of
// routes or caching: for each request it calls the pipeline through
// Handler (docs/fast-path.md, docs/architecture.md).
package fastpath

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/internal/nbconn"
)

// The fast path sits under net/http rather than beside it. Each accepted
// connection is wrapped in a fastConn and served by an ordinary
// http.Server. While that server waits for the next request on the
// connection (ConnState New or Idle), the fastConn reads the request
// itself: a bodiless HTTP/1.1 GET or HEAD is served right there, on the
// connection's goroutine, without net/http's per-request machinery (its
// background read, the response buffering, the header clone) that made a
// hit cost three times what nginx spends. Any other request is handed to
// net/http byte for byte, and net/http serves it exactly as before:
// bodies, CONNECT, Upgrade, h2c, malformed input and its 4xx answers.
//
// The fastConn keeps one invariant: net/http only ever receives whole
// requests that the fastConn has framed (head plus Content-Length body),
// so the two never disagree about where a request starts. Between such a
// request and the next, the fastConn holds back what the client sends;
// net/http's background read blocks until net/http aborts it. A request it
// cannot frame (Transfer-Encoding, HTTP/2, a tunnel) turns the connection
// over to net/http for good.

// fastMaxHead bounds a request head the fast path buffers; larger heads
// go to net/http, which enforces MaxHeaderBytes.
const fastMaxHead = 16 << 10

// Pipeline is what the adapter serves requests with.
type Pipeline interface {
	// Open is called once per accepted connection; the Handler it returns
	// serves that connection's requests, one at a time.
	Open(c *Conn) Handler
}

// Handler serves the requests of one connection.
type Handler interface {
	// ServeFast answers the request in c.Head() itself if it can (a fresh
	// hit): it writes the whole response to c.Writer() and reports
	// served, and whether the connection stays open. Otherwise the
	// request goes to Begin and ServeHTTP.
	ServeFast() (served, keep bool)
	// Begin returns the memory of a request the adapter is about to pass
	// to ServeHTTP, in the pipeline's own per-request allocation, and the
	// context the request carries, which must be, or wrap, &slot.Ctx.
	Begin() (slot *Slot, ctx context.Context)
	http.Handler
}

// Slot is the memory the adapter uses for one request it serves through
// ServeHTTP. The pipeline allocates it with its own per-request state, so
// that a request costs one allocation.
type Slot struct {
	Ctx RequestCtx // the request's context (set up by the adapter)
	W   Writer     // the request's ResponseWriter
	URL url.URL    // the request's URL, when plain
	// UpstreamHeader is an empty map the connection reuses, for the
	// pipeline's upstream request's header; nil if none.
	UpstreamHeader http.Header
}

// Options configure a Listener.
type Options struct {
	// Pipeline serves the requests. Required.
	Pipeline Pipeline
	// ReadHeaderTimeout bounds how long a request head may take to
	// arrive, from its first byte (or the connection's start). Default 0:
	// no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Default 0: no bound.
	IdleTimeout time.Duration
	// MaxHeaderBytes: a longer head goes to net/http, which answers 431.
	// Default 0: fastMaxHead.
	MaxHeaderBytes int
	// PolicyFields are request fields, besides HTTP's conditionals, Range,
	// Cache-Control, Pragma and credentials, that mark a request
	// Head.NeedsPolicy. Default none.
	PolicyFields []string
	// Inflight, if set, counts the requests being served by the fast path
	// (of every Listener sharing it). Default: a counter of its own.
	Inflight *atomic.Int64
	// Logger receives panics of requests served through ServeHTTP.
	// Default slog.Default().
	Logger *slog.Logger
}

// NewListener wraps ln so that srv gets the fast path for HTTP/1.1 (see
// the package comment). It installs srv.ConnState, keeping any hook
// already set. Call Wait after srv.Shutdown to let requests being served
// by the fast path finish.
func NewListener(ln net.Listener, srv *http.Server, o Options) net.Listener {
	if o.Inflight == nil {
		o.Inflight = new(atomic.Int64)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	fl := &fastListener{Listener: ln, o: o, srv: srv, conns: map[*fastConn]struct{}{}}
	srv.RegisterOnShutdown(fl.shutdown)
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if fc, ok := c.(*fastConn); ok {
			fc.setState(st)
		}
		if prev != nil {
			prev(c, st)
		}
	}
	return fl
}

// Wait waits until inflight (Options.Inflight) is zero, or ctx ends. The
// listeners' servers must have been shut down first.
func Wait(ctx context.Context, inflight *atomic.Int64) error {
	for inflight.Load() > 0 {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

type fastListener struct {
	net.Listener
	o   Options
	srv *http.Server

	// Connections, for shutdown: net/http closes the connections it sees
	// idle, but one that only ever had requests served by the fast path is
	// still "new" to it, which Shutdown waits five seconds to call idle.
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	closing atomic.Bool
}

// shutdown closes the connections waiting for a request in the fast path
// (after the response being written, if any). It runs when srv.Shutdown
// has closed the listener.
func (fl *fastListener) shutdown() {
	fl.closing.Store(true)
	fl.mu.Lock()
	var idle []*fastConn
	for c := range fl.conns {
		if c.mode.Load() == modeIntercept {
			idle = append(idle, c)
		}
	}
	fl.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func (fl *fastListener) forget(c *fastConn) {
	fl.mu.Lock()
	delete(fl.conns, c)
	fl.mu.Unlock()
}

func (fl *fastListener) Accept() (net.Conn, error) {
	c, err := fl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// Raw reads and writes: no sysmon wakeup per request (internal/nbconn);
	// under a connection-capping listener's wrapper (internal/connlimit),
	// which must see the close.
	if rw, ok := c.(interface{ Rewrap(func(net.Conn) net.Conn) }); ok {
		rw.Rewrap(nbconn.Wrap)
	} else {
		c = nbconn.Wrap(c)
	}
	fc := &fastConn{Conn: c, fl: fl, abort: make(chan struct{}, 1)}
	fc.head.policyFields = fl.o.PolicyFields
	fc.pub.c = fc
	fc.h = fl.o.Pipeline.Open(&fc.pub)
	// The first request's head is due ReadHeaderTimeout after the
	// connection is made, as net/http times it: a client that connects and
	// sends nothing is not held for the idle timeout.
	fc.startHead()
	fl.mu.Lock()
	fl.conns[fc] = struct{}{}
	fl.mu.Unlock()
	// The context net/http gives its requests: httputil.ReverseProxy, for
	// one, aborts a response whose upstream body fails only when it sees
	// it runs under a server.
	ctx := context.WithValue(context.Background(), http.ServerContextKey, fl.srv)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
	fc.ctx = ctx
	return fc, nil
}

// fastConn modes.
const (
	modeIntercept = iota // net/http waits for a request: the fastConn reads it
	modeGive             // net/http is reading a request handed to it: give it at most `give` bytes
	modeHold             // net/http is serving a request: hold back what the client sends
	modeOpaque           // net/http owns the connection
)

type fastConn struct {
	net.Conn
	fl     *fastListener
	h      Handler         // the pipeline's side of the connection
	pub    Conn            // what the pipeline sees of it
	ctx    context.Context // the values of fast requests' contexts (requestCtx)
	remote string          // RemoteAddr().String(), once made
	hdrs   [numHdrs]http.Header

	// Read side, used by one goroutine at a time (net/http's).
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	scan int // bytes of buf[r:w] already searched for the end of a head
	give int64
	eof  error // a read error held back until net/http asks for more
	head Head
	bw   *bufio.Writer

	mode  atomic.Int32
	hdl   int64         // when the head being read is due, unix ns; 0: none (between requests)
	rdl   atomic.Int64  // the read deadline net/http set, unix ns; 0: none
	abort chan struct{} // wakes a held-back read: the deadline changed, or Close

	// mu orders Close against a request being served by the fast path.
	mu        sync.Mutex
	serving   bool
	closeWait bool
	closed    bool
}

func (c *fastConn) setState(st http.ConnState) {
	switch st {
	case http.StateNew, http.StateIdle:
		switch c.mode.Load() {
		case modeOpaque:
		case modeGive:
			if c.give > 0 {
				// net/http finished a request it had not read to the end
				// of its framing: the two no longer agree where requests
				// start, so net/http keeps the connection.
				c.mode.Store(modeOpaque)
				return
			}
			c.mode.Store(modeIntercept)
		default:
			c.mode.Store(modeIntercept)
		}
	case http.StateHijacked, http.StateClosed:
		c.mode.Store(modeOpaque)
	}
}

// SetReadDeadline passes the deadline on, and records it for a held-back
// read, which ends when it passes (net/http aborts its background read
// with a deadline in the past).
func (c *fastConn) SetReadDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *fastConn) SetDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *fastConn) noteDeadline(t time.Time) {
	if t.IsZero() {
		c.rdl.Store(0)
	} else {
		c.rdl.Store(t.UnixNano())
	}
	c.wake()
}

func (c *fastConn) wake() {
	select {
	case c.abort <- struct{}{}:
	default:
	}
}

// Close closes the connection, after the response being written by the
// fast path, if any (net/http's Shutdown closes connections it thinks
// idle).
func (c *fastConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	if c.serving {
		c.closeWait = true
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.fl.forget(c)
	c.wake()
	return c.Conn.Close()
}

// CloseWrite half-closes the connection (a CONNECT tunnel whose upstream
// finished sending), or closes it when the connection cannot.
func (c *fastConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *fastConn) buffered() int { return c.w - c.r }

// startHead starts the clock of a request head: it must be whole within
// the listener's ReadHeaderTimeout, however it trickles in.
func (c *fastConn) startHead() {
	if d := c.fl.o.ReadHeaderTimeout; d > 0 {
		c.hdl = time.Now().Add(d).UnixNano()
	}
}

// handOver gives the connection to net/http for good, with the rest of the
// head being read due when the fast path's head was.
func (c *fastConn) handOver() {
	if c.buffered() > 0 {
		if c.hdl == 0 {
			c.startHead()
		}
		if c.hdl != 0 {
			c.Conn.SetReadDeadline(time.Unix(0, c.hdl))
		}
	}
	c.mode.Store(modeOpaque)
}

// Read is net/http's view of the connection.
func (c *fastConn) Read(p []byte) (int, error) {
	for {
		switch c.mode.Load() {
		case modeOpaque:
			if c.buffered() > 0 {
				n := copy(p, c.buf[c.r:c.w])
				c.r += n
				return n, nil
			}
			if c.eof != nil {
				return 0, c.eof
			}
			return c.Conn.Read(p)
		case modeGive:
			if c.give == 0 {
				c.mode.Store(modeHold)
				continue
			}
			if int64(len(p)) > c.give {
				p = p[:c.give]
			}
			var n int
			var err error
			if c.buffered() > 0 {
				n = copy(p, c.buf[c.r:c.w])
				c.r += n
			} else if c.eof != nil {
				return 0, c.eof
			} else {
				n, err = c.Conn.Read(p)
			}
			c.give -= int64(n)
			if c.give == 0 {
				c.mode.Store(modeHold)
			}
			return n, err
		case modeHold:
			return c.hold()
		default:
			n, err, again := c.intercept(p)
			if again {
				continue
			}
			return n, err
		}
	}
}

// hold blocks net/http's background read while it serves a request: bytes
// the client sends meanwhile belong to the next request, which the fastConn
// frames. The read ends when net/http aborts it (a past deadline), or with
// the client's EOF or error when nothing is held (net/http then cancels the
// request, as it would have).
func (c *fastConn) hold() (int, error) {
	if c.buffered() == 0 {
		if c.eof != nil {
			return 0, c.eof
		}
		c.compact()
		n, err := c.Conn.Read(c.buf[c.w:])
		c.w += n
		if err != nil {
			if n == 0 {
				return 0, err // EOF, reset, or net/http's own abort
			}
			c.eof = err
		}
	}
	// Something is held: wait for the read deadline (net/http's abort sets
	// one in the past), or the connection's end. The deadline is what
	// decides, not the wake-up, which may be left over from a change that
	// came before this read began, or after it ended.
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		if d := c.rdl.Load(); d != 0 {
			wait := time.Until(time.Unix(0, d))
			if wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-c.abort:
			case <-t.C:
			}
			continue
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		<-c.abort
	}
}

// compact makes room at the end of the buffer.
func (c *fastConn) compact() {
	if c.buf == nil {
		c.buf = make([]byte, 4096)
	}
	if c.r > 0 {
		n := copy(c.buf, c.buf[c.r:c.w])
		c.r, c.w = 0, n
	}
	if c.w == len(c.buf) && len(c.buf) < fastMaxHead {
		nb := make([]byte, min(2*len(c.buf), fastMaxHead))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
}

// intercept reads and serves requests until one must go to net/http, and
// then returns that request's first bytes. again reports a mode change.
func (c *fastConn) intercept(p []byte) (n int, err error, again bool) {
	maxHead := c.fl.o.MaxHeaderBytes
	for {
		if c.buffered() > 0 {
			v, scan := parseHead(c.buf[c.r:c.w], c.scan, &c.head)
			if v != headIncomplete && v != headOpaque && maxHead > 0 && c.head.n > maxHead {
				v = headOpaque // net/http answers 431
			}
			switch v {
			case headFast:
				c.scan, c.hdl = 0, 0
				if !c.serve() {
					c.mode.Store(modeOpaque)
					c.r, c.w = 0, 0
					return 0, net.ErrClosed, false
				}
				continue
			case headHandoff:
				c.scan, c.hdl = 0, 0
				c.give = int64(c.head.n) + c.head.bodyLen
				c.mode.Store(modeGive)
				return 0, nil, true
			case headOpaque:
				c.scan = 0
				c.handOver()
				return 0, nil, true
			}
			c.scan = scan
			if c.buffered() >= fastMaxHead {
				c.handOver() // net/http answers 431
				return 0, nil, true
			}
		}
		if c.eof != nil {
			if c.buffered() > 0 {
				c.mode.Store(modeOpaque) // a truncated head: net/http answers it
				return 0, nil, true
			}
			return 0, c.eof, false
		}
		if c.fl.closing.Load() {
			c.closeNow() // shutting down, and no request under way
			return 0, net.ErrClosed, false
		}
		// Wait for (more of) a request. A head has one deadline, from its
		// first byte (from the accept for the connection's first request):
		// renewed on every read, it would let a client that sends a byte
		// now and then hold the connection for ever (slowloris). Between
		// requests, the idle timeout.
		if c.hdl == 0 && c.buffered() > 0 {
			c.startHead()
		}
		var dl time.Time
		switch {
		case c.hdl != 0:
			dl = time.Unix(0, c.hdl)
		case c.buffered() == 0 && c.fl.o.IdleTimeout > 0:
			dl = time.Now().Add(c.fl.o.IdleTimeout)
		}
		c.Conn.SetReadDeadline(dl)
		c.compact()
		m, rerr := c.Conn.Read(c.buf[c.w:])
		c.w += m
		if rerr != nil {
			if m == 0 && c.buffered() == 0 {
				return 0, rerr, false
			}
			c.eof = rerr
		}
	}
}

// Conn is what a pipeline sees of a connection the adapter serves.
type Conn struct{ c *fastConn }

// Head is the request head being served; its slices alias the
// connection's read buffer and are valid while the request is served.
func (c *Conn) Head() *Head { return &c.c.head }

// Writer is the connection's buffered writer, for ServeFast's response.
func (c *Conn) Writer() *bufio.Writer { return c.c.writer() }

// NetConn is the connection under the adapter (for its socket options).
func (c *Conn) NetConn() net.Conn { return c.c.Conn }

// NetConn is the connection under the adapter, for net/http's
// ConnContext and socket options.
func (c *fastConn) NetConn() net.Conn { return c.Conn }

// Draining reports whether the server is closing the connection: a
// response written now should say Connection: close.
func (c *Conn) Draining() bool { return c.c.draining() }

// RemoteAddr is the client's address as a string, made once per
// connection.
func (c *Conn) RemoteAddr() string { return c.c.remoteAddr() }

func (c *fastConn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = bufio.NewWriterSize(c.Conn, 4096)
	}
	return c.bw
}

// ConnForHead returns a Conn on no network connection whose request is
// head, parsed: for tests and benchmarks of a pipeline's ServeFast side.
// It reports false if head is not a request the fast path serves.
func ConnForHead(head []byte) (*Conn, bool) {
	fc := &fastConn{}
	fc.pub.c = fc
	v, _ := parseHead(head, 0, &fc.head)
	return &fc.pub, v == headFast
}
