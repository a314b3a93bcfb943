// Request timelines: each request's phases, stamped as monotonic offsets
// from its start on the exchange, recorded by Proxy.record into a ring of
// recent requests and one of slow requests (internal/timeline), and read
// by the admin endpoint GET /requests (requestring.go) and `zerohop log`.

package proxy

import (
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

// upstreamPhases fills in the phases an upstream exchange of x went
// through: connect, the wait for the response head, and the transfer of
// the body until end (an offset from x.start).
func (x *exchange) upstreamPhases(end time.Duration) {
	if x.reqTime.IsZero() || x.respTime.IsZero() || x.start.IsZero() {
		return
	}
	sent, head := x.reqTime.Sub(x.start), x.respTime.Sub(x.start)
	if x.connAt > 0 && x.connAt >= sent && x.connAt <= head {
		x.tl.Mark(timeline.Connect, sent, x.connAt)
		sent = x.connAt
	}
	x.tl.Mark(timeline.Upstream, sent, head)
	x.tl.Mark(timeline.Transfer, head, end)
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
