// Package h1 is a synchronous HTTP/1.1 client transport for the proxy's
// upstream connections.
//
// net/http's Transport runs two goroutines per connection (a read loop and
// a write loop) and hands every request and response between them and the
// caller over channels. On a loaded VM those hand-offs (futex wake-ups)
// cost more than the exchange itself. This Transport writes the request
// and reads the response head on the caller's goroutine, and the response
// body is read from the connection by whoever reads Response.Body: no
// goroutine is started for an ordinary round trip.
//
// What it keeps from net/http's Transport:
//
//   - requests are written by (*http.Request).Write and responses parsed by
//     http.ReadResponse, so framing (Content-Length, chunked, trailers,
//     read-until-close, HEAD, 1xx, 204, 304) is net/http's own;
//   - a per-host, LIFO keep-alive pool with an idle timeout; a connection
//     goes back to it only after its response body was read to EOF, ending
//     exactly where the response's framing ends, and both sides allow
//     keep-alive. At checkout the socket is peeked: a connection the server
//     closed, or on which it sent anything unasked (a second response, a
//     body after HEAD, 204 or 304), is closed, never reused, so such bytes
//     cannot be read as the answer to another request (net/http's read
//     loop closes such a connection the moment the bytes arrive);
//   - one retry on a fresh connection when a reused one turns out to have
//     been closed by the server, for requests net/http would retry
//     (idempotent or Idempotency-Key, and a body that can be replayed);
//   - context cancellation and deadlines abort dialing, writing, waiting
//     for the head and reading the body, and RoundTrip then returns
//     context.Cause of the request's context, as net/http does;
//   - ResponseHeaderTimeout, answered with a net.Error whose Timeout is true;
//   - 1xx responses reported to httptrace's Got1xxResponse (which
//     httputil.ReverseProxy uses to forward 103 Early Hints), at most
//     MaxInterimResponses of them, where net/http leaves a hook's 1xx
//     unbounded; and 101
//     Switching Protocols answered with a Body that is an io.ReadWriteCloser
//     over the connection (which ReverseProxy needs for WebSocket).
//
// What it adds: BodyIdleTimeout, a bound on each wait for body bytes.
//
// What it leaves out: HTTP/2, proxies (HTTP_PROXY is never consulted),
// transparent gzip (the Accept-Encoding the caller set goes through as
// is), waiting for 100 Continue before sending a body (the body is sent at
// once, which RFC 9110 §10.1.1 allows), Request.Cancel, and a global idle
// limit across hosts.
//
// One difference follows from the design: the response head is read only
// once the whole request body has been written, where net/http reads it
// concurrently. A server that answers early and stops reading (413, 401)
// is still heard: when the write fails, the answer is read from the
// connection. But a full-duplex exchange, where the server streams its
// answer while it reads a long request body, stalls once the socket
// buffers fill, until the request's context ends.
package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// Options configure a Transport. The zero value is usable: every field has
// a default.
type Options struct {
	// DialTimeout bounds connecting to a server, the TCP connect and, for
	// https, the TLS handshake each. Default (0) 5s; negative: no bound
	// other than the request's context.
	DialTimeout time.Duration
	// ControlContext, if set, is the dialer's net.Dialer.ControlContext:
	// it sees each address dialled, after name resolution, before
	// connecting, with the request's context, and an error from it fails
	// that dial (the proxy's egress checks).
	ControlContext func(ctx context.Context, network, address string, c syscall.RawConn) error
	// CheckConn, if set, is called with the request's context and the
	// connection each request is about to be sent on, dialled or taken
	// from the pool (reused): a pooled connection was checked by
	// ControlContext for the request that dialled it, not for this one.
	// An error closes the connection and fails the request with it.
	CheckConn func(ctx context.Context, c net.Conn, reused bool) error
	// ResponseHeaderTimeout bounds the wait for the response head (status
	// line and headers, including any 1xx responses before it) after the
	// request has been written. Default 0: no bound.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long a connection may stay in the idle pool.
	// Default (0) 90s; negative: idle connections never expire.
	IdleConnTimeout time.Duration
	// MaxIdlePerHost caps the idle pool of each scheme and host:port; a
	// connection returned to a full pool is closed. Default (0) 64;
	// negative: no pooling (a connection per request).
	MaxIdlePerHost int
	// MaxResponseHeaderBytes bounds the response head (each 1xx and the
	// final one), so that a server sending endless headers gets an error
	// rather than exhausting memory; the 1xx heads of one response also
	// share one such budget. Default (0 or negative) 1 MiB.
	MaxResponseHeaderBytes int64
	// MaxInterimResponses bounds the 1xx responses (other than 101) before
	// the final one, delivered to a hook or not: more fail the round trip
	// with ErrTooManyInterim. Default (0 or negative) 10.
	MaxInterimResponses int
	// BodyIdleTimeout bounds each wait for response body bytes from the
	// server: a body that stalls longer fails its Read with
	// ErrBodyIdleTimeout and the connection is closed. Default 0: no
	// bound other than the request's context.
	BodyIdleTimeout time.Duration
	// OnEvent, if set, is told of what the transport refused (see Event),
	// for the caller's metrics. It must not block.
	OnEvent func(Event)
	// TLSConfig is used for https URLs. It is cloned; ServerName defaults to
	// the URL's host and NextProtos is always "http/1.1" only. Default nil:
	// system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
}

