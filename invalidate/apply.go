package invalidate

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"github.com/zerohop/zerohop/shm"
)

// ApplyStats counts a CacheApplier's work.
type ApplyStats struct {
	Keys, Prefixes, Tags, Alls uint64
	// Removed is how many entries were deleted or marked stale.
	Removed uint64
	// Unknown is how many records of an unknown kind or mode were skipped.
	Unknown uint64
	// BadPayload is how many records with a payload unfit for their kind
	// were skipped.
	BadPayload uint64
}

// CacheApplier applies invalidation records to a shared-memory cache.
// Applying a record twice is harmless, which is what lets the tailer
// re-apply after a crash rather than ever skip. It is safe for concurrent
// use (the writer serialises).
type CacheApplier struct {
	w *shm.Writer

	keys, prefixes, tags, alls, removed, unknown, bad atomic.Uint64
}

// NewCacheApplier returns an applier for w.
func NewCacheApplier(w *shm.Writer) *CacheApplier { return &CacheApplier{w: w} }

// ApplyToCache returns NewCacheApplier(w).Apply.
func ApplyToCache(w *shm.Writer) func(Record) error { return NewCacheApplier(w).Apply }

// Apply applies one record:
//   - KindKey: the URL's primary key (GET) and every Vary variant of it;
//   - KindPrefix: every key of the same scheme and host whose target starts
//     with the prefix's path and query;
//   - KindTag: every entry carrying the surrogate key;
//   - KindAll: everything.
//
// Hard deletes, Soft marks stale. A record of an unknown kind or mode is
// counted and returned as ErrUnknownKind, an unusable payload as
// ErrBadPayload; neither changes the cache. Marks apply nothing.
func (a *CacheApplier) Apply(rec Record) error {
	if rec.Kind == KindMark {
		return nil
	}
	if !rec.Kind.Known() || !rec.Mode.Known() {
		a.unknown.Add(1)
		return fmt.Errorf("%w: %s/%s (record %d)", ErrUnknownKind, rec.Kind, rec.Mode, rec.Seq)
	}
	soft := rec.Mode == Soft
	n := 0
	switch rec.Kind {
	case KindKey:
		scheme, host, target, err := SplitURL(string(rec.Payload))
		if err != nil {
			a.bad.Add(1)
			return err
		}
		key := shm.AppendKey(nil, "GET", scheme, host, target)
		var ok bool
		if soft {
			ok = a.w.MarkStale(key)
		} else {
			ok = a.w.Delete(key)
		}
		if ok {
			n++
		}
		n += a.w.PurgeTag(shm.VariantTag(key), soft)
		a.keys.Add(1)
	case KindPrefix:
		m, err := prefixMatcher(string(rec.Payload))
		if err != nil {
			a.bad.Add(1)
			return err
		}
		n = a.w.PurgeFunc(m, soft)
		a.prefixes.Add(1)
	case KindTag:
		if len(rec.Payload) == 0 {
			a.bad.Add(1)
			return fmt.Errorf("%w: empty tag (record %d)", ErrBadPayload, rec.Seq)
		}
		n = a.w.PurgeTag(string(rec.Payload), soft)
		a.tags.Add(1)
	case KindAll:
		n = a.w.PurgeFunc(nil, soft)
		a.alls.Add(1)
	}
	a.removed.Add(uint64(n))
	return nil
}

// Publish records in the cache file's header that every record up to seq
// (ending at offset off of the log) is applied: what WaitApplied polls.
func (a *CacheApplier) Publish(seq, off uint64) { a.w.SetInvalidation(seq, off) }

// Stats returns the counters.
func (a *CacheApplier) Stats() ApplyStats {
	return ApplyStats{
		Keys: a.keys.Load(), Prefixes: a.prefixes.Load(), Tags: a.tags.Load(), Alls: a.alls.Load(),
		Removed: a.removed.Load(), Unknown: a.unknown.Load(), BadPayload: a.bad.Load(),
	}
}

// prefixMatcher returns a key matcher for a URL prefix: same scheme and
// host as the cache key normalises them, target starting with the prefix.
func prefixMatcher(u string) (func(key []byte) bool, error) {
	scheme, host, prefix, err := SplitPrefix(u)
	if err != nil {
		return nil, err
	}
	norm, ok := shm.SplitKey(shm.AppendKey(nil, "", scheme, host, ""))
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadPayload, u)
	}
	s, h, p := bytes.Clone(norm.Scheme), bytes.Clone(norm.Host), []byte(prefix)
	return func(key []byte) bool {
		k, ok := shm.SplitKey(key)
		return ok && bytes.Equal(k.Scheme, s) && bytes.Equal(k.Host, h) && bytes.HasPrefix(k.Target, p)
	}, nil
}
