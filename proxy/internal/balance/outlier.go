package balance

import (
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what became of one upstream try, for outlier detection.
type Outcome uint8

// Outcomes.
const (
	// Success: a response with a status below 500.
	Success Outcome = iota
	// Status5xx: a 500 or other 5xx response that is not a gateway
	// failure.
	Status5xx
	// GatewayFailure: a 502, 503 or 504 response, or no response at all
	// (connect error, reset, timeout). It counts as a 5xx too.
	GatewayFailure
	// Local: the try ended for a reason that says nothing about the
	// endpoint (the client went away, its body was too large).
	Local
)

// OutlierOptions configure passive outlier detection (Envoy's
// outlier_detection, consecutive counters only).
type OutlierOptions struct {
	// Consecutive5xx ejects after this many 5xx (gateway failures
	// included) in a row. 0: never.
	Consecutive5xx int
	// ConsecutiveGatewayFailure ejects after this many gateway failures in
	// a row. 0: never.
	ConsecutiveGatewayFailure int
	// BaseEjectionTime is the first ejection's length; the n-th lasts n
	// times as long, up to MaxEjectionTime. Must be > 0.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps an ejection. 0: no cap.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent caps the share of hosts ejected at once; one host
	// may always be ejected (as in Envoy).
	MaxEjectionPercent int
	// OnEject, if set, is called (outside locks) for each ejection.
	OnEject func(h *Host, d time.Duration)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// outlierState is a host's outlier detection counters.
type outlierState struct {
	cons5xx, consGw atomic.Int32
	mu              sync.Mutex
	ejections       int       // ejections so far, decayed
	unejected       time.Time // when the last ejection ended
	timer           *time.Timer
}

// Ejections returns how many times h was ejected (decayed by healthy
// time; see Detector).
func (h *Host) Ejections() int {
	h.od.mu.Lock()
	defer h.od.mu.Unlock()
	return h.od.ejections
}

// Detector ejects hosts of one Balancer whose tries fail in a row.
type Detector struct {
	o OutlierOptions
	b *Balancer
}

// NewDetector returns outlier detection for b's hosts.
func NewDetector(b *Balancer, o OutlierOptions) *Detector {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Detector{o: o, b: b}
}

// Observe records the outcome of one try at h, and reports whether it
// ejected h (for the try's access-log line). It is cheap on success (two
// loads) and takes a lock only to eject.
func (d *Detector) Observe(h *Host, oc Outcome) (ejected bool) {
	switch oc {
	case Success:
		if h.od.cons5xx.Load() != 0 {
			h.od.cons5xx.Store(0)
		}
		if h.od.consGw.Load() != 0 {
			h.od.consGw.Store(0)
		}
		return false
	case Local:
		return false
	}
	if h.ejected.Load() {
		return false // tries in panic mode say nothing new
	}
	n5 := h.od.cons5xx.Add(1)
	gw := int32(0)
	if oc == GatewayFailure {
		gw = h.od.consGw.Add(1)
	} else if h.od.consGw.Load() != 0 {
		h.od.consGw.Store(0)
	}
	if c := d.o.Consecutive5xx; c > 0 && int(n5) >= c {
		return d.eject(h)
	} else if c := d.o.ConsecutiveGatewayFailure; c > 0 && int(gw) >= c {
		return d.eject(h)
	}
	return false
}

// eject takes h out of rotation for base × ejections (capped), unless
// that would eject more than MaxEjectionPercent of the hosts. It reports
// whether it did (false also when another try ejected h first).
func (d *Detector) eject(h *Host) bool {
	ejected := 0
	for _, o := range d.b.hosts {
		if o.ejected.Load() {
			ejected++
		}
	}
	if ejected > 0 && (ejected+1)*100 > d.o.MaxEjectionPercent*len(d.b.hosts) {
		return false
	}
	s := &h.od
	s.mu.Lock()
	if h.ejected.Swap(true) {
		s.mu.Unlock()
		return false
	}
	now := d.o.Now()
	if base := d.o.BaseEjectionTime; s.ejections > 0 && !s.unejected.IsZero() {
		// One ejection forgiven per base ejection time the host stayed
		// in rotation since the last one (Envoy decrements its multiplier
		// each interval a host is healthy).
		s.ejections -= min(s.ejections, int(now.Sub(s.unejected)/base))
	}
	s.ejections++
	dur := time.Duration(s.ejections) * d.o.BaseEjectionTime
	if m := d.o.MaxEjectionTime; m > 0 && dur > m {
		dur = m
	}
	s.cons5xx.Store(0)
	s.consGw.Store(0)
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(dur, func() {
		s.mu.Lock()
		s.unejected = d.o.Now()
		h.ejected.Store(false)
		s.mu.Unlock()
		h.changed()
	})
	s.mu.Unlock()
	h.changed()
	if d.o.OnEject != nil {
		d.o.OnEject(h, dur)
	}
	return true
}
