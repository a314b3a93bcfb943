package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/balance"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// mirror is a compiled routes[].mirror: shadow traffic to a second
// cluster. Whether a request is copied is decided on its goroutine, and
// the copy's head is written out there (the request's memory is the
// connection's again once its handler returns); the copy is sent once the
// primary's response has been written to the app, from a goroutine of its
// own. Nothing the shadow does reaches the request: its response is read
// and dropped by its framing, never stored, and a slow or dead shadow only
// holds one of max_concurrent slots.
type mirror struct {
	c       *cluster
	per1e6  uint64 // requests copied per million
	slots   chan struct{}
	timeout time.Duration
	copies  sync.Pool // *shadowCopy
}

func newMirror(c *cluster, m *config.Mirror) *mirror {
	return &mirror{c: c, per1e6: uint64(m.Percent * 1e4), slots: make(chan struct{}, max(m.MaxConcurrent, 1)),
		timeout: m.Timeout}
}

// shadowDrainLimit bounds what is read of a shadow's response body, to
// reuse its connection; a longer body closes the connection instead.
const shadowDrainLimit = 64 << 10

// shadowSkip are the fields a copy leaves out besides those h1.AppendHead
// does: the hop-by-hop ones (removeHopByHop's).
var shadowSkip = respHopByHop

// shadowCopy is one copy in flight, pooled per mirror.
type shadowCopy struct {
	p      *Proxy
	m      *mirror
	ep     *endpoint
	method string
	head   []byte        // the request head, for h1.Transport.Discard
	req    *http.Request // instead, for a cluster on another client
	run    func()        // send, made once per pooled copy
}

// shadow decides whether r, x's request, is copied to the route's mirror
// cluster (the dice, a request without a body, a free slot), and if so
// prepares the copy and arranges for it to be sent when x's request ends:
// after its response was written (the fast path flushes it before then),
// so that the copy never delays the primary's head or body.
func (p *Proxy) shadow(x *exchange, r *http.Request) {
	m := x.route.mirror
	if m.per1e6 < 1_000_000 && rand.Uint64N(1_000_000) >= m.per1e6 {
		return
	}
	cl := m.c.name
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || (r.Body != nil && r.Body != http.NoBody) {
		p.m.res.mirrorInc(cl, "skipped_body")
		return
	}
	select {
	case m.slots <- struct{}{}:
	default:
		p.m.res.mirrorInc(cl, "dropped")
		return
	}
	sc, _ := m.copies.Get().(*shadowCopy)
	if sc == nil {
		sc = &shadowCopy{p: p, m: m}
		sc.run = sc.send
	}
	sc.p, sc.ep, sc.method = p, m.c.pickShadow(r), r.Method
	host := shadowHost(x.host)
	if _, ok := m.c.transport.(*h1.Transport); ok {
		var valid bool
		sc.head, valid = h1.AppendHead(sc.head[:0], r.Method, r.URL.EscapedPath(), r.URL.RawQuery, host, r.Header, shadowSkip)
		if !valid { // a field a filter set that cannot be sent as is
			sc.p.log.Debug("mirror: copy not sent", "cluster", cl, "err", errShadowHead)
			sc.done("failed", 0, nil, false)
			return
		}
	} else {
		sc.req = sc.request(r, host)
	}
	x.decisions |= decShadowed
	// x.ctx, not r's context: a route timeout's context ends before the
	// response is written. The fast path's ends after it was flushed (its
	// one end watcher is free again, h1's connection having let it go with
	// the primary's body, and costs no allocation); net/http's when the
	// handler returns, just before the server flushes the response on the
	// same goroutine.
	if _, ok := x.ctx.Context.(*fastpath.RequestCtx); ok {
		if !x.ctx.WatchEnd(sc.run) {
			x.ctx.AfterFunc(sc.run)
		}
	} else if x.ctx.Context.Done() != nil {
		x.ctx.AfterFunc(sc.run)
	} else {
		go sc.run()
	}
}

// errShadowHead: the copy's head could not be written out as is.
var errShadowHead = errors.New("proxy: mirror: request head not sendable as is")

// request is the copy as an http.Request, for a mirror cluster whose
// client is not h1's (client: std, h2).
func (sc *shadowCopy) request(r *http.Request, host string) *http.Request {
	u := *sc.ep.url
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req := &http.Request{Method: r.Method, URL: &u, Header: r.Header.Clone(), Host: host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	removeHopByHop(req.Header)
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // as the primary: none, not Go's
	}
	return req
}

// send sends the copy and drops the answer, on the copy's goroutine.
func (sc *shadowCopy) send() {
	m := sc.m
	deadline := time.Now().Add(m.timeout)
	if req := sc.req; req != nil {
		ctx, cancel := context.WithDeadline(sc.p.bgCtx, deadline)
		defer cancel()
		res, err := m.c.transport.RoundTrip(req.WithContext(ctx))
		if err != nil {
			sc.done("failed", 0, err, true)
			return
		}
		io.CopyN(io.Discard, res.Body, shadowDrainLimit)
		res.Body.Close()
		sc.done("sent", res.StatusCode, nil, true)
		return
	}
	status, err := m.c.transport.(*h1.Transport).Discard(sc.ep.url, sc.method, sc.head, deadline, shadowDrainLimit)
	if err != nil {
		sc.done("failed", 0, err, true)
		return
	}
	sc.done("sent", status, nil, true)
}

// done reports the copy's outcome to the metrics and, if judge is set,
// to the mirror cluster's outlier detection (as observeUpstream does for a
// try), frees its slot and pools it.
func (sc *shadowCopy) done(outcome string, status int, err error, judge bool) {
	m, ep := sc.m, sc.ep
	lb := m.c.lb
	if lb.policy == balance.LeastRequest {
		ep.host.Release()
	}
	if judge && lb.od != nil {
		oc := balance.GatewayFailure // no app to leave: every failure is the shadow's
		if err == nil {
			oc = outcome5xx(status)
		}
		lb.od.Observe(ep.host, oc)
	}
	sc.p.m.res.mirrorInc(m.c.name, outcome)
	sc.ep, sc.req = nil, nil
	<-m.slots
	if cap(sc.head) <= 16<<10 {
		m.copies.Put(sc)
	}
}

// pickShadow is pick for a copy: the endpoint for r, with no exchange of
// its own (done reports its outcome).
func (c *cluster) pickShadow(r *http.Request) *endpoint {
	key, ok := uint64(0), false
	if c.lb.policy == balance.Maglev || c.lb.policy == balance.RingHash {
		key, ok = c.lb.hash.of(r)
	}
	return &c.endpoints[c.lb.bal.Pick(key, ok)]
}

// shadowHost appends "-shadow" to a host, before its port (Envoy's
// convention, so the shadow can tell a copy from live traffic).
func shadowHost(hostport string) string {
	if strings.IndexByte(hostport, '[') < 0 { // the common case, in one allocation
		i := strings.LastIndexByte(hostport, ':')
		if i < 0 || strings.IndexByte(hostport[:i], ':') >= 0 {
			return hostport + "-shadow" // no port, or not host:port
		}
		return hostport[:i] + "-shadow" + hostport[i:]
	}
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		return net.JoinHostPort(h+"-shadow", port)
	}
	return hostport + "-shadow"
}
