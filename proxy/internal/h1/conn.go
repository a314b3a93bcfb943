package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/zerohop/zerohop/internal/nbconn"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// conn is one upstream connection. It is used by one exchange at a time:
// the goroutine that checked it out writes the request and reads the
// head, and then whoever reads the response body reads from it, until the
// body is done and the connection is pooled or closed.
type conn struct {
	t        *Transport
	key      connKey
	nc       net.Conn        // the TCP or TLS connection
	raw      syscall.RawConn // the TCP socket, for alive; nil if unavailable
	tlsState *tls.ConnectionState
	br       *bufio.Reader // reads through conn.Read
	bw       *bufio.Writer // writes through conn.Write
	idleAt   time.Time     // when it entered the idle pool
	reused   bool          // it completed an exchange before this one

	// Byte counts of the socket, and the bytes Read may still return while
	// a response head is read (MaxResponseHeaderBytes).
	nread, nwritten int64
	werr            error // the connection's write error, if any
	limit           int64
	limitHit        bool
	hasDeadline     bool // a read deadline is set that reuse must clear
	// bodyIdle, while a response body is read, is the Transport's
	// BodyIdleTimeout: each read from the socket gets that long.
	bodyIdle time.Duration

	// Context cancellation: stop unregisters the context.AfterFunc that
	// calls interrupt, or watcher the context's own (EndWatcher). dmu
	// orders interrupt against read deadlines set by the exchange, so that
	// a deadline set later cannot undo it.
	stop        func() bool
	watcher     EndWatcher
	interruptFn func()
	dmu         sync.Mutex
	interrupted bool

	// alive's system call result, kept here so that checking does not
	// allocate.
	peekFn  func(fd uintptr) bool
	peekBuf [1]byte
	peekN   int
	peekErr error
}

func (t *Transport) dial(ctx context.Context, key connKey, u *url.URL, trace *httptrace.ClientTrace) (*conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	c := &conn{t: t, key: key, nc: nc, limit: math.MaxInt64}
	if tc, ok := nc.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	// Reads and writes with raw system calls: no sysmon wakeup per request
	// at an idle sidecar (see internal/nbconn).
	c.nc = nbconn.Wrap(nc)
	if key.https {
		if err := c.handshake(ctx, u, trace); err != nil {
			nc.Close()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
	}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(c, 4<<10)
	c.interruptFn = c.interrupt
	c.peekFn = c.peek
	return c, nil
}

func (c *conn) handshake(ctx context.Context, u *url.URL, trace *httptrace.ClientTrace) error {
	cfg := c.t.tlsConfig.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tc := tls.Client(c.nc, cfg)
	if c.t.dialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.t.dialTimeout)
		defer cancel()
	}
	if trace != nil && trace.TLSHandshakeStart != nil {
		trace.TLSHandshakeStart()
	}
	err := tc.HandshakeContext(ctx)
	st := tc.ConnectionState()
	if trace != nil && trace.TLSHandshakeDone != nil {
		trace.TLSHandshakeDone(st, err)
	}
	if err != nil {
		return err
	}
	c.nc, c.tlsState = tc, &st
	return nil
}

// Read reads from the connection for br, enforcing the head limit.
func (c *conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		c.limitHit = true
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	if c.bodyIdle > 0 {
		// Only reads that reach the socket are timed: a body already
		// buffered costs no deadline.
		c.setReadDeadline(time.Now().Add(c.bodyIdle))
	}
	n, err := c.nc.Read(p)
	c.nread += int64(n)
	c.limit -= int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("h1: response head too large")

// Write writes to the connection for bw.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.nwritten += int64(n)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// ReadFrom lets a request body that bw would otherwise copy 4 KiB at a
// time go to the connection directly (as net/http's persistConnWriter
// does).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.nc, r)
	c.nwritten += n
	if err != nil {
		c.werr = err // or the body's read error, which writeFailed tells apart
	}
	return n, err
}

// interrupt aborts the connection's I/O: the request's context is done.
func (c *conn) interrupt() {
	c.dmu.Lock()
	c.interrupted = true
	c.nc.SetDeadline(aLongTimeAgo)
	c.dmu.Unlock()
}

// wasInterrupted reports whether interrupt ran.
func (c *conn) wasInterrupted() bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.interrupted
}

// setReadDeadline sets a read deadline unless the exchange was
// interrupted (whose past deadline must stay).
func (c *conn) setReadDeadline(d time.Time) {
	c.dmu.Lock()
	if !c.interrupted {
		c.nc.SetReadDeadline(d)
		c.hasDeadline = !d.IsZero()
	}
	c.dmu.Unlock()
}

// watch arranges for ctx's end to interrupt the connection.
func (c *conn) watch(ctx context.Context) {
	if w, ok := ctx.(EndWatcher); ok && w.WatchEnd(c.interruptFn) {
		c.watcher = w
		return
	}
	if ctx.Done() != nil {
		c.stop = context.AfterFunc(ctx, c.interruptFn)
	}
}