const (
	defaultDialTimeout     = 5 * time.Second
	defaultIdleConnTimeout = 90 * time.Second
	defaultMaxIdlePerHost  = 64
	defaultMaxHeaderBytes  = 1 << 20

	// max1xx bounds 1xx responses before the final one when they are not
	// delivered to a Got1xxResponse hook (net/http allows 5).
	max1xx = 5
	// defaultMaxInterim bounds them when they are: a server may send 100
	// Continue, 102 Processing and a few 103 Early Hints, not an endless
	// stream for the caller to relay.
	defaultMaxInterim = 10
	// Closing a response body before EOF reads on, up to maxDrain bytes
	// for at most drainTimeout, so that the connection can be reused.
	maxDrain     = 64 << 10
	drainTimeout = 50 * time.Millisecond
	// earlyResponseWait bounds the read for a response the server may have
	// sent before it stopped reading the request body.
	earlyResponseWait = time.Second
)

// Event is something the transport refused, reported to Options.OnEvent.
type Event uint8

const (
	// EventUnsolicitedBytes: a connection was closed rather than reused
	// because the server sent bytes after a complete response.
	EventUnsolicitedBytes Event = iota
	// EventBodyIdleTimeout: a response body stalled past BodyIdleTimeout.
	EventBodyIdleTimeout
	// EventTooManyInterim: a response exceeded MaxInterimResponses or the
	// 1xx head budget.
	EventTooManyInterim
)

// EndWatcher is a request context that can run a function when it ends
// more cheaply than context.AfterFunc: the proxy's fast path gives its
// requests one. A connection serving a request whose context implements
// it calls WatchEnd(f) (f interrupts the connection) instead of
// context.AfterFunc(ctx, f), and UnwatchEnd() instead of the stop
// function, with the same meanings: f runs in its own goroutine once the
// context ends, and UnwatchEnd reports false if f has run or will.
// WatchEnd may refuse (false), and context.AfterFunc is used then.
type EndWatcher interface {
	WatchEnd(f func()) bool
	UnwatchEnd() bool
}

// Transport is an HTTP/1.1 http.RoundTripper. It is safe for concurrent
// use. Create one with New.
type Transport struct {
	dialTimeout   time.Duration
	headerTimeout time.Duration
	idleTimeout   time.Duration // <= 0: never
	maxIdle       int           // <= 0: no pooling
	maxHeader     int64
	maxInterim    int
	bodyIdle      time.Duration // <= 0: none
	onEvent       func(Event)
	tlsConfig     *tls.Config
	dialer        net.Dialer
	checkConn     func(ctx context.Context, c net.Conn, reused bool) error
	// checkAfter is how long a connection must have been idle before
	// checkout peeks at its socket: 0, always, since bytes a server sends
	// after a response can arrive at once. Tests raise it.
	checkAfter time.Duration

	mu    sync.Mutex
	idle  map[connKey][]*conn // oldest first; checkout takes the last
	sweep *time.Timer         // closes expired idle connections
	armed bool                // sweep is scheduled
}

