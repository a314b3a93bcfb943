package bench

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// An op is one request of a scenario. worker identifies the calling
// goroutine, for per-worker state (a buffer, a connection).
type op func(worker int) error

// newHist covers 10ns to 60s at 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(10, 60e9, 3) }

// closedLoop runs op back to back on conns goroutines for d and returns
// the merged latency histogram (ns), the count of operations and errors.
func closedLoop(conns int, d time.Duration, f op) (*hdrhistogram.Histogram, int64, int64) {
	hists := make([]*hdrhistogram.Histogram, conns)
	var n, errs atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for w := 0; w < conns; w++ {
		hists[w] = newHist()
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			h := hists[w]
			var local, lerr int64
			for {
				t0 := time.Now()
				if t0.After(stop) {
					break
				}
				if err := f(w); err != nil {
					lerr++
				}
				h.RecordValue(int64(time.Since(t0)))
				local++
			}
			n.Add(local)
			errs.Add(lerr)
		}(w)
	}
	wg.Wait()
	all := newHist()
	for _, h := range hists {
		all.Merge(h)
	}
	return all, n.Load(), errs.Load()
}

// openLoop issues op at a fixed rate for d, from a pool of workers.
// Latency is measured from when each request was dispatched, not from when
// a worker got to it, so a server stall shows up in every request queued
// behind it (no coordinated omission). The dispatcher's own timer slop
// (Go timers wake up to ~1ms late) is not charged to the server: it is a
// property of the load generator, not of what it measures.
func openLoop(rate int, workers int, d time.Duration, f op) (*hdrhistogram.Histogram, int64, int64) {
	type job struct{ due time.Time }
	jobs := make(chan job, rate) // up to a second of backlog
	hists := make([]*hdrhistogram.Histogram, workers)
	var errs, dropped atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		hists[w] = newHist()
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range jobs {
				if err := f(w); err != nil {
					errs.Add(1)
				}
				hists[w].RecordValue(int64(time.Since(j.due)))
			}
		}(w)
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	total := int64(d / interval)
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case jobs <- job{due: time.Now()}:
		default:
			dropped.Add(1) // backlog full: counted as an error, not hidden
		}
	}
	close(jobs)
	wg.Wait()
	all := newHist()
	for _, h := range hists {
		all.Merge(h)
	}
	return all, all.TotalCount(), errs.Load() + dropped.Load()
}
