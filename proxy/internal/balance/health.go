package balance

import "sync"

// healthState is a host's active health check counters.
type healthState struct {
	mu             sync.Mutex
	checked        bool // a check has finished since the host was made
	okRun, failRun int
}

// CheckResult records an active health check of h: after unhealthy
// failures in a row h is marked down, after healthy passes in a row up
// again. A host's first check decides at once (a new endpoint is not
// kept in rotation for several intervals if it is dead, nor out of it if
// it is fine). It reports whether h changed state.
func (h *Host) CheckResult(ok bool, healthy, unhealthy int) bool {
	s := &h.hc
	s.mu.Lock()
	first := !s.checked
	s.checked = true
	if ok {
		s.okRun++
		s.failRun = 0
	} else {
		s.failRun++
		s.okRun = 0
	}
	var down, set bool
	switch {
	case first:
		down, set = !ok, true
	case ok && h.down.Load() && s.okRun >= healthy:
		down, set = false, true
	case !ok && !h.down.Load() && s.failRun >= unhealthy:
		down, set = true, true
	}
	s.mu.Unlock()
	return set && h.SetDown(down)
}
