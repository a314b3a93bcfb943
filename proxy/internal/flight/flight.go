// Package flight coalesces concurrent fetches of one cache key: the first
// caller leads the fetch, the others wait for it to end and then look in
// the cache again (RFC 9111 §4 allows collapsing; nginx proxy_cache_lock,
// Varnish's waiting list). It knows nothing of HTTP or of what is fetched.
//
// Unlike golang.org/x/sync/singleflight, nothing is allocated for a
// leader: the Call lives in the caller's own per-request state, keys are
// hashed rather than copied into a string, and the channel followers wait
// on is made only when the first follower comes.
package flight

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Group is the set of fetches in flight, by the hash of their key. Two
// keys with one hash share a flight: the follower then waits for a fetch
// that stores nothing it looks up and goes upstream itself, which is what
// coalescing costs anyway when the leader's answer is not storable. The
// zero Group is ready to use.
type Group struct {
	mu sync.Mutex
	m  map[uint64]*Call
}

// Call is one fetch that followers wait on. Its leader owns its memory
// (usually a field of the request's state) until Finish.
type Call struct {
	hash uint64
	wait chan struct{}
}

// Join returns the flight for key, making own the flight (leader=true) if
// there is none. A follower waits on the returned Call's Wait.
func (g *Group) Join(key []byte, own *Call) (c *Call, leader bool) {
	h := xxhash.Sum64(key)
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.m[h]; ok {
		if c.wait == nil {
			c.wait = make(chan struct{})
		}
		return c, false
	}
	if g.m == nil {
		g.m = map[uint64]*Call{}
	}
	own.hash, own.wait = h, nil
	g.m[h] = own
	return own, true
}

// Wait is closed when the flight's leader calls Finish. Only a follower
// (Join returned leader=false) may call it; for a leader with no follower
// it is nil.
func (c *Call) Wait() <-chan struct{} { return c.wait }

// Finish ends c and releases its followers.
func (g *Group) Finish(c *Call) {
	g.mu.Lock()
	if g.m[c.hash] == c {
		delete(g.m, c.hash)
	}
	wait := c.wait
	g.mu.Unlock()
	if wait != nil {
		close(wait)
	}
}

// Len returns how many flights have not finished.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
