package zerohop

import (
	"sync"
	"time"

	"github.com/zerohop/zerohop/shm/appcounters"
)

// bypassReason says why a request was not eligible for a shared-memory
// answer.
type bypassReason uint8

const (
	eligibleOK        bypassReason = iota
	bypassMethod                   // not GET or HEAD
	bypassBody                     // a request body
	bypassConditional              // Range, If-Match, If-Unmodified-Since, If-Range
	bypassNoCache                  // request Cache-Control or Pragma asks for revalidation
	bypassUnmapped                 // no mapping (not Linux); never published
	bypassReasons
)

var bypassNames = [bypassReasons]string{"", "method", "body", "conditional", "no_cache", "unmapped"}

// countersInterval is how often the counters are copied to the file.
const countersInterval = time.Second

// counterPublisher copies the client's counters into its counters file
// (package appcounters) once a second. The hit path only does the atomic
// adds it always did.
type counterPublisher struct {
	mu   sync.Mutex
	p    *appcounters.Publisher
	err  error
	done chan struct{}
	wg   sync.WaitGroup
}

func (cp *counterPublisher) start(c *Client, dir string) {
	p, err := appcounters.NewPublisher(dir, "go")
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if err != nil {
		cp.err = err // the app works on; its counters are missing from /metrics
		return
	}
	done := make(chan struct{})
	cp.p, cp.done = p, done
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		t := time.NewTicker(countersInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.PublishCounters()
			case <-done:
				return
			}
		}
	}()
}

// stop publishes a last time and releases the file for the sidecar to
// fold into its departed total.
func (cp *counterPublisher) stop(c *Client) {
	cp.mu.Lock()
	done := cp.done
	cp.done = nil
	cp.mu.Unlock()
	if done == nil {
		return
	}
	close(done)
	cp.wg.Wait()
	c.PublishCounters()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.p.Close()
	cp.p = nil
}

// PublishCounters copies the counters to the counters file now rather
// than at the next one-second tick (an app about to exit, a test). It does
// nothing when counters are not published.
func (c *Client) PublishCounters() {
	cp := &c.counters
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.p == nil {
		return
	}
	var v [appcounters.Count]uint64
	v[appcounters.Hits] = c.hits.Load()
	v[appcounters.NotModified] = c.notModified.Load()
	v[appcounters.Misses] = c.misses.Load()
	v[appcounters.BypassMethod] = c.bypass[bypassMethod].Load()
	v[appcounters.BypassBody] = c.bypass[bypassBody].Load()
	v[appcounters.BypassConditional] = c.bypass[bypassConditional].Load()
	v[appcounters.BypassNoCache] = c.bypass[bypassNoCache].Load()
	v[appcounters.ServedBytes] = c.served.Load()
	if c.r != nil {
		r := c.r.Stats()
		v[appcounters.LookupHits], v[appcounters.LookupMisses], v[appcounters.LookupExpired] = r.Hits, r.Misses, r.Expired
		v[appcounters.TornRetries], v[appcounters.Torn], v[appcounters.Overruns] = r.TornRetries, r.Torn, r.Overruns
		v[appcounters.Corrupt], v[appcounters.Collisions], v[appcounters.WriterStale] = r.Corrupt, r.Collisions, r.WriterStale
		v[appcounters.Faults], v[appcounters.Remaps] = r.Faults, r.Remaps
	}
	cp.p.Publish(&v, time.Now().UnixMilli())
}

// CountersFile is the file the client publishes its counters in, "" when
// it does not, with the reason (no mapping, CountersDir "off", or the
// error creating the file).
func (c *Client) CountersFile() (string, error) {
	cp := &c.counters
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.p == nil {
		return "", cp.err
	}
	return cp.p.Path(), nil
}
