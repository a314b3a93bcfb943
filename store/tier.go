package store

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// Tier couples the hot tier (the shared-memory shm.Writer) with the store,
// making every write and invalidation in the order the store's guarantees
// need (docs/store.md, "Ordering"). Its methods mirror the shm.Writer
// methods the proxy uses, so the proxy can call a Tier where it called the
// writer. With a nil store (persistence off, or memory-only after a failed
// Open) every method is the writer's own.
type Tier struct {
	w    *shm.Writer
	s    *Store
	errs atomic.Uint64 // failed Delete and PurgeTag calls
}

// NewTier returns the tiers w (required) and s (nil: memory only).
func NewTier(w *shm.Writer, s *Store) *Tier { return &Tier{w: w, s: s} }

// Put stores it in shared memory and, if that succeeded, queues it for
// the store (never blocking on the disk).
func (t *Tier) Put(it *shm.Item) error {
	if t.s == nil {
		return t.w.Put(it)
	}
	t.s.gate.RLock()
	t.s.hotPuts.Add(1)
	err := t.w.Put(it)
	if err == nil {
		t.s.Put(it)
	}
	t.s.gate.RUnlock()
	return err
}

// GetStale is shm.Writer.GetStale with the second tier behind it: on a
// shared-memory miss, an entry the store holds (and may still serve) is
// promoted into shared memory and returned from there.
func (t *Tier) GetStale(dst, key []byte) (shm.Entry, []byte, bool) {
	e, out, ok := t.w.GetStale(dst, key)
	if ok || t.s == nil {
		return e, out, ok
	}
	if !t.s.promote(t.w, key, t.s.nowMs()) {
		return e, out, false
	}
	return t.w.GetStale(out, key)
}

// Purge applies p to both tiers, shared memory first, in order with every
// Put and purge made through the Tier (invalidate.Purger), and returns how
// many shared-memory entries it removed or marked stale. An invalid p is an
// error wrapping invalidate.ErrUnknownKind or ErrBadPayload and changes
// nothing. A closed store is not an error: the purge reached shared memory,
// and a closed store serves nothing.
func (t *Tier) Purge(p invalidate.Purge) (removed int, err error) {
	return t.invalidate(purgeInval(p))
}

func (t *Tier) invalidate(inv inval) (n int, err error) {
	if t.s == nil {
		if err := inv.valid(); err != nil {
			return 0, err
		}
		return inv.apply(t.w), nil
	}
	err = t.s.invalidate(inv, func() { n = inv.apply(t.w) })
	if errors.Is(err, ErrClosed) {
		err = nil // applied to shared memory; the store is gone
	}
	return n, err
}

// Delete removes exactly key from both tiers (the proxy's Cache: a stored
// response that no longer describes its resource). The only possible error
// is an empty key, which the caller cannot act on: it is counted
// (PurgeErrors) and logged.
func (t *Tier) Delete(key []byte) bool {
	n, err := t.invalidate(exactInval(key, false))
	t.noteErr("delete", err)
	return n > 0
}

// PurgeTag removes (or marks stale) every entry carrying tag in both tiers
// (the proxy's Cache). An invalid tag (empty, or over invalidate.MaxTag
// bytes) cannot be on any entry and the caller cannot act on it: it is
// counted (PurgeErrors) and logged.
func (t *Tier) PurgeTag(tag string, soft bool) int {
	mode := invalidate.Hard
	if soft {
		mode = invalidate.Soft
	}
	n, err := t.Purge(invalidate.TagPurge(tag, mode))
	t.noteErr("purge-tag", err)
	return n
}

// PurgeErrors is how many Delete and PurgeTag calls failed.
func (t *Tier) PurgeErrors() uint64 { return t.errs.Load() }

func (t *Tier) noteErr(op string, err error) {
	if err == nil {
		return
	}
	t.errs.Add(1)
	log := slog.Default()
	if t.s != nil {
		log = t.s.log
	}
	log.Warn("zerohop tier: purge refused", "op", op, "err", err)
}

// Refill is Store.Refill into the Tier's writer; without a store it does
// nothing.
func (t *Tier) Refill(ctx context.Context, progress func(done, total int)) (int, error) {
	if t.s == nil {
		return 0, nil
	}
	return t.s.Refill(ctx, t.w, progress)
}

// TaggedKeys returns the keys of the entries in shared memory carrying tag
// (shm.Writer.TaggedKeys). Entries only in Pebble are not listed: the
// proxy's 304 updates reach the variants in memory, and the others are
// revalidated when next used.
func (t *Tier) TaggedKeys(tag string) [][]byte { return t.w.TaggedKeys(tag) }
