// Package ratelimit holds the rate limits' mechanics, free of the proxy's
// types: a bounded, sharded table of GCRA token buckets (Table), and the
// same algorithm run in Redis for limits shared by several processes
// (Global).
//
// The algorithm is GCRA (the generic cell rate algorithm), which is a
// token bucket kept as one number per key: the theoretical arrival time
// (TAT) of the next request if requests came at exactly the rate. With
// emission interval T = period/rate and tolerance tau = burst*T, a
// request at time now is allowed when max(TAT, now) + T - now <= tau,
// and then TAT becomes max(TAT, now) + T. A key that has been quiet for
// burst*T has a full bucket of burst requests; a key that keeps asking
// gets one request per T. One int64 per key, no refill timer, and the
// same arithmetic locally and in Redis's Lua.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Shards is how many parts a Table's keys are divided into, each with its
// own slots, insert lock and eviction hand.
const Shards = 64

// Rule is a limit's rate: Interval is the time one request costs
// (period/rate, in nanoseconds, at least 1) and Burst how many requests
// a quiet key may make at once.
type Rule struct {
	Interval int64
	Burst    int64
}

// tau is the tolerance: how far ahead of now a key's TAT may be.
func (r Rule) tau() int64 { return r.Interval * r.Burst }

// Decision is the answer for one request.
type Decision struct {
	// Allowed says the request is within the limit.
	Allowed bool
	// Remaining is how many more requests the key could make now.
	Remaining int64
	// Wait is, for a refused request, how long until one would be
	// allowed (ns); for an allowed one, how long until the bucket is full
	// again.
	Wait int64
}

// Table is a bounded map from keys to GCRA state, built so that a
// decision for a key already in it takes no lock and writes nothing but
// that key's own entry: two cores deciding for different keys share no
// written cache line, and two cores deciding for one key share only its
// entry.
//
// Each of its Shards shards is an open-addressed (linear probing) array
// of slots, found by a seeded hash (hash/maphash, a fresh seed per table,
// so that clients cannot choose keys that collide), holding at most
// ceil(max/Shards) keys. A slot points to an entry holding the key's
// bytes (a key is found only by comparing them: two keys never share a
// bucket) and its TAT, updated by compare-and-swap: however many cores
// decide for one key at once, GCRA admits no more than it would one
// request at a time. Lookups take no lock; inserting and evicting take
// the shard's lock, and a lookup that misses looks again under it, so a
// key is never held twice.
//
// When a shard is full, a new key takes the place of one not used
// recently, chosen by CLOCK (an approximation of least recently used): a
// decision sets its entry's reference bit when it is clear, the shard's
// hand clears set bits as it passes and evicts the first entry whose bit
// is clear. Evictions are counted. A forgotten key starts again with a
// full bucket. A decision that found a key's entry just before another
// core evicted it completes on that entry, as if it had come just before
// the eviction; its count is kept.
//
// A decision for a key already in the table allocates nothing; a new key
// costs one entry and a copy of the key.
type Table struct {
	rule     Rule
	perShard int // keys a shard holds at most
	maxSlots int // the slots a shard grows to: a power of two, at least 2*perShard
	seed     maphash.Seed
	// slots are the shards' arrays, read by every decision and replaced
	// only when a shard grows.
	slots  [Shards]atomic.Pointer[slotArray]
	_      [64]byte      // keeps the shards' locks off the slots' lines
	shards [Shards]shard // written by inserts and evictions only
}

// slotArray is a shard's slots: a power of two of them, at most half
// used, so that probes are short and always reach an empty slot.
type slotArray struct {
	mask uint64
	s    []slot
}

// slot is one place of a shard. hash, the entry's hash (odd; 0 when the
// slot is empty), lets a probe pass other keys without reading their
// entries. Both are written under the shard's lock only; a lookup reads
// them racily and trusts only the entry's own key.
type slot struct {
	hash atomic.Uint64
	ent  atomic.Pointer[entry]
}

// entry is one key's state: 64 bytes, a cache line of its own.
type entry struct {
	tat     atomic.Int64 // GCRA: the theoretical arrival time; Global: refused until
	allowed atomic.Uint64
	refused atomic.Uint64
	ref     atomic.Bool // used since the hand last passed
	dead    atomic.Bool // evicted: late decisions move their counts to the shard
	hash    uint64
	key     string
}

// shard is the mutable part of a shard, a cache line of its own,
// written only by inserts and evictions (under mu).
type shard struct {
	mu        sync.Mutex
	keys      int
	hand      uint64 // CLOCK: the next slot to look at
	evictions uint64
	gone      [2]atomic.Uint64 // allowed and refused counts of evicted entries
	_         [64 - 8 - 8 - 8 - 8 - 16]byte
}

// The gone counts.
const (
	goneAllowed = iota
	goneRefused
)

// initialSlots is a new shard's size; it doubles as keys arrive, up to
// maxSlots.
const initialSlots = 8

