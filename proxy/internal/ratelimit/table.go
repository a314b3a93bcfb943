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
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Shards is how many independently locked parts a Table has: requests
// for different keys on different cores rarely wait for one another.
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

// Table is a bounded map from keys to GCRA state. Each of its Shards
// shards holds at most ceil(max/Shards) keys and forgets its least
// recently used key to make room for a new one (counted in Evictions). A
// decision for a key already in the table allocates nothing; a new key
// costs one entry and a copy of the key, unless an evicted entry is
// reused.
type Table struct {
	rule     Rule
	perShard int
	shards   [Shards]shard
}

// shard is one lock's part of a Table, a cache line of its own. Its
// counters are kept under its lock, not in shared atomics, so that
// cores deciding for different keys never write the same line.
type shard struct {
	mu         sync.Mutex
	m          map[string]*entry
	head, tail *entry // most recently used first
	allowed    uint64
	refused    uint64
	evictions  uint64
	_          [64 - 8 - 8 - 16 - 24]byte
}

type entry struct {
	key        string
	tat        int64 // GCRA: the theoretical arrival time; Global: refused until
	prev, next *entry
}

// NewTable returns a table for rule holding at most about maxKeys keys
// (rounded up to a multiple of Shards). maxKeys < 1 is taken as 1.
func NewTable(rule Rule, maxKeys int) *Table {
	if rule.Interval < 1 {
		rule.Interval = 1
	}
	if rule.Burst < 1 {
		rule.Burst = 1
	}
	t := &Table{rule: rule, perShard: (max(maxKeys, 1) + Shards - 1) / Shards}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*entry)
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

// Stats sums the shards' counts.
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Keys += len(s.m)
		st.Allowed += s.allowed
		st.Refused += s.refused
		st.Evictions += s.evictions
		s.mu.Unlock()
	}
	return st
}

// Evictions is how many keys were forgotten to make room for others.
func (t *Table) Evictions() uint64 { return t.Stats().Evictions }

// Len is how many keys the table holds.
func (t *Table) Len() int { return t.Stats().Keys }

// Cap is the most keys the table holds.
func (t *Table) Cap() int { return t.perShard * Shards }

func (t *Table) shard(key string) *shard {
	return &t.shards[xxhash.Sum64String(key)&(Shards-1)]
}

// Take decides a request of key at time now (ns on a monotonic clock)
// and, if it is allowed, counts it. key may alias memory the caller
// reuses: it is copied when stored.
func (t *Table) Take(key string, now int64) Decision {
	s := t.shard(key)
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = t.insert(s, key)
		e.tat = now
	} else {
		s.touch(e)
	}
	d := t.rule.take(&e.tat, now)
	if d.Allowed {
		s.allowed++
	} else {
		s.refused++
	}
	s.mu.Unlock()
	return d
}

// take runs GCRA on *tat.
func (r Rule) take(tat *int64, now int64) Decision {
	tau := r.tau()
	at := max(*tat, now)
	next := at + r.Interval
	if ahead := next - now; ahead > tau {
		return Decision{Wait: ahead - tau}
	}
	*tat = next
	return Decision{Allowed: true, Remaining: (tau - (next - now)) / r.Interval, Wait: next - now}
}

// Blocked reports whether key was marked refused (Block) until after
// now, and for how much longer. It does not add key to the table.
func (t *Table) Blocked(key string, now int64) (wait int64, blocked bool) {
	s := t.shard(key)
	s.mu.Lock()
	if e := s.m[key]; e != nil && e.tat > now {
		wait, blocked = e.tat-now, true
		s.touch(e)
	}
	s.mu.Unlock()
	return wait, blocked
}

// Block marks key refused until until (ns, the clock of Take).
func (t *Table) Block(key string, until int64) {
	s := t.shard(key)
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = t.insert(s, key)
	} else {
		s.touch(e)
	}
	e.tat = max(e.tat, until)
	s.mu.Unlock()
}

// insert adds key at the front of s, evicting its least recently used
// key when s is full (and reusing that entry). s is locked.
func (t *Table) insert(s *shard, key string) *entry {
	var e *entry
	if len(s.m) >= t.perShard && s.tail != nil {
		e = s.tail
		s.unlink(e)
		delete(s.m, e.key)
		s.evictions++
		*e = entry{}
	} else {
		e = &entry{}
	}
	e.key = strings.Clone(key) // key may alias a reused buffer
	s.m[e.key] = e
	s.pushFront(e)
	return e
}

func (s *shard) touch(e *entry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}
