package zerohop

import (
	"sync/atomic"
	"time"
)

// clockResync is how often the clock re-reads the wall clock, so how long
// it may lag a step of the wall clock (settimeofday, an NTP step). Slewing
// moves the monotonic clock along with the wall clock and needs nothing.
const clockResync = 100 * time.Millisecond

// clock is the wall clock in unix ms for the freshness and writer heartbeat
// checks of a lookup, read with one clock read instead of two: time.Now
// reads both the wall and the monotonic clocks (about 40 ns on a VM, a
// fifth of a hit), time.Since only the monotonic one. The wall time is the
// monotonic time plus the offset between them, measured again every
// clockResync.
type clock struct {
	base   time.Time    // monotonic origin
	offset atomic.Int64 // wall clock (unix ns) minus monotonic ns since base
	resync atomic.Int64 // monotonic ns since base at which to measure it again
}

func (c *clock) init() {
	c.base = time.Now()
	c.sync()
}

// sync measures the offset again and returns the wall time in unix ms.
func (c *clock) sync() int64 {
	t := time.Now()
	mono := int64(t.Sub(c.base)) // monotonic: both carry a monotonic reading
	wall := t.UnixNano()
	c.offset.Store(wall - mono)
	c.resync.Store(mono + int64(clockResync))
	return wall / 1e6
}

// nowMs is the wall clock in unix ms, at most clockResync behind a step.
func (c *clock) nowMs() int64 {
	mono := int64(time.Since(c.base))
	if mono >= c.resync.Load() {
		return c.sync()
	}
	return (mono + c.offset.Load()) / 1e6
}
