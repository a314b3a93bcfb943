package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
	"github.com/zerohop/zerohop/proxy/internal/flight"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
	"github.com/zerohop/zerohop/shm"
)

// exchange is one request's journey through the proxy, carried in the
// request context so that the ReverseProxy hooks see it.
type exchange struct {
	p     *Proxy
	st    *state
	lis   *config.Listener
	guard *egressGuard   // forward and transparent modes: the listener's destination check
	dst   netip.AddrPort // transparent mode: where the app's connection was going
	in    *http.Request
	route *route
	// cluster is where the request goes; nil means the request's own
	// absolute URL (forward mode, no route).
	cluster *cluster
	ep      *endpoint // the try's endpoint, until its outcome is observed (balance.go)
	reqID   string
	start   time.Time
	// outHdr is the header map of the app's response writer (nil for a
	// background revalidation).
	outHdr http.Header

	scheme, host, target string

	// Cache state.
	cacheable    bool   // GET or HEAD that may be looked up and stored
	primary      []byte // primary key
	primaryVary  []byte // vary block of a stored vary index under primary, if any
	primaryIsIdx bool
	stored       *shm.Entry // the stored response used for revalidation or stale
	storedHdr    http.Header
	revalidating bool
	refresh      bool // a background revalidation: nobody reads the response
	storeOK      bool
	buf          *[]byte  // pooled lookup buffer; entries above alias it
	etag         string   // the upstream's ETag, before compression changes it
	stripFields  []string // fields a qualified private/no-cache forbids storing
	targeted     string   // the targeted cache-control value in use, if any (cachepolicy.go)
	reqDir       httpcache.Directives
	status       httpcache.CacheStatus
	reqTime      time.Time
	respTime     time.Time

	// What happened, for logs and metrics.
	upstream   string
	upstreamMs float64
	filterNote string   // the filter that answered, and why
	tries      int      // upstream tries made (retry.go); 0: none
	decisions  decision // retried, breaker open, shadowed, ejected

	// The request phase's outcome (filter.go). The fast path may have
	// run the chain already on the parsed head, before handing the
	// request over: then filtered is set, and the chain is not run again.
	filtered   bool
	preRoute   *route // the route the fast path ran the chain for
	chain      chain  // the listener's and the route's filters (state.chainFor)
	consumer   string // who a filter authenticated the request as
	answeredBy filter
	ans        answer

	// Allocated with the exchange rather than on their own: the
	// response recorder, the context carrying x, and the backing of the
	// X-Request-Id field value that the request, upstream and response
	// header maps share (capacity 1, so an Add to any of them copies).
	rec    recorder
	ctx    exchangeCtx
	reqIDv [1]string
	fs     fastpath.Slot // the fast path's: request context (under ctx), writer, URL
	out    outbound      // the direct forwarder's upstream request
	flight flight.Call   // the fetch others wait on, when x leads one
	keyArr [160]byte     // primary's backing, for the usual key
	upHdr  http.Header   // an empty map for the upstream request's header, if any
	// Single-value backings for fields the proxy sets, as reqIDv:
	// X-Forwarded-For/-Host/-Proto, Forwarded and Via upstream; Via and
	// Cache-Status on the response.
	fwdV    [5]string
	fwdUsed bool
	viaV    [1]string
	cacheV  [1]string

	// interimW receives the 1xx responses of a direct forward (Got1xx).
	interimW http.ResponseWriter

	// The request's phases (timeline.go), as offsets from start.
	tl      timeline.Phases
	connAt  time.Duration // when the upstream request got its connection (GotConn)
	failAt  time.Duration // when the upstream exchange failed (noteUpstreamFailure)
	upErr   string        // how it failed
	spanIDs spanIDs       // the server span's ids, when tracing named it upstream (tracing.go)
}

// reqIDField is x.reqID as a header field value.
func (x *exchange) reqIDField() []string {
	x.reqIDv[0] = x.reqID
	return x.reqIDv[:]
}

// exchangeCtx is the request context that carries its exchange: what
// context.WithValue would build, without an allocation of its own.
type exchangeCtx struct {
	context.Context
	x *exchange
}

func (c *exchangeCtx) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c.x
	}
	return c.Context.Value(key)
}

// WatchEnd, UnwatchEnd and AfterFunc pass on what fastpath.RequestCtx offers when
// it is the context underneath (the fast path's); see there.

func (c *exchangeCtx) WatchEnd(f func()) bool {
	if r, ok := c.Context.(*fastpath.RequestCtx); ok {
		return r.WatchEnd(f)
	}
	return false
}