// NewTable returns a table for rule holding at most about maxKeys keys
// (rounded up to a multiple of Shards). maxKeys < 1 is taken as 1.
func NewTable(rule Rule, maxKeys int) *Table {
	if rule.Interval < 1 {
		rule.Interval = 1
	}
	if rule.Burst < 1 {
		rule.Burst = 1
	}
	t := &Table{rule: rule, perShard: (max(maxKeys, 1) + Shards - 1) / Shards, seed: maphash.MakeSeed()}
	t.maxSlots = 2
	for t.maxSlots < 2*t.perShard {
		t.maxSlots *= 2
	}
	n := min(initialSlots, t.maxSlots)
	for i := range t.slots {
		t.slots[i].Store(&slotArray{mask: uint64(n - 1), s: make([]slot, n)})
	}
	return t
}

// Rule returns the table's rule.
func (t *Table) Rule() Rule { return t.rule }

// Stats are a table's counts.
type Stats struct {
	Keys      int    // keys held
	Allowed   uint64 // requests Take allowed
	Refused   uint64 // requests Take refused
	Evictions uint64 // keys forgotten to make room for others
}

// Stats sums the counts of the shards and their entries: it reads every
// slot (for a metrics scrape, not for requests).
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Keys += s.keys
		st.Evictions += s.evictions
		st.Allowed += s.gone[goneAllowed].Load()
		st.Refused += s.gone[goneRefused].Load()
		a := t.slots[i].Load()
		for j := range a.s {
			if e := a.s[j].ent.Load(); e != nil {
				st.Allowed += e.allowed.Load()
				st.Refused += e.refused.Load()
			}
		}
		s.mu.Unlock()
	}
	return st
}

// Evictions is how many keys were forgotten to make room for others.
func (t *Table) Evictions() uint64 {
	var n uint64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.evictions
		s.mu.Unlock()
	}
	return n
}

// Len is how many keys the table holds.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.keys
		s.mu.Unlock()
	}
	return n
}

// Cap is the most keys the table holds.
func (t *Table) Cap() int { return t.perShard * Shards }

// hash is key's seeded hash, odd (never 0, the empty slot's). Its top
// bits choose the shard, the bits above the lowest the home slot.
func (t *Table) hash(key string) uint64 { return maphash.String(t.seed, key) | 1 }

func shardOf(h uint64) int { return int(h >> 58) }

func home(h, mask uint64) uint64 { return h >> 1 & mask }

// Take decides a request of key at time now (ns on a monotonic clock)
// and, if it is allowed, counts it. key may alias memory the caller
// reuses: it is copied when stored.
func (t *Table) Take(key string, now int64) Decision {
	h := t.hash(key)
	sh := shardOf(h)
	e := t.slots[sh].Load().find(h, key)
	if e == nil {
		e = t.insert(sh, h, key, now)
	}
	t.used(e)
	for {
		old := e.tat.Load()
		d, next := t.rule.take(old, now)
		if !d.Allowed {
			t.count(sh, e, &e.refused, goneRefused)
			return d
		}
		if e.tat.CompareAndSwap(old, next) {
			t.count(sh, e, &e.allowed, goneAllowed)
			return d
		}
	}
}

// used sets e's reference bit, writing it only when it is clear.
func (*Table) used(e *entry) {
	if !e.ref.Load() {
		e.ref.Store(true)
	}
}

// count adds a decision to e's counter c. If e was evicted meanwhile,
// whatever its counter holds moves to the shard's, once: the evictor and
// late deciders each take it with a swap.
func (t *Table) count(sh int, e *entry, c *atomic.Uint64, which int) {
	c.Add(1)
	if e.dead.Load() {
		t.shards[sh].gone[which].Add(c.Swap(0))
	}
}

// take runs GCRA on a key whose TAT is tat: the decision, and the TAT
// after it if it is allowed.
func (r Rule) take(tat, now int64) (Decision, int64) {
	tau := r.tau()
	next := max(tat, now) + r.Interval
	if ahead := next - now; ahead > tau {
		return Decision{Wait: ahead - tau}, tat
	}
	return Decision{Allowed: true, Remaining: (tau - (next - now)) / r.Interval, Wait: next - now}, next
}

// Blocked reports whether key was marked refused (Block) until after
// now, and for how much longer. It does not add key to the table.
func (t *Table) Blocked(key string, now int64) (wait int64, blocked bool) {
	h := t.hash(key)
	e := t.slots[shardOf(h)].Load().find(h, key)
	if e == nil {
		return 0, false
	}
	if until := e.tat.Load(); until > now {
		t.used(e)
		return until - now, true
	}
	return 0, false
}

// Block marks key refused until until (ns, the clock of Take).
func (t *Table) Block(key string, until int64) {
	h := t.hash(key)
	sh := shardOf(h)
	e := t.slots[sh].Load().find(h, key)
	if e == nil {
		e = t.insert(sh, h, key, until)
	}
	t.used(e)
	for {
		old := e.tat.Load()
		if old >= until || e.tat.CompareAndSwap(old, until) {
			return
		}
	}
}
