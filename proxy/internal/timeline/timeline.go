// Package timeline keeps the phases of recent requests in bounded rings
// of fixed-size entries, so that recording one allocates nothing and
// costs a copy of a few hundred bytes under an uncontended lock.
package timeline

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is one step of a request's journey through the sidecar.
type Phase uint8

// The phases, in the order a miss goes through them.
const (
	Filters  Phase = iota // the filters' request phase
	Cache                 // the cache lookup and the decision on what it found
	Coalesce              // waiting on another request's fetch of the same URL
	Connect               // getting an upstream connection (idle or dialled)
	Upstream              // request sent until the response head arrived: time to first byte
	Transfer              // the response body copied to the app: from upstream, or written from the cache
	Store                 // writing the response into the cache
	NumPhases
)

var phaseNames = [NumPhases]string{"filters", "cache", "coalesce", "connect", "upstream", "transfer", "store"}

func (p Phase) String() string {
	if p < NumPhases {
		return phaseNames[p]
	}
	return "?"
}

// Span is one phase's start and end, as offsets from the request's start.
// A zero End means the phase did not happen.
type Span struct{ Start, End time.Duration }

// Phases are a request's phases, indexed by Phase.
type Phases [NumPhases]Span

// LastEnd is the end of the latest phase marked, 0 if none.
func (ps *Phases) LastEnd() time.Duration {
	var end time.Duration
	for _, s := range ps {
		end = max(end, s.End)
	}
	return end
}

// Mark records phase p from start to end, both offsets from the request's
// start. A zero-length phase is stored as 1ns long, so that it shows.
func (ps *Phases) Mark(p Phase, start, end time.Duration) {
	if end <= start {
		end = start + 1
	}
	ps[p] = Span{start, end}
}

// Entry is one request, with its strings copied into fixed arrays (cut to
// their size) so that an Entry can be stored without allocating.
type Entry struct {
	seq      uint64 // the order of recording, set by Ring.Add
	Start    int64  // Unix nanoseconds
	Duration time.Duration
	Status   int32
	Bytes    int64
	Phases   Phases
	// UpstreamMs is the upstream exchange's time, 0 when none.
	UpstreamMs float64

	method   str8
	cache    str16
	listener str32
	route    str48
	upstream str64
	host     str64
	target   str128
	reqID    str64
	traceID  str32
	filter   str64
	err      str64
	decision str48
}

type (
	str8 struct {
		n uint8
		b [8]byte
	}
	str16 struct {
		n uint8
		b [16]byte
	}
	str32 struct {
		n uint8
		b [32]byte
	}
	str48 struct {
		n uint8
		b [48]byte
	}
	str64 struct {
		n uint8
		b [64]byte
	}
	str128 struct {
		n uint8
		b [128]byte
	}
)

// SetStrings copies the entry's strings.
func (e *Entry) SetStrings(method, cache, listener, route, upstream, host, target string) {
	e.method.n = uint8(copy(e.method.b[:], method))
	e.cache.n = uint8(copy(e.cache.b[:], cache))
	e.listener.n = uint8(copy(e.listener.b[:], listener))
	e.route.n = uint8(copy(e.route.b[:], route))
	e.upstream.n = uint8(copy(e.upstream.b[:], upstream))
	e.host.n = uint8(copy(e.host.b[:], host))
	e.target.n = uint8(copy(e.target.b[:], target))
}

// SetError copies how the upstream exchange failed, if it did.
func (e *Entry) SetError(s string) { e.err.n = uint8(copy(e.err.b[:], s)) }

// SetFilter copies the note of the filter that answered, if any.
func (e *Entry) SetFilter(f string) { e.filter.n = uint8(copy(e.filter.b[:], f)) }

// SetDecision copies what the request met: retried, breaker_open,
// shadowed, ejected, comma-separated (the access log's decision).
func (e *Entry) SetDecision(d string) { e.decision.n = uint8(copy(e.decision.b[:], d)) }

// SetRequestID copies the request id (string or bytes, whichever is set).
func (e *Entry) SetRequestID(s string, b []byte) {
	if s != "" {
		e.reqID.n = uint8(copy(e.reqID.b[:], s))
	} else {
		e.reqID.n = uint8(copy(e.reqID.b[:], b))
	}
}

// SetTraceID copies the trace id of a W3C traceparent
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), if tp is one.
func (e *Entry) SetTraceID(tp string, tpb []byte) {
	if tp == "" {
		tp = unsafeString(tpb)
	}
	if len(tp) >= 55 && tp[2] == '-' && tp[35] == '-' {
		e.traceID.n = uint8(copy(e.traceID.b[:], tp[3:35]))
	}
}

func (e *Entry) Route() string { return string(e.route.b[:e.route.n]) }
func (e *Entry) Cache() string { return string(e.cache.b[:e.cache.n]) }

func (e *Entry) routeIs(s string) bool { return string(e.route.b[:e.route.n]) == s }
func (e *Entry) cacheIs(s string) bool { return string(e.cache.b[:e.cache.n]) == s }

// Ring is a bounded ring of entries, split into shards with a lock each so
// that concurrent requests rarely wait on one another. The zero Ring
// holds nothing; use NewRing.
type Ring struct {
	next   atomic.Uint64
	shards []shard
}

