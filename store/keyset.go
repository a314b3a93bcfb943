package store

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// keySet is the set of 64-bit hashes of the keys the store holds, so that
// a shared-memory miss for a key the store does not have (the common miss)
// costs a hash lookup, not a Pebble read. It is an open-addressing table
// (linear probing, at most half full: 16 bytes per entry). A hash
// collision can only make a lookup go to Pebble (a false positive) or,
// once one of two colliding keys is deleted, miss the other (a lost hit).
type keySet struct {
	mu    sync.RWMutex
	slots []uint64 // 0: empty
	n     int
	ready atomic.Bool // built from the store; until then has() says yes
}

func keyHash(key []byte) uint64 { return xxhash.Sum64(key) | 1 }

// has reports whether h may be in the store.
func (k *keySet) has(h uint64) bool {
	if !k.ready.Load() {
		return true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.slots) == 0 {
		return false
	}
	mask := uint64(len(k.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch k.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (k *keySet) add(h uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if 2*(k.n+1) > len(k.slots) {
		k.grow()
	}
	mask := uint64(len(k.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch k.slots[i] {
		case h:
			return
		case 0:
			k.slots[i] = h
			k.n++
			return
		}
	}
}

func (k *keySet) grow() {
	old := k.slots
	k.slots = make([]uint64, max(1024, 2*len(old)))
	k.n = 0
	mask := uint64(len(k.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for k.slots[i] != 0 {
			i = (i + 1) & mask
		}
		k.slots[i] = h
		k.n++
	}
}

// del removes h (backward-shift deletion keeps probe chains intact).
func (k *keySet) del(h uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.slots) == 0 {
		return
	}
	mask := uint64(len(k.slots) - 1)
	i := h & mask
	for k.slots[i] != h {
		if k.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	k.slots[i] = 0
	k.n--
	for j := (i + 1) & mask; k.slots[j] != 0; j = (j + 1) & mask {
		home := k.slots[j] & mask
		// Move slot j back to the hole at i if its home is not in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			k.slots[i], k.slots[j] = k.slots[j], 0
			i = j
		}
	}
}

func (k *keySet) reset() {
	k.mu.Lock()
	k.slots, k.n = nil, 0
	k.mu.Unlock()
}

// build adds every key of db's info key space, then marks the set ready.
func (k *keySet) build(db *pebble.DB, stop <-chan struct{}) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{pInfo}, UpperBound: []byte{pInfo + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k.add(keyHash(it.Key()[1:]))
		if n++; n%4096 == 0 {
			select {
			case <-stop:
				return nil
			default:
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	k.ready.Store(true)
	return nil
}