func (c *exchangeCtx) UnwatchEnd() bool {
	if r, ok := c.Context.(*fastpath.RequestCtx); ok {
		return r.UnwatchEnd()
	}
	return false
}

func (c *exchangeCtx) AfterFunc(f func()) (stop func() bool) {
	if r, ok := c.Context.(*fastpath.RequestCtx); ok {
		return r.AfterFunc(f)
	}
	return context.AfterFunc(c.Context, f)
}

type ctxKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(ctxKey{}).(*exchange)
	return x
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	p.seen.Add(1)
	var x *exchange
	if c, ok := r.Context().(*exchangeCtx); ok && c.x.p == nil {
		x = c.x // made with the request by the fast path (fastSide.Begin)
		x.upHdr = x.fs.UpstreamHeader
	} else {
		x = &exchange{}
		x.ctx = exchangeCtx{r.Context(), x}
	}
	if x.st == nil { // else the fast path loaded it for its hit attempt
		x.st = p.st.Load()
	}
	x.p, x.lis, x.guard, x.in, x.start = p, &h.l, h.guard, r, p.opts.Now()
	x.reqID = r.Header.Get("X-Request-Id")
	if x.reqID == "" || len(x.reqID) > 128 {
		x.reqID = newRequestID()
		r.Header["X-Request-Id"] = x.reqIDField()
	}
	rec := &x.rec
	rec.ResponseWriter, rec.x = w, x
	rec.Header()["X-Request-Id"] = x.reqIDField()
	x.outHdr = rec.Header()
	defer p.finish(x, rec)
	defer p.releaseBuf(x)

	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http frames a request that has both Transfer-Encoding and
		// Content-Length by Transfer-Encoding and drops Content-Length,
		// but keeps the connection open, which RFC 9112 §6.1 requires
		// closing (request smuggling). The two cannot be told apart
		// here, so every chunked request closes its connection.
		rec.Header().Set("Connection", "close")
	}
	if h.l.MaxRequestBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > int64(h.l.MaxRequestBody) {
			p.fail(rec, x, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		// w, not rec: the server then closes the connection on overflow.
		r.Body = http.MaxBytesReader(w, r.Body, int64(h.l.MaxRequestBody))
	}
	if r.Method == http.MethodConnect {
		if h.l.Mode != config.ModeForward {
			p.fail(rec, x, http.StatusMethodNotAllowed, "CONNECT is only accepted by forward-proxy listeners")
			return
		}
		// The listener's filters (authentication, IP lists) guard tunnels
		// as they guard requests without a route.
		x.host, x.target, x.chain = r.Host, r.Host, x.st.chainFor(x.lis.Name, nil)
		if len(x.chain) > 0 && p.filterRequest(rec, x) {
			return
		}
		p.tunnel(rec, r, x)
		return
	}
	if !p.resolve(rec, r, x) {
		return
	}
	if len(x.chain) > 0 {
		t0 := x.since()
		answered := p.filterRequest(rec, x)
		x.markFrom(timeline.Filters, t0)
		if answered {
			return
		}
	}
	if x.route != nil && x.route.cfg.MaxRequestBody > 0 && !p.routeBodyLimit(w, rec, r, x) {
		return // bodylimit.go
	}
	if x.route != nil && x.route.conc != nil { // concurrency.go
		ok, limit := x.route.conc.enter(r.RemoteAddr)
		if !ok {
			p.refuseConcurrency(rec, x, limit)
			return
		}
		defer x.route.conc.leave(r.RemoteAddr)
	}
	var ctx context.Context = &x.ctx
	if x.route != nil && x.route.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, x.route.cfg.Timeout, errUpstreamTimeout)
		defer cancel()
	}
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	x.in = r
	if x.cacheable {
		p.serveCached(rec, r, x)
		return
	}
	p.forward(rec, r, x)
}

