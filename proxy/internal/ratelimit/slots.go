package ratelimit

import "strings"

// The mechanics of a Table's shards: linear probing in a power-of-two
// array, backward-shift deletion (no tombstones), doubling up to the
// shard's bound, and CLOCK eviction. Everything that writes a slot runs
// under the shard's lock; find also runs without it.

// find returns the entry of key (hash h) in a, or nil. Without the
// shard's lock it may miss a key that an insert or eviction is moving
// (never find a wrong one: it compares the key): the caller then looks
// again under the lock.
func (a *slotArray) find(h uint64, key string) *entry {
	for i, n := home(h, a.mask), 0; n < len(a.s); i, n = (i+1)&a.mask, n+1 {
		s := &a.s[i]
		sh := s.hash.Load()
		if sh == 0 {
			return nil
		}
		if sh == h {
			if e := s.ent.Load(); e != nil && e.hash == h && e.key == key {
				return e
			}
		}
	}
	return nil
}

// insert returns the entry of key (hash h, in shard sh), adding it with
// TAT tat if the shard does not hold it, after evicting a key if the
// shard is full.
func (t *Table) insert(sh int, h uint64, key string, tat int64) *entry {
	s := &t.shards[sh]
	s.mu.Lock()
	defer s.mu.Unlock()
	a := t.slots[sh].Load()
	if e := a.find(h, key); e != nil {
		return e
	}
	if s.keys >= t.perShard {
		t.evict(sh, a)
	} else if 2*(s.keys+1) > len(a.s) && len(a.s) < t.maxSlots {
		a = a.grown()
		t.slots[sh].Store(a)
	}
	e := &entry{hash: h, key: strings.Clone(key)} // key may alias a reused buffer
	e.tat.Store(tat)
	e.ref.Store(true)
	a.put(e)
	s.keys++
	return e
}

// put stores e in the first empty slot from its home.
func (a *slotArray) put(e *entry) {
	i := home(e.hash, a.mask)
	for a.s[i].hash.Load() != 0 {
		i = (i + 1) & a.mask
	}
	a.s[i].ent.Store(e)
	a.s[i].hash.Store(e.hash)
}

// grown returns a copy of a twice as large. Lookups still reading a find
// the same entries there, or miss and look again under the lock.
func (a *slotArray) grown() *slotArray {
	n := 2 * len(a.s)
	b := &slotArray{mask: uint64(n - 1), s: make([]slot, n)}
	for i := range a.s {
		if e := a.s[i].ent.Load(); e != nil {
			b.put(e)
		}
	}
	return b
}

// evict forgets one key of the full shard sh (slots a), chosen by the
// CLOCK hand: the first entry whose reference bit is clear, clearing the
// set ones it passes (after two turns, whichever it is at).
func (t *Table) evict(sh int, a *slotArray) {
	s := &t.shards[sh]
	for steps := 0; ; steps++ {
		i := s.hand & a.mask
		s.hand = i + 1
		e := a.s[i].ent.Load()
		if e == nil {
			continue
		}
		if e.ref.Load() && steps < 2*len(a.s) {
			e.ref.Store(false)
			continue
		}
		a.remove(i)
		s.keys--
		s.evictions++
		// A decision that found e before it was removed may still count
		// on it: dead tells it to move its count here too (count).
		e.dead.Store(true)
		s.gone[goneAllowed].Add(e.allowed.Swap(0))
		s.gone[goneRefused].Add(e.refused.Swap(0))
		return
	}
}

// remove empties slot i, moving back the entries after it that may take
// its place (so that no probe meets a hole before its key). An entry
// being moved is in two slots for a moment, never in none from a
// locked lookup's view.
func (a *slotArray) remove(i uint64) {
	m := a.mask
	for {
		j := i
		for {
			j = (j + 1) & m
			h := a.s[j].hash.Load()
			if h == 0 {
				a.s[i].hash.Store(0)
				a.s[i].ent.Store(nil)
				return
			}
			// The entry at j may fill the hole at i unless its home lies
			// cyclically in (i, j].
			if k := home(h, m); (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
				break
			}
		}
		a.s[i].ent.Store(a.s[j].ent.Load())
		a.s[i].hash.Store(a.s[j].hash.Load())
		i = j
	}
}
