package proxy

import (
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
)

// The request rings keep the last RecentRequests requests and, apart, the
// last SlowRequests that took tracing.slow_threshold (default
// SlowRequestThreshold) or longer, each with its timeline of phases, so
// that an operator can see why one request was slow without a tracing
// backend (GET /requests on the admin endpoint, `zerohop log`). Recording
// copies a fixed-size entry into a shard of a ring (timeline.go,
// proxy/internal/timeline): no allocation, one uncontended lock.
const (
	RecentRequests       = recentRequests
	SlowRequests         = slowRequests
	SlowRequestThreshold = config.DefaultSlowThreshold
)

// RequestRecord is one request as the rings keep it.
type RequestRecord = timeline.Record

// PhaseRecord is one phase of a RequestRecord: filters, cache, coalesce,
// connect, upstream, transfer or store, in milliseconds from the
// request's start.
type PhaseRecord = timeline.PhaseRecord

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

// Requests returns the kept requests that pass f, newest first.
func (p *Proxy) Requests(f RequestFilter) []RequestRecord {
	r := p.rings.recent
	if f.Slow {
		r = p.rings.slow
	}
	if r == nil {
		return nil
	}
	q := timeline.Query{Route: f.Route, Status: f.Status, Cache: f.Cache, MinDuration: f.MinDuration, Limit: f.Limit}
	if f.StatusClass != 0 {
		q.Status = f.StatusClass
	}
	ents := r.Select(q)
	if f.Status != 0 && f.StatusClass != 0 { // both: the exact status, within the class
		n := 0
		for _, e := range ents {
			if int(e.Status) == f.Status {
				ents[n] = e
				n++
			}
		}
		ents = ents[:n]
	}
	out := make([]RequestRecord, len(ents))
	for i := range ents {
		out[i] = ents[i].Record()
	}
	return out
}

// SlowThreshold is how long a request must take to be kept in the slow
// ring (tracing.slow_threshold).
func (p *Proxy) SlowThreshold() time.Duration {
	return p.st.Load().cfg.Tracing.SlowThresholdOrDefault()
}
