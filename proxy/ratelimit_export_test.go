package proxy

import "time"

// SetLimitClock makes the rate limits of p's configuration read the clock
// now instead of the proxy's (before any request uses them).
func SetLimitClock(p *Proxy, now func() time.Time) {
	for _, l := range p.st.Load().limits {
		l.clock.Store(&limitClock{now: now, epoch: now()})
	}
}