// unwatch stops watching the context. It reports false if the context
// ended and interrupted the connection (or is about to).
func (c *conn) unwatch() bool {
	if w := c.watcher; w != nil {
		c.watcher = nil
		return w.UnwatchEnd()
	}
	if c.stop == nil {
		return true
	}
	stop := c.stop
	c.stop = nil
	return stop()
}

func (c *conn) close() {
	c.unwatch()
	c.nc.Close()
}

// release ends an exchange: the connection goes back to the pool if reuse
// is set and nothing speaks against it, or is closed.
func (c *conn) release(reuse bool) {
	c.bodyIdle = 0
	if !c.unwatch() {
		reuse = false // interrupted
	} else if c.br.Buffered() > 0 {
		// The server sent more than the response: whatever it is, the
		// next request must not read it as its answer.
		if reuse {
			c.t.event(EventUnsolicitedBytes)
		}
		reuse = false
	}
	if !reuse {
		c.nc.Close()
		return
	}
	if c.hasDeadline {
		c.nc.SetReadDeadline(time.Time{})
		c.hasDeadline = false
	}
	c.reused = true
	c.t.putIdle(c)
}

// roundTrip sends r and reads the response head. On error the connection
// is closed; a *retryableError means the server answered nothing.
func (c *conn) roundTrip(ctx context.Context, r *http.Request, tb *trackedBody, trace *httptrace.ClientTrace, in Interim) (*http.Response, error) {
	c.watch(ctx)
	w0 := c.nwritten
	var err error
	if !writeQuick(c.bw, r, trace) {
		err = r.Write(c.bw)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		return c.writeFailed(ctx, r, tb, trace, in, err, c.nwritten == w0)
	}
	if d := c.t.headerTimeout; d > 0 {
		c.setReadDeadline(time.Now().Add(d))
	}
	r0 := c.nread
	resp, err := c.readHead(r, trace, in)
	if err != nil {
		err = c.readFailed(ctx, err, c.nread == r0)
		c.close()
		return nil, err
	}
	return c.response(ctx, r, resp, true)
}

// writeFailed handles an error from writing the request.
func (c *conn) writeFailed(ctx context.Context, r *http.Request, tb *trackedBody, trace *httptrace.ClientTrace, in Interim, err error, nothingWritten bool) (*http.Response, error) {
	switch {
	case ctx.Err() != nil:
		c.close()
		return nil, context.Cause(ctx)
	case tb != nil && tb.err != nil:
		// Reading the request body failed: that error, as it is.
		c.close()
		return nil, tb.err
	case c.werr == nil:
		// Request.Write refused the request (a bad Host, a body shorter
		// than its ContentLength): not the connection's fault.
		c.close()
		return nil, err
	case nothingWritten:
		c.close()
		return nil, &retryableError{err: fmt.Errorf("h1: writing request to %s: %w", c.key.addr, err), nothingWritten: true}
	}
	// The server may have answered and stopped reading the request (413,
	// 401, ...): net/http returns that answer, and so do we.
	werr := fmt.Errorf("h1: writing request to %s: %w", c.key.addr, err)
	c.setReadDeadline(time.Now().Add(earlyResponseWait))
	r0 := c.nread
	resp, rerr := c.readHead(r, trace, in)
	if rerr != nil {
		nothingRead := c.nread == r0
		c.close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if nothingRead {
			return nil, &retryableError{err: werr}
		}
		return nil, werr
	}
	return c.response(ctx, r, resp, false)
}

