package store

import (
	"context"
	"errors"

	"github.com/zerohop/zerohop/shm"
)

// Tier couples the hot tier (the shared-memory shm.Writer) with the store,
// making every write and invalidation in the order the store's guarantees
// need (docs/store.md, "Ordering"). Its methods mirror the shm.Writer
// methods the proxy uses, so the proxy can call a Tier where it called the
// writer. With a nil store (persistence off, or memory-only after a failed
// Open) every method is the writer's own.
type Tier struct {
	w *shm.Writer
	s *Store
}

// NewTier returns the tiers w (required) and s (nil: memory only).
func NewTier(w *shm.Writer, s *Store) *Tier { return &Tier{w: w, s: s} }

// Writer returns the shared-memory writer.
func (t *Tier) Writer() *shm.Writer { return t.w }

// Store returns the store, or nil.
func (t *Tier) Store() *Store { return t.s }

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

// Get is shm.Writer.Get (fresh entries only) with the second tier behind it.
func (t *Tier) Get(dst, key []byte, nowMs int64) (shm.Entry, []byte, bool) {
	e, out, ok := t.w.Get(dst, key, nowMs)
	if ok || t.s == nil {
		return e, out, ok
	}
	if _, _, there := t.w.GetStale(nil, key); there {
		return e, out, false // held, but not fresh
	}
	if !t.s.promote(t.w, key, nowMs) {
		return e, out, false
	}
	return t.w.Get(out, key, nowMs)
}

// Invalidate applies inv to both tiers, in order with every Put and
// invalidation made through the Tier, and returns how many shared-memory
// entries it removed or marked stale. With inv.Seq set, the store records
// it as AppliedSeq atomically with the purge.
func (t *Tier) Invalidate(inv Invalidation) (n int, err error) {
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

// Delete removes exactly key from both tiers.
func (t *Tier) Delete(key []byte) bool {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidateKey, Key: key})
	return n > 0
}

// MarkStale marks exactly key stale in both tiers.
func (t *Tier) MarkStale(key []byte) bool {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidateKey, Key: key, Soft: true})
	return n > 0
}

// InvalidateURL removes (or marks stale) a primary key and all its Vary
// variants from both tiers.
func (t *Tier) InvalidateURL(primary []byte, soft bool) int {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidateURL, Key: primary, Soft: soft})
	return n
}

// PurgeTag removes (or marks stale) every entry carrying tag in both tiers.
func (t *Tier) PurgeTag(tag string, soft bool) int {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidateTag, Tag: tag, Soft: soft})
	return n
}

// PurgePrefix removes (or marks stale) every entry of scheme://host whose
// target starts with targetPrefix, in both tiers.
func (t *Tier) PurgePrefix(scheme, host, targetPrefix string, soft bool) int {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidatePrefix, Scheme: scheme, Host: host, Target: targetPrefix, Soft: soft})
	return n
}

// PurgeAll removes (or marks stale) everything in both tiers.
func (t *Tier) PurgeAll(soft bool) int {
	n, _ := t.Invalidate(Invalidation{Kind: InvalidateAll, Soft: soft})
	return n
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
