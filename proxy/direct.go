package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/zerohop/zerohop/proxy/internal/field"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// The direct forwarder sends the common request (no body, no protocol
// upgrade) to an h1 pool and copies the answer back itself, doing what
// httputil.ReverseProxy.ServeHTTP does for such a request with the same
// hooks (rewrite, modifyResponse, errorHandler), step for step, but
// without the per-request machinery ReverseProxy needs for the general
// case: a deep request clone, a client trace and its context, a
// media-type parse for the flush decision, a copy of every header value.
// That is a third of the allocations of a miss, on the path whose latency
// the sidecar adds to every uncached request. Everything else (bodies,
// Upgrade, clusters on net/http's client, background refreshes) goes
// through ReverseProxy. TestDirectMatchesReverseProxy holds the two to the
// same answers.

// serveUpstream forwards r for x and copies the answer to w.
func (p *Proxy) serveUpstream(w http.ResponseWriter, r *http.Request, x *exchange) {
	if c := x.cluster; c != nil {
		// Breakers and mirroring (breaker.go, mirror.go): once per
		// request, whichever forwarder sends it.
		if !c.lim.admit() {
			p.breakerOpen(w, x, limitRequests)
			return
		}
		defer c.lim.done()
		if x.route != nil && x.route.mirror != nil && !x.refresh {
			// After the primary's exchange: the copy never competes with it.
			defer p.shadow(x, r)
		}
	}
	if t, ok := p.clientFor(x).(*h1.Transport); ok && !p.noDirect.Load() && directEligible(r) {
		p.forwardDirect(w, r, x, t)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// clientFor is the pool x's request goes through: its cluster's, or the
// egress pool for a forward-mode request without a route (or no x).
func (p *Proxy) clientFor(x *exchange) http.RoundTripper {
	if x != nil && x.cluster != nil {
		return x.cluster.transport
	}
	if x != nil && x.guard != nil {
		return x.guard.transport
	}
	return p.egress
}

// directEligible reports whether the direct forwarder takes r: no body
// and no protocol upgrade.
func directEligible(r *http.Request) bool {
	return r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		(r.Body == nil || r.Body == http.NoBody) &&
		!httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade")
}

// outbound is an upstream request and its URL, allocated together.
type outbound struct {
	req http.Request
	url url.URL
}

// forwardDirect is ReverseProxy.ServeHTTP (Rewrite mode, FlushInterval 0)
// for a request directEligible accepts, sent through t.
func (p *Proxy) forwardDirect(w http.ResponseWriter, r *http.Request, x *exchange, t *h1.Transport) {
	o := &x.out
	if o.req.Method != "" { // a second forward of x: keep the first's
		o = new(outbound)
	}
	*o = outbound{req: *r, url: *r.URL}
	out := &o.req
	out.URL = &o.url
	out.Body, out.ContentLength, out.Close = nil, 0, false
	out.Header = cloneForUpstream(r.Header, x.upHdr)
	x.upHdr = nil // a second forward of x makes its own
	removeHopByHop(out.Header)
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		// Tell upstreams that care that trailers are supported (Go issue 21096).
		out.Header["Te"] = []string{"trailers"}
	}
	// Rewrite mode: the app's forwarding fields are replaced, not trusted.
	for _, f := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(out.Header, f)
	}
	out.URL.RawQuery = cleanQueryParams(out.URL.RawQuery)
	pr := httputil.ProxyRequest{In: r, Out: out}
	p.rewrite(&pr)
	out = pr.Out
	if _, ok := out.Header["User-Agent"]; !ok {
		// No User-Agent from the app: send none, not Go's default.
		out.Header["User-Agent"] = []string{""}
	}

	x.interimW = w
	res, err := p.send(x, out, t) // t.RoundTripInterim, with retries (retry.go)
	x.interimW = nil
	if err != nil {
		p.errorHandler(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Nothing was asked to switch to (directEligible). ReverseProxy
		// would tunnel a 101 that names no protocol; an upstream
		// switching protocols unasked is broken, and gets a 502.
		p.modifyResponse(res)
		res.Body.Close()
		p.errorHandler(w, out, fmt.Errorf("backend tried to switch protocol %q when none was requested", upgradeType(res.Header)))
		return
	}
	removeHopByHop(res.Header)
	if err := p.modifyResponse(res); err != nil {
		res.Body.Close()
		p.errorHandler(w, out, err)
		return
	}
	dst := w.Header()
	for k, vv := range res.Header {
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			// Shared, not copied: res is done with once its body is read.
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if err := p.copyBody(w, res.Body, flushesEachWrite(res)); err != nil {
		res.Body.Close()
		if r.Context().Value(http.ServerContextKey) != nil {
			// All that can be done mid-stream: abort the response, so
			// the app sees a truncated body as one (Go issue 23643).
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // now, to populate res.Trailer
	if len(res.Trailer) > 0 {
		// Force chunking, so the trailers can follow the body.
		http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			for _, v := range vv {
				dst.Add(k, v)
			}
		}
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}

// cloneForUpstream is http.Header.Clone with room for the fields the
// proxy adds (X-Forwarded-*, Forwarded, Via and, when missing,
// User-Agent; X-Request-Id is already in), so that adding them does not
// grow the map: growing a map past eight fields costs three allocations.
// One slot is spare: BenchmarkMiss shows the map growing without it. into,
// if not nil, is an empty map to clone into instead.
func cloneForUpstream(h http.Header, into http.Header) http.Header {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	room := len(h) + 6
	if _, ok := h["User-Agent"]; !ok {
		room++
	}
	out := into
	if out == nil {
		out = make(http.Header, room)
	}
	vals := make([]string, n)
	for k, vv := range h {
		if vv == nil {
			out[k] = nil
			continue
		}
		m := copy(vals, vv)
		out[k] = vals[:m:m]
		vals = vals[m:]
	}
	return out
}

// Got1xx forwards an interim response (103 Early Hints, ...) to the app,
// as ReverseProxy's client trace does.
func (x *exchange) Got1xx(code int, header textproto.MIMEHeader) error {
	w := x.interimW
	if w == nil {
		return nil
	}
	h := w.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	w.WriteHeader(code)
	clear(h) // a 1xx does not clear the map by itself
	return nil
}

// copyBody copies an upstream body to the app through a pooled buffer.
// What was read goes to the app before the next read, which may wait for
// the upstream: a response is never held back while the upstream is slow
// or stalls (only the last write, which finish or flushIfComplete sends,
// is not flushed here, unless flush is set). Errors are logged as
// ReverseProxy logs them.
func (p *Proxy) copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	pool := p.rp.BufferPool
	buf := pool.Get()
	defer pool.Put(buf)
	f, _ := w.(http.Flusher)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if f != nil && (flush || rerr == nil) {
				f.Flush() // as ReverseProxy's maxLatencyWriter: errors show on the next write
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if !errors.Is(rerr, context.Canceled) {
				p.rp.ErrorLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
			}
			return rerr
		}
	}
}

// flushesEachWrite is ReverseProxy.flushInterval's -1: server-sent events
// and bodies of unknown length go to the app as they arrive.
func flushesEachWrite(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// upgradeType is the protocol an Upgrade exchange switches to, if any.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// cleanQueryParams drops query parameters ReverseProxy would not forward
// (a ';' separator or a bad escape: Go issue 25192), as it does.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !field.IsHex(s[i+1]) || !field.IsHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}