// connKey identifies a pool: connections are interchangeable only for the
// same scheme and address.
type connKey struct {
	https bool
	addr  string // host:port as dialed
}

// New returns a Transport with the options o.
func New(o Options) *Transport {
	t := &Transport{
		dialTimeout:   o.DialTimeout,
		headerTimeout: o.ResponseHeaderTimeout,
		idleTimeout:   o.IdleConnTimeout,
		maxIdle:       o.MaxIdlePerHost,
		maxHeader:     o.MaxResponseHeaderBytes,
		maxInterim:    o.MaxInterimResponses,
		bodyIdle:      o.BodyIdleTimeout,
		onEvent:       o.OnEvent,
		idle:          map[connKey][]*conn{},
	}
	if t.maxInterim <= 0 {
		t.maxInterim = defaultMaxInterim
	}
	if t.dialTimeout == 0 {
		t.dialTimeout = defaultDialTimeout
	}
	if t.idleTimeout == 0 {
		t.idleTimeout = defaultIdleConnTimeout
	}
	if t.maxIdle == 0 {
		t.maxIdle = defaultMaxIdlePerHost
	}
	if t.maxHeader <= 0 {
		t.maxHeader = defaultMaxHeaderBytes
	}
	if t.dialTimeout > 0 {
		t.dialer.Timeout = t.dialTimeout
	}
	t.dialer.KeepAlive = 30 * time.Second
	t.dialer.ControlContext = o.ControlContext
	t.checkConn = o.CheckConn
	if o.TLSConfig != nil {
		t.tlsConfig = o.TLSConfig.Clone()
	} else {
		t.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.tlsConfig.NextProtos = []string{"http/1.1"}
	return t
}

// Errors RoundTrip returns for conditions of its own. Errors of the
// connection, the request body and the context come through as they are
// (wrapped with %w where a message adds context).
var (
	// ErrHeaderTimeout is returned when ResponseHeaderTimeout expires. It
	// is a net.Error whose Timeout method reports true.
	ErrHeaderTimeout error = &timeoutError{"h1: timeout awaiting response headers"}
	// ErrServerClosed is wrapped in the error returned when the server
	// closed the connection without sending any response byte.
	ErrServerClosed = errors.New("h1: server closed the connection without a response")
	// ErrBodyIdleTimeout is returned by a response body's Read when the
	// server sent nothing for BodyIdleTimeout. It is a net.Error whose
	// Timeout method reports true.
	ErrBodyIdleTimeout error = &timeoutError{"h1: response body idle timeout"}
	// ErrTooManyInterim is wrapped in the error returned when the server
	// sent more 1xx responses than MaxInterimResponses, or more bytes of
	// them than MaxResponseHeaderBytes.
	ErrTooManyInterim = errors.New("h1: too many interim (1xx) responses")

	errReadOnClosedBody = errors.New("http: read on closed response body")
	aLongTimeAgo        = time.Unix(1, 0)
)

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Is(err error) bool {
	return err == context.DeadlineExceeded
}

// RoundTrip implements http.RoundTripper. Like net/http's Transport it
// always closes the request body, also on error, and it does not modify
// req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.RoundTripInterim(req, nil)
}

// Interim receives the 1xx responses other than 101 that precede the
// final response of a RoundTripInterim, on the caller's goroutine. An
// error ends the round trip with it.
type Interim interface {
	Got1xx(code int, header textproto.MIMEHeader) error
}

// ConnObserver is an Interim that is also told when the request has its
// connection (idle or dialled), before the request is written: the end of
// a connect phase, without an httptrace.ClientTrace.
type ConnObserver interface {
	GotConn()
}

