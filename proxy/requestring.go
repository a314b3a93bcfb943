package proxy

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The request ring keeps the last RecentRequests requests and, apart, the
// last SlowRequests that took SlowRequestThreshold or longer, so that an
// operator can see why one request was slow without a tracing backend
// (GET /requests on the admin endpoint, `zerohop log`). Recording copies a
// fixed-size record into a slot: no allocation, one uncontended lock.
const (
	RecentRequests       = 1024
	SlowRequests         = 256
	SlowRequestThreshold = 100 * time.Millisecond
	requestFieldMax      = 200 // bytes kept of a target, host or request id
	requestShortFieldMax = 64  // of a route, upstream, listener, cache status or filter
)

// RequestRecord is one request as the ring keeps it. Phases beyond the
// upstream exchange are not recorded yet.
type RequestRecord struct {
	Time       time.Time     `json:"time"` // when the response ended
	RequestID  string        `json:"request_id"`
	Listener   string        `json:"listener"`
	Method     string        `json:"method"`
	Host       string        `json:"host"`
	Target     string        `json:"target"` // truncated to 200 bytes
	Status     int           `json:"status"`
	Route      string        `json:"route"`
	Upstream   string        `json:"upstream,omitempty"`
	Cache      string        `json:"cache"` // "hit", a Cache-Status fwd value, or "none"
	Filter     string        `json:"filter,omitempty"`
	Bytes      int           `json:"bytes"`
	Duration   time.Duration `json:"-"`
	DurationMs float64       `json:"duration_ms"`
	UpstreamMs float64       `json:"upstream_ms"` // the upstream exchange, 0 when none
}

// longText and shortText hold a string copied into a slot: the request's
// strings may alias a connection buffer the fast path reuses.
type longText struct {
	b [requestFieldMax]byte
	n uint8
}

type shortText struct {
	b [requestShortFieldMax]byte
	n uint8
}

func (t *longText) set(v string)    { t.n = uint8(copy(t.b[:], v)) }
func (t *longText) String() string  { return string(t.b[:t.n]) }
func (t *shortText) set(v string)   { t.n = uint8(copy(t.b[:], v)) }
func (t *shortText) String() string { return string(t.b[:t.n]) }

type requestSlot struct {
	mu                                       sync.Mutex
	used                                     bool
	seq                                      uint64
	at                                       int64
	status, bytes                            int
	d                                        time.Duration
	upstreamMs                               float64
	method                                   shortText
	reqID, host, target                      longText
	listener, route, upstream, cache, filter shortText
}

type requestRing struct {
	next  atomic.Uint64
	slots []requestSlot
}

// requestRings are the recent and the slow rings.
type requestRings struct{ recent, slow requestRing }

func newRequestRings() *requestRings {
	return &requestRings{recent: requestRing{slots: make([]requestSlot, RecentRequests)},
		slow: requestRing{slots: make([]requestSlot, SlowRequests)}}
}

func (r *requestRing) add(a *accessEntry, now int64) {
	seq := r.next.Add(1)
	s := &r.slots[(seq-1)%uint64(len(r.slots))]
	s.mu.Lock()
	s.used, s.seq, s.at = true, seq, now
	s.status, s.bytes, s.d, s.upstreamMs = a.status, a.bytes, a.d, a.upstreamMs
	s.method.set(a.method)
	s.reqID.set(a.reqID)
	s.host.set(a.host)
	s.target.set(a.target)
	s.listener.set(a.listener)
	s.route.set(a.route)
	s.upstream.set(a.upstream)
	s.cache.set(a.cacheLabel)
	s.filter.set(a.filter)
	s.mu.Unlock()
}

func (rs *requestRings) add(a *accessEntry, now int64) {
	if rs == nil {
		return
	}
	rs.recent.add(a, now)
	if a.d >= SlowRequestThreshold {
		rs.slow.add(a, now)
	}
}

// RequestFilter selects records; zero fields select everything.
type RequestFilter struct {
	Route       string
	Status      int // exact status; StatusClass for a class
	StatusClass int // 2 for 2xx, 5 for 5xx, ...
	Cache       string
	MinDuration time.Duration
	Slow        bool // read the slow ring instead of the recent one
	Limit       int  // newest first; 0: all kept
}

func (f *RequestFilter) keep(s *requestSlot) bool {
	return (f.Route == "" || s.route.String() == f.Route) &&
		(f.Status == 0 || s.status == f.Status) &&
		(f.StatusClass == 0 || s.status/100 == f.StatusClass) &&
		(f.Cache == "" || s.cache.String() == f.Cache) &&
		s.d >= f.MinDuration
}

// Requests returns the kept requests that pass f, newest first.
func (p *Proxy) Requests(f RequestFilter) []RequestRecord {
	if p.reqs == nil {
		return nil
	}
	r := &p.reqs.recent
	if f.Slow {
		r = &p.reqs.slow
	}
	type rec struct {
		seq uint64
		RequestRecord
	}
	var out []rec
	for i := range r.slots {
		s := &r.slots[i]
		s.mu.Lock()
		if s.used && f.keep(s) {
			out = append(out, rec{s.seq, RequestRecord{
				Time: time.UnixMilli(s.at).UTC(), RequestID: s.reqID.String(), Listener: s.listener.String(),
				Method: s.method.String(), Host: s.host.String(), Target: s.target.String(), Status: s.status,
				Route: s.route.String(), Upstream: s.upstream.String(), Cache: s.cache.String(), Filter: s.filter.String(),
				Bytes: s.bytes, Duration: s.d, DurationMs: float64(s.d.Microseconds()) / 1000, UpstreamMs: s.upstreamMs,
			}})
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	res := make([]RequestRecord, len(out))
	for i := range out {
		res[i] = out[i].RequestRecord
	}
	return res
}