// resolve works out the request's URL parts and route. It answers the
// request itself (and returns false) when it cannot be proxied.
func (p *Proxy) resolve(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	forward := x.lis.Mode == config.ModeForward
	transparent := x.lis.Mode == config.ModeTransparent
	if forward {
		if !r.URL.IsAbs() || r.URL.Host == "" {
			p.fail(w, x, http.StatusBadRequest, "this listener is a forward proxy: send absolute-form requests (set HTTP_PROXY)")
			return false
		}
		if r.URL.Scheme != "http" {
			p.fail(w, x, http.StatusBadRequest, "forward proxy: only http URLs are fetched; https goes through CONNECT")
			return false
		}
		x.scheme, x.host, x.target = "http", r.URL.Host, r.URL.RequestURI()
	} else {
		x.scheme, x.host, x.target = "http", r.Host, r.RequestURI
		if r.TLS != nil { // a TLS listener: the target URI is https (httpcache.TargetURI)
			x.scheme = "https"
		}
		if r.URL.IsAbs() || x.target == "" {
			x.target = r.URL.RequestURI()
		}
	}
	if transparent && !p.resolveIntercepted(w, r, x) {
		return false
	}
	if rt := x.st.routeFor(r.Method, requestFields(r.Header), hostOnly(x.host), r.URL.Path, r.URL.RawQuery); rt != nil {
		x.route, x.cluster = rt, rt.clusterFor(r.Header)
	}
	x.chain = x.st.chainFor(x.lis.Name, x.route)
	if x.route == nil && !forward && !transparent {
		p.fail(w, x, http.StatusNotFound, "no route matches this request")
		return false
	}
	if x.route == nil && x.guard != nil && !hasEgressFilter(x.chain) {
		// A listener the configuration in use does not name (renamed or
		// removed since it started): its egress filter is not in the
		// chain, and the destination is checked here instead.
		ref := x.guard.decideHost(x.st.egress, x.host, 80, "http", r.Method)
		if transparent { // the address the app dialled, whatever its Host says
			ref = x.guard.decideAddr(x.st.egress, x.host, x.dst, "http", r.Method)
		}
		if ref != nil {
			p.refuse(w, x, ref)
			return false
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		var detail string
		if x.cacheable, detail = p.cachesFor(x.route, requestFields(r.Header)); detail != "" {
			x.status.Fwd, x.status.Detail = httpcache.FwdBypass, detail
		}
	}
	if x.cacheable {
		for _, f := range unkeyedOverrides {
			if _, ok := r.Header[f]; ok {
				x.cacheable = false
				x.status.Fwd, x.status.Detail = httpcache.FwdBypass, "unkeyed-override"
				break
			}
		}
	}
	if !x.cacheable && x.status.Fwd == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			x.status.Fwd = httpcache.FwdMethod
		} else {
			x.status.Fwd = httpcache.FwdBypass
		}
	}
	return true
}

// unkeyedOverrides are request fields that some origins and frameworks
// let override the URL, scheme or method of a request. The cache key does
// not include them, so a response to a request carrying one is neither
// looked up nor stored: otherwise one request could plant a response that
// every other request for the URL then gets (cache poisoning through
// unkeyed input). X-Forwarded-For/-Host/-Proto and Forwarded are not
// listed: the proxy replaces them.
var unkeyedOverrides = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Scheme", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Host",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
}

// forward sends the request upstream with no cache lookup.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	p.serveUpstream(w, r, x)
}

// fail answers with a short plain-text error of the proxy's own.
func (p *Proxy) fail(w http.ResponseWriter, x *exchange, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h["X-Request-Id"] = x.reqIDField() // a forwarded 1xx clears the header map
	if x.status.Fwd == "" && !x.status.Hit {
		x.status.Fwd = httpcache.FwdMiss
	}
	if x.status.Detail == "" {
		x.status.Detail = "proxy-error"
	}
	httpcache.AppendCacheStatus(h, x.status)
	w.WriteHeader(code)
	w.Write([]byte("zerohop: " + msg + "\n"))
}

// Request ids are a random per-process prefix and a counter: unique
// without a random read per request.
var (
	reqIDPrefix [8]byte
	reqIDSeq    atomic.Uint64
)

func init() { rand.Read(reqIDPrefix[:]) }

func newRequestID() string {
	var b [32]byte
	return string(appendRequestID(b[:0]))
}

// appendRequestID appends a new request id to dst.
func appendRequestID(dst []byte) []byte {
	var b [16]byte
	copy(b[:8], reqIDPrefix[:])
	binary.BigEndian.PutUint64(b[8:], reqIDSeq.Add(1))
	return hex.AppendEncode(dst, b[:])
}

