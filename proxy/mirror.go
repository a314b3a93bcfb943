package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/zerohop/zerohop/config"
)

// mirror is a compiled routes[].mirror: shadow traffic to a second
// cluster. A copy is made on the request's goroutine (a header clone) and
// sent from its own goroutine; nothing the shadow does reaches the
// request: its response is drained and dropped, never stored, and a slow
// or dead shadow only holds one of max_concurrent slots.
type mirror struct {
	c       *cluster
	per1e6  uint64 // requests copied per million
	slots   chan struct{}
	timeout time.Duration
}

func newMirror(c *cluster, m *config.Mirror) *mirror {
	return &mirror{c: c, per1e6: uint64(m.Percent * 1e4), slots: make(chan struct{}, max(m.MaxConcurrent, 1)),
		timeout: m.Timeout}
}

// shadowDrainLimit bounds what is read of a shadow's response body, to
// reuse its connection; a longer body closes the connection instead.
const shadowDrainLimit = 64 << 10

// shadow sends a copy of r, x's request, to the route's mirror cluster
// when the dice say so and a slot is free.
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
	x.decisions |= decShadowed
	ctx, cancel := context.WithTimeout(p.bgCtx, m.timeout)
	req := &http.Request{Method: r.Method, Header: r.Header.Clone(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	removeHopByHop(req.Header)
	req.Host = shadowHost(x.host)
	req = req.WithContext(ctx)
	// The copy's own exchange, for the mirror cluster's balancing and
	// outlier detection (balance.go): x's request memory is not the
	// copy's to keep, and x's endpoint is not the mirror's.
	y := &exchange{p: p, in: req, cluster: m.c}
	ep := m.c.pick(y)
	u := *ep.url
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req.URL = &u
	go func() {
		defer func() { <-m.slots }()
		defer cancel()
		res, err := m.c.transport.RoundTrip(req)
		if err != nil {
			y.observeUpstream(0, err)
			p.m.res.mirrorInc(cl, "failed")
			return
		}
		y.observeUpstream(res.StatusCode, nil)
		io.CopyN(io.Discard, res.Body, shadowDrainLimit)
		res.Body.Close()
		p.m.res.mirrorInc(cl, "sent")
	}()
}

// shadowHost appends "-shadow" to a host, before its port (Envoy's
// convention, so the shadow can tell a copy from live traffic).
func shadowHost(hostport string) string {
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		return net.JoinHostPort(h+"-shadow", port)
	}
	return hostport + "-shadow"
}