// RoundTripInterim is RoundTrip, with 1xx responses also passed to in
// (if not nil): what an httptrace.ClientTrace's Got1xxResponse gets,
// without the allocations of building one per request.
func (t *Transport) RoundTripInterim(req *http.Request, in Interim) (*http.Response, error) {
	key, err := checkRequest(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	r := req
	var tb *trackedBody
	if hasBody(req) {
		r, tb = withTrackedBody(req, req.Body)
	}
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			closeBody(r)
			return nil, context.Cause(ctx)
		}
		c, err := t.getConn(ctx, key, req.URL, attempt > 0, trace)
		if err == nil && t.checkConn != nil {
			if err = t.checkConn(ctx, c.nc, c.reused); err != nil {
				c.close()
			}
		}
		if err != nil {
			closeBody(r)
			return nil, err
		}
		if o, ok := in.(ConnObserver); ok {
			o.GotConn()
		}
		resp, err := c.roundTrip(ctx, r, tb, trace, in)
		if err == nil {
			resp.Request = req
			return resp, nil
		}
		var re *retryableError
		if !errors.As(err, &re) {
			return nil, err
		}
		if attempt > 0 || !c.reused || ctx.Err() != nil || !canRetry(req, re) {
			return nil, re.err
		}
		if hasBody(req) {
			// The failed attempt wrote, or at least closed, the body.
			b, gerr := req.GetBody()
			if gerr != nil {
				return nil, fmt.Errorf("%w (and GetBody failed: %v)", re.err, gerr)
			}
			r, tb = withTrackedBody(req, b)
		}
	}
}

// canRetry reports whether req may be sent again after a reused
// connection failed with re: net/http's rules (persistConn.shouldRetryRequest).
func canRetry(req *http.Request, re *retryableError) bool {
	replayableBody := !hasBody(req) || req.GetBody != nil
	if re.nothingWritten {
		// The server never saw the request.
		return replayableBody
	}
	if !replayableBody {
		return false
	}
	switch req.Method {
	case "", "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok1 := req.Header["Idempotency-Key"]
	_, ok2 := req.Header["X-Idempotency-Key"]
	return ok1 || ok2
}

// retryableError is a connection failure before the server answered
// anything; RoundTrip decides whether to try again.
type retryableError struct {
	err            error
	nothingWritten bool // not one byte of the request reached the socket
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// CloseIdleConnections closes the connections in the idle pool. Those in
// use are not affected; they return to the pool when their exchange ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[connKey][]*conn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.close()
		}
	}
}

// getConn returns an idle connection for key, or dials one (always when
// fresh is set).
func (t *Transport) getConn(ctx context.Context, key connKey, u *url.URL, fresh bool, trace *httptrace.ClientTrace) (*conn, error) {
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(key.addr)
	}
	if !fresh {
		if c, idle := t.getIdle(key); c != nil {
			if trace != nil && trace.GotConn != nil {
				trace.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: true, WasIdle: true, IdleTime: idle})
			}
			return c, nil
		}
	}
	c, err := t.dial(ctx, key, u, trace)
	if err != nil {
		return nil, err
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: c.nc})
	}
	return c, nil
}

// getIdle takes the most recently used live connection for key from the
// pool, closing expired or dead ones on the way.
func (t *Transport) getIdle(key connKey) (*conn, time.Duration) {
	for {
		t.mu.Lock()
		l := t.idle[key]
		if len(l) == 0 {
			t.mu.Unlock()
			return nil, 0
		}
		c := l[len(l)-1]
		l[len(l)-1] = nil
		t.idle[key] = l[:len(l)-1]
		t.mu.Unlock()
		idle := time.Since(c.idleAt)
		if t.idleTimeout > 0 && idle >= t.idleTimeout {
			c.close()
			continue
		}
		if c.br.Buffered() > 0 {
			// release pools no such connection; never hand one out.
			t.event(EventUnsolicitedBytes)
			c.close()
			continue
		}
		if idle >= t.checkAfter {
			switch c.idleState() {
			case idleUnsolicited:
				t.event(EventUnsolicitedBytes)
				c.close()
				continue
			case idleClosed:
				c.close()
				continue
			}
		}
		return c, idle
	}
}

func (t *Transport) event(e Event) {
	if t.onEvent != nil {
		t.onEvent(e)
	}
}