// readFailed turns an error reading the head into the one to return.
func (c *conn) readFailed(ctx context.Context, err error, nothingRead bool) error {
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case c.limitHit:
		return fmt.Errorf("h1: %s: server response head exceeded %d bytes; aborted", c.key.addr, c.t.maxHeader)
	case c.hasDeadline && errors.As(err, &ne) && ne.Timeout():
		return ErrHeaderTimeout
	case nothingRead && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return &retryableError{err: fmt.Errorf("%w (%s)", ErrServerClosed, c.key.addr)}
	case nothingRead:
		return &retryableError{err: fmt.Errorf("h1: reading response from %s: %w", c.key.addr, err)}
	case errors.Is(err, io.EOF):
		return fmt.Errorf("h1: reading response from %s: %w", c.key.addr, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("h1: reading response from %s: %w", c.key.addr, err)
}

// readHead reads the final response head, passing 1xx responses other
// than 101 to the trace.
func (c *conn) readHead(r *http.Request, trace *httptrace.ClientTrace, in Interim) (*http.Response, error) {
	defer func() { c.limit = math.MaxInt64 }()
	n1xx, nInterim := 0, 0
	start := c.nread - int64(c.br.Buffered()) // where the heads begin
	for first := true; ; first = false {
		c.limit, c.limitHit = c.t.maxHeader, false
		if first && trace != nil && trace.GotFirstResponseByte != nil {
			if _, err := c.br.Peek(1); err == nil {
				trace.GotFirstResponseByte()
			}
		}
		resp, err := readQuick(c.br, r)
		if err == nil && resp == nil {
			resp, err = readCoded(c.br, r) // transfer codings net/http refuses
		}
		if err == nil && resp == nil {
			resp, err = http.ReadResponse(c.br, r)
		}
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		n1xx++
		// Delivered or not, interim responses are bounded in number and
		// bytes: a server must not make the caller relay them forever.
		nInterim++
		if used := c.nread - int64(c.br.Buffered()) - start; nInterim > c.t.maxInterim || used > c.t.maxHeader {
			c.t.event(EventTooManyInterim)
			return nil, fmt.Errorf("%w: %d responses, %d bytes from %s (limits %d, %d)", ErrTooManyInterim, nInterim, used, c.key.addr, c.t.maxInterim, c.t.maxHeader)
		}
		if code == http.StatusContinue && trace != nil && trace.Got100Continue != nil {
			trace.Got100Continue()
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
			// Delivered: limiting them is the hook's business.
			n1xx = 0
		}
		if in != nil {
			if err := in.Got1xx(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
			n1xx = 0
		}
		if n1xx > max1xx {
			return nil, errors.New("h1: too many 1xx informational responses")
		}
	}
}

// response finishes the round trip once the final head is in: the head
// deadline goes, and the body takes over the connection.
func (c *conn) response(ctx context.Context, r *http.Request, resp *http.Response, reusable bool) (*http.Response, error) {
	if c.hasDeadline {
		c.setReadDeadline(time.Time{})
	}
	resp.TLS = c.tlsState
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if !c.unwatch() {
			c.nc.Close()
			return nil, context.Cause(ctx)
		}
		resp.Body = &upgradeBody{c: c}
		return resp, nil
	}
	reuse := reusable && !resp.Close && !r.Close && !wantsClose(r.Header)
	if resp.Body == http.NoBody {
		c.release(reuse)
		return resp, nil
	}
	b := &body{c: c, ctx: ctx, rc: resp.Body, reuse: reuse, length: resp.ContentLength}
	c.bodyIdle = c.t.bodyIdle
	if resp.Body == nil { // readQuick's fixed-length body
		b.fixed = fixedBody{br: c.br, remain: resp.ContentLength}
		b.rc = &b.fixed
	}
	resp.Body = b
	return resp, nil
}

func wantsClose(h http.Header) bool {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "close") {
				return true
			}
		}
	}
	return false
}

// body is a response body. Reading it to EOF releases the connection to
// the pool; closing it early drains a little or closes the connection.
// Close may be called while a Read is blocked, to abort it.
type body struct {
	c      *conn
	ctx    context.Context
	rc     io.ReadCloser // from http.ReadResponse (framing and trailers), or &fixed
	fixed  fixedBody
	reuse  bool  // framing and headers allow keep-alive
	length int64 // Content-Length, or -1
	n      int64 // bytes read

	mu      sync.Mutex
	reading bool  // a Read is using the connection
	closed  bool  // Close was called
	done    bool  // the connection was released
	err     error // sticky, after EOF or a failure
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errReadOnClosedBody
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.rc.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.n += int64(n)
	switch {
	case b.closed:
		// Close interrupted this Read.
		b.finish(false)
		return n, errReadOnClosedBody
	case err == nil:
		return n, nil
	case err == io.EOF:
		b.err = io.EOF
		b.finish(b.reuse)
		return n, io.EOF
	}
	if b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	} else if b.c.bodyIdle > 0 && errors.Is(err, os.ErrDeadlineExceeded) && !b.c.wasInterrupted() {
		b.c.t.event(EventBodyIdleTimeout)
		err = ErrBodyIdleTimeout
	}
	b.err = err
	b.finish(false)
	return n, err
}

// Close ends the exchange. Before EOF it reads on for a little, so that
// the connection can be reused, or else closes the connection. It does not
// return an error: the connection is the transport's business.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	switch {
	case b.done:
	case b.reading:
		// Unblock the Read; it releases the connection.
		b.c.interrupt()
	default:
		b.finish(b.reuse && b.drain())
	}
	return nil
}

// drain reads the rest of the body if it is short and comes quickly, and
// reports whether it reached EOF.
func (b *body) drain() bool {
	if b.length >= 0 && b.length-b.n > maxDrain {
		return false
	}
	b.c.bodyIdle = 0 // the drain has its own deadline
	b.c.setReadDeadline(time.Now().Add(drainTimeout))
	_, err := io.CopyN(io.Discard, b.rc, maxDrain+1)
	return err == io.EOF
}

func (b *body) finish(reuse bool) {
	if b.done {
		return
	}
	b.done = true
	b.c.release(reuse)
}

// upgradeBody is the body of a 101 Switching Protocols response: the
// connection itself, for the new protocol. httputil.ReverseProxy requires
// an io.ReadWriteCloser there.
type upgradeBody struct {
	c    *conn
	once sync.Once
}

func (u *upgradeBody) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgradeBody) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgradeBody) Close() error {
	err := net.ErrClosed
	u.once.Do(func() { err = u.c.nc.Close() })
	return err
}

// idleState is what checkout finds on an idle connection's socket.
type idleState uint8

const (
	idleOK          idleState = iota // nothing to read: reusable
	idleClosed                       // the server closed or reset it
	idleUnsolicited                  // the server sent bytes nobody asked for
)