// recorder remembers what was written, for logs and metrics. It unwraps
// for http.ResponseController, so hijacking (Upgrade, CONNECT) and flushing
// (server-sent events) reach the real connection.
type recorder struct {
	http.ResponseWriter
	x     *exchange // whose route's filters see the response head
	code  int
	bytes int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		if r.code == 0 {
			r.filterResponse(code)
		}
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// filterResponse runs the response phase of the route's filters on the
// head about to be written (filter.go), once per response.
func (r *recorder) filterResponse(code int) {
	if x := r.x; x != nil && len(x.chain) > 0 {
		x.chain.onResponse(x, code, headerFields(r.Header()))
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.filterResponse(http.StatusOK)
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

// Hijack takes the connection over (Upgrade, CONNECT). The exchange is
// recorded as 101 unless the caller records another status.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.code == 0 {
		r.code = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// finish records the access-log line and metrics of x.
func (p *Proxy) finish(x *exchange, rec *recorder) {
	if x.refresh {
		return
	}
	d := p.opts.Now().Sub(x.start)
	routeName := ""
	if x.route != nil {
		routeName = x.route.name
	}
	cacheLabel := "none"
	switch {
	case x.status.Hit:
		cacheLabel = "hit"
	case x.status.Fwd != "":
		cacheLabel = string(x.status.Fwd)
	}
	code := rec.code
	if code == 0 {
		code = 499 // the client went away before a response
	}
	a := accessEntry{
		reqID: x.reqID, listener: x.lis.Name, method: x.in.Method, host: x.host, target: x.target,
		status: code, route: routeName, upstream: x.upstream, cacheLabel: cacheLabel,
		bytes: int(rec.bytes), d: d, upstreamMs: x.upstreamMs, remote: x.in.RemoteAddr, filter: x.filterNote,
		consumer: x.consumer, tries: x.tries, decision: x.decisions.String(),
		start: x.start, traceparent: x.in.Header.Get("Traceparent"),
	}
	x.upstreamPhases(d)
	a.phases, a.spanIDs, a.upErr = x.tl, x.spanIDs, x.upErr
	if a.spanIDs.span.IsValid() {
		a.tracestate = x.in.Header.Get("Tracestate")
	}
	if p.opts.AccessLog != nil { // the strings only a log line needs
		a.cache = x.status.String()
	}
	p.record(&a)
}

// accessEntry is what is recorded of one request: its access-log line
// and its metrics.
type accessEntry struct {
	reqID, listener, method, host, target string
	status                                int
	route, upstream                       string
	cacheLabel                            string // the metrics' cache label
	cache                                 string // the log's: the Cache-Status member
	bytes                                 int
	d                                     time.Duration
	upstreamMs                            float64
	traceparent, remote                   string
	filter                                string // the filter that answered, if one did
	upErr                                 string // how the upstream exchange failed, if it did
	consumer                              string // who a filter authenticated the caller as
	tries                                 int    // upstream tries; logged when more than one
	decision                              string // retried, breaker_open, shadowed, ejected (retry.go)

	// For the request's timeline (timeline.go): its start and phases, and
	// the fast path's request id and traceparent as read (reqID and
	// traceparent are set only for the access log there).
	start       time.Time
	phases      timeline.Phases
	reqIDb, tpb []byte
	tracestate  string
	spanIDs     spanIDs
}

// record records a request's metrics and access-log line. Both entry
// paths end here: a fresh hit served by the fast path and one served by
// net/http are recorded by the same code.
func (p *Proxy) record(a *accessEntry) {
	p.m.observe(a.listener, a.route, a.cacheLabel, a.status, a.d)
	defer p.recordTimeline(a) // after the log line, which tests wait for
	if p.opts.AccessLog == nil {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", a.reqID),
		slog.String("listener", a.listener),
		slog.String("method", a.method),
		slog.String("host", a.host),
		slog.String("target", a.target),
		slog.Int("status", a.status),
		slog.String("route", a.route),
		slog.String("upstream", a.upstream),
		slog.String("cache", a.cache),
		slog.Int("bytes", a.bytes),
		slog.Float64("duration_ms", float64(a.d.Microseconds())/1000),
		slog.Float64("upstream_ms", a.upstreamMs),
		slog.String("traceparent", a.traceparent),
		slog.String("remote", a.remote),
		{}, {}, {}, {}, // filter, consumer, tries, decision: only when they say something
	}
	n := len(attrs) - 4
	if a.filter != "" { // only when a filter answered
		attrs[n] = slog.String("filter", a.filter)
		n++
	}
	if a.consumer != "" { // only when a filter authenticated the caller
		attrs[n] = slog.String("consumer", a.consumer)
		n++
	}
	if a.tries > 1 { // the upstream was tried more than once
		attrs[n] = slog.Int("tries", a.tries)
		n++
	}
	if a.decision != "" { // retried, breaker_open, shadowed, ejected
		attrs[n] = slog.String("decision", a.decision)
		n++
	}
	p.opts.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:n]...)
}

// hopHeaders are removed before a response is stored (ReverseProxy has
// already removed them from what it forwards).
var storeStripped = []string{"Age", "Cache-Status", "X-Request-Id", "Connection", "Keep-Alive",
	"Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Te", "Set-Cookie", "Set-Cookie2"}

func isUnsafe(method string) bool {
	switch strings.ToUpper(method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