// putIdle returns c to its pool, or closes it if the pool is full.
func (t *Transport) putIdle(c *conn) {
	if t.maxIdle <= 0 {
		c.close()
		return
	}
	c.idleAt = time.Now()
	t.mu.Lock()
	l := t.idle[c.key]
	if len(l) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle[c.key] = append(l, c)
	if t.idleTimeout > 0 && !t.armed {
		t.armed = true
		if t.sweep == nil {
			t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
		} else {
			t.sweep.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// sweepIdle closes the idle connections that expired and schedules itself
// for the next expiry, so that connections to hosts no longer asked for
// do not stay open.
func (t *Transport) sweepIdle() {
	now := time.Now()
	var expired []*conn
	var next time.Time
	t.mu.Lock()
	t.armed = false
	for k, l := range t.idle {
		i := 0
		for i < len(l) && now.Sub(l[i].idleAt) >= t.idleTimeout {
			i++
		}
		if i > 0 {
			expired = append(expired, l[:i]...)
			n := copy(l, l[i:])
			clear(l[n:])
			l = l[:n]
			t.idle[k] = l
		}
		if len(l) == 0 {
			delete(t.idle, k)
			continue
		}
		if exp := l[0].idleAt.Add(t.idleTimeout); next.IsZero() || exp.Before(next) {
			next = exp
		}
	}
	if !next.IsZero() {
		t.armed = true
		t.sweep.Reset(max(next.Sub(now), time.Millisecond))
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// idleCount reports the number of idle connections (for tests).
func (t *Transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.idle {
		n += len(l)
	}
	return n
}

// checkRequest validates req as net/http's Transport does and returns its
// pool key.
func checkRequest(req *http.Request) (connKey, error) {
	if req.URL == nil {
		return connKey{}, errors.New("http: nil Request.URL")
	}
	if req.Header == nil {
		return connKey{}, errors.New("http: nil Request.Header")
	}
	k, err := keyOf(req.URL)
	if err != nil {
		return connKey{}, err
	}
	if req.Method != "" && !validToken(req.Method) {
		return connKey{}, fmt.Errorf("net/http: invalid method %q", req.Method)
	}
	if err := validateHeaders(req.Header); err != "" {
		return connKey{}, fmt.Errorf("net/http: invalid header %s", err)
	}
	if err := validateHeaders(req.Trailer); err != "" {
		return connKey{}, fmt.Errorf("net/http: invalid trailer %s", err)
	}
	return k, nil
}

// keyOf is u's pool key (checkRequest's and Discard's).
func keyOf(u *url.URL) (connKey, error) {
	var k connKey
	port := "80"
	switch u.Scheme {
	case "http":
	case "https":
		k.https, port = true, "443"
	default:
		return connKey{}, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return connKey{}, errors.New("http: no Host in request URL")
	}
	if u.Port() != "" {
		k.addr = u.Host
	} else {
		k.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return k, nil
}

func validateHeaders(h http.Header) string {
	for k, vv := range h {
		if !validToken(k) {
			return fmt.Sprintf("field name %q", k)
		}
		for _, v := range vv {
			if !validValue(v) {
				// Not the value: it may be sensitive.
				return fmt.Sprintf("field value for %q", k)
			}
		}
	}
	return ""
}

// validToken reports whether s is an RFC 9110 token (field names, methods).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !field.IsToken(s[i]) {
			return false
		}
	}
	return true
}

// validValue reports whether v may be sent as a field value: no control
// characters other than horizontal tab (so no CR or LF to smuggle with).
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// withTrackedBody returns a shallow copy of req whose body is b wrapped to
// record read errors: (*http.Request).Write reports them in an unexported
// type without Unwrap, and the caller needs the original (for example an
// *http.MaxBytesError).
func withTrackedBody(req *http.Request, b io.ReadCloser) (*http.Request, *trackedBody) {
	r := new(http.Request)
	*r = *req
	tb := &trackedBody{rc: b}
	r.Body = tb
	return r, tb
}

type trackedBody struct {
	rc  io.ReadCloser
	err error // the first read error other than io.EOF
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *trackedBody) Close() error { return b.rc.Close() }