type shard struct {
	mu   sync.Mutex
	n    uint64 // entries written to this shard, ever
	ents []Entry
	_    [24]byte // keeps neighbouring shards' locks off one cache line
}

// shardCount is small: the sidecar runs on few cores.
const shardCount = 4

// NewRing returns a ring keeping the last size entries (rounded up to a
// multiple of the shard count).
func NewRing(size int) *Ring {
	per := (size + shardCount - 1) / shardCount
	if per < 1 {
		per = 1
	}
	r := &Ring{shards: make([]shard, shardCount)}
	for i := range r.shards {
		r.shards[i].ents = make([]Entry, per)
	}
	return r
}

// Add copies e into the ring, over the oldest entry of its shard.
func (r *Ring) Add(e *Entry) {
	seq := r.next.Add(1)
	s := &r.shards[seq%shardCount]
	s.mu.Lock()
	s.ents[s.n%uint64(len(s.ents))] = *e
	s.ents[s.n%uint64(len(s.ents))].seq = seq
	s.n++
	s.mu.Unlock()
}

// Cap is how many entries the ring keeps.
func (r *Ring) Cap() int { return len(r.shards) * len(r.shards[0].ents) }

// Query selects entries. Zero fields select everything.
type Query struct {
	Route       string
	Status      int // an exact status, or 1..5 for a class (5 = 5xx)
	Cache       string
	MinDuration time.Duration
	Limit       int // the newest Limit; 0 = all
}

func (q *Query) match(e *Entry) bool {
	switch {
	case q.Route != "" && !e.routeIs(q.Route),
		q.Cache != "" && !e.cacheIs(q.Cache),
		e.Duration < q.MinDuration:
		return false
	case q.Status >= 1 && q.Status <= 5:
		return int(e.Status)/100 == q.Status
	case q.Status != 0:
		return int(e.Status) == q.Status
	}
	return true
}

// Select returns copies of the entries q selects, the last recorded
// first.
func (r *Ring) Select(q Query) []Entry {
	var out []Entry
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n := min(s.n, uint64(len(s.ents)))
		for j := range n {
			if e := &s.ents[j]; q.match(e) {
				out = append(out, *e)
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.seq > b.seq:
			return -1
		case a.seq < b.seq:
			return 1
		}
		return 0
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// Record is an entry as the admin endpoint shows it.
type Record struct {
	Time       time.Time     `json:"time"` // when the request arrived
	RequestID  string        `json:"request_id"`
	TraceID    string        `json:"trace_id,omitempty"`
	Listener   string        `json:"listener"`
	Method     string        `json:"method"`
	Host       string        `json:"host"`
	Target     string        `json:"target"`
	Route      string        `json:"route,omitempty"`
	Upstream   string        `json:"upstream,omitempty"`
	Status     int           `json:"status"`
	Cache      string        `json:"cache"`
	Filter     string        `json:"filter,omitempty"`   // the filter that answered, and why
	Error      string        `json:"error,omitempty"`    // how the upstream exchange failed: "connect: connection refused", "upstream: timed out"
	Decision   string        `json:"decision,omitempty"` // retried, breaker_open, shadowed, ejected
	Bytes      int64         `json:"bytes"`
	Duration   time.Duration `json:"-"`
	DurationMs float64       `json:"duration_ms"`
	UpstreamMs float64       `json:"upstream_ms"` // the upstream exchange, 0 when none
	Phases     []PhaseRecord `json:"phases"`
}

// PhaseRecord is one phase of a Record, in milliseconds from the request's
// start.
type PhaseRecord struct {
	Name       string  `json:"name"`
	StartMs    float64 `json:"start_ms"`
	DurationMs float64 `json:"duration_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Record returns e for display.
func (e *Entry) Record() Record {
	r := Record{
		Time:       time.Unix(0, e.Start).UTC(),
		RequestID:  string(e.reqID.b[:e.reqID.n]),
		TraceID:    string(e.traceID.b[:e.traceID.n]),
		Listener:   string(e.listener.b[:e.listener.n]),
		Method:     string(e.method.b[:e.method.n]),
		Host:       string(e.host.b[:e.host.n]),
		Target:     string(e.target.b[:e.target.n]),
		Route:      e.Route(),
		Upstream:   string(e.upstream.b[:e.upstream.n]),
		Status:     int(e.Status),
		Cache:      e.Cache(),
		Filter:     string(e.filter.b[:e.filter.n]),
		Error:      string(e.err.b[:e.err.n]),
		Decision:   string(e.decision.b[:e.decision.n]),
		Bytes:      e.Bytes,
		Duration:   e.Duration,
		DurationMs: ms(e.Duration),
		UpstreamMs: e.UpstreamMs,
		Phases:     []PhaseRecord{},
	}
	for p, s := range e.Phases {
		if s.End == 0 {
			continue
		}
		r.Phases = append(r.Phases, PhaseRecord{Name: Phase(p).String(), StartMs: ms(s.Start), DurationMs: ms(s.End - s.Start)})
	}
	return r
}

// ParseStatus reads a status filter: "503", or "5xx" for a class.
func ParseStatus(s string) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		return int(s[0] - '0'), true
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) == 3 && n >= 100 && n <= 599
}
