// Request timelines: each request's phases, stamped as monotonic offsets
// from its start on the exchange, recorded by Proxy.record into a ring of
// recent requests and one of slow requests (internal/timeline), and read
// by the admin endpoint GET /requests (requestring.go) and `zerohop log`.

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"syscall"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/timeline"
)

// Ring sizes: what an operator looking at "why was that slow" needs,
// bounded (a recent entry is about 600 bytes).
const (
	recentRequests = 1024
	slowRequests   = 256
)

// requestRings are the proxy's two rings.
type requestRings struct {
	recent, slow *timeline.Ring
}

func newRequestRings() requestRings {
	return requestRings{recent: timeline.NewRing(recentRequests), slow: timeline.NewRing(slowRequests)}
}

// since is the offset of now from x's start.
func (x *exchange) since() time.Duration { return x.p.opts.Now().Sub(x.start) }

// markFrom records phase ph of x from offset start until now.
func (x *exchange) markFrom(ph timeline.Phase, start time.Duration) {
	x.tl.Mark(ph, start, x.since())
}

// GotConn is told by the h1 transport when x's upstream request has a
// connection: the end of the connect phase.
func (x *exchange) GotConn() {
	if x.start.IsZero() {
		return
	}
	x.connAt = x.since()
}

// upstreamPhases fills in the phases after the cache decision until end
// (an offset from x.start): for an upstream exchange, connect, the wait
// for the response head and the transfer of the body, or, when it
// failed (noteUpstreamFailure), the phases it reached until the failure;
// for a response served from the cache, its transfer (the write).
func (x *exchange) upstreamPhases(end time.Duration) {
	if x.start.IsZero() {
		return
	}
	if x.reqTime.IsZero() {
		if x.status.Hit { // written from the cache
			x.tl.Mark(timeline.Transfer, x.tl.LastEnd(), end)
		}
		return
	}
	sent := x.reqTime.Sub(x.start)
	if x.respTime.IsZero() {
		if x.failAt == 0 {
			return
		}
		// Failed: connecting until the connection, or until the failure
		// if it never had one; then waiting for the head until the failure.
		if x.connAt > 0 && x.connAt >= sent && x.connAt <= x.failAt {
			x.tl.Mark(timeline.Connect, sent, x.connAt)
			x.tl.Mark(timeline.Upstream, x.connAt, x.failAt)
			x.upErr = "upstream: " + x.upErr
		} else {
			x.tl.Mark(timeline.Connect, sent, x.failAt)
			x.upErr = "connect: " + x.upErr
		}
		if x.status.Hit { // stale-if-error
			x.tl.Mark(timeline.Transfer, x.failAt, end)
		}
		return
	}
	head := x.respTime.Sub(x.start)
	if x.connAt > 0 && x.connAt >= sent && x.connAt <= head {
		x.tl.Mark(timeline.Connect, sent, x.connAt)
		sent = x.connAt
	}
	x.tl.Mark(timeline.Upstream, sent, head)
	x.tl.Mark(timeline.Transfer, head, end)
}

// noteUpstreamFailure records, for x's timeline, that its upstream
// exchange failed now with err (timedOut: its deadline ran out).
func (x *exchange) noteUpstreamFailure(err error, timedOut bool) {
	if x.start.IsZero() || x.failAt != 0 {
		return
	}
	x.failAt = max(x.since(), 1)
	var ne net.Error
	switch {
	case timedOut || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		x.upErr = "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		x.upErr = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		x.upErr = "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		x.upErr = "connection closed"
	default:
		x.upErr = err.Error() // cut to 64 bytes by the ring
	}
}

// traceConn sets tr, the client trace of x's upstream request, to tell x
// when the request has its connection (GotConn), for clusters whose client
// is net/http's (std, h2c); the h1 transport tells x itself
// (h1.ConnObserver). Requests not recorded get no hook (and no closure).
func (x *exchange) traceConn(tr *httptrace.ClientTrace) {
	if x == nil || x.start.IsZero() || x.refresh {
		return // not recorded
	}
	prev := tr.GotConn
	tr.GotConn = func(info httptrace.GotConnInfo) {
		x.GotConn()
		if prev != nil {
			prev(info)
		}
	}
}

// recordTimeline copies a's timeline into the rings (the slow one too when
// it took at least tracing.slow_threshold) and, with tracing on, exports
// it as spans. It allocates nothing unless spans are exported.
func (p *Proxy) recordTimeline(a *accessEntry) {
	if p.rings.recent == nil {
		return
	}
	var e timeline.Entry
	e.Start = a.start.UnixNano()
	e.Duration = a.d
	e.Status = int32(a.status)
	e.Bytes = int64(a.bytes)
	e.Phases = a.phases
	e.SetStrings(a.method, a.cacheLabel, a.listener, a.route, a.upstream, a.host, a.target)
	e.SetRequestID(a.reqID, a.reqIDb)
	e.SetTraceID(a.traceparent, a.tpb)
	e.SetFilter(a.filter)
	e.SetError(a.upErr)
	e.SetDecision(a.decision)
	e.UpstreamMs = a.upstreamMs
	p.rings.recent.Add(&e)
	if st := p.st.Load(); st != nil && a.d >= st.cfg.Tracing.SlowThresholdOrDefault() {
		p.rings.slow.Add(&e)
	}
	if t := p.tracer.Load(); t != nil {
		t.export(a)
	}
}
