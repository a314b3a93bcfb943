package invalidate

import (
	"errors"
	"sync/atomic"
)

// ApplyStats counts an Applier's work.
type ApplyStats struct {
	Keys, Prefixes, Tags, Alls uint64
	// Removed is how many entries were deleted or marked stale, as the
	// Purger reports them (the shared-memory tier's count).
	Removed uint64
	// Unknown is how many records of an unknown kind or mode were skipped.
	Unknown uint64
	// BadPayload is how many records with a payload unfit for their kind
	// were skipped.
	BadPayload uint64
}

// Applier applies invalidation records: it decodes each into a Purge
// (ParsePurge) and hands it to a Purger, the shared-memory cache
// (ShmPurger) or the sidecar's tiers (store.Tier). Applying a record twice
// is harmless, which is what lets the tailer re-apply after a crash rather
// than ever skip. It is safe for concurrent use if its Purger is.
type Applier struct {
	to Purger

	keys, prefixes, tags, alls, removed, unknown, bad atomic.Uint64
}

// NewApplier returns an applier purging through to.
func NewApplier(to Purger) *Applier { return &Applier{to: to} }

// Apply applies one record (tail.Options.Apply). A record of an unknown
// kind or mode is counted and returned as ErrUnknownKind, an unusable
// payload as ErrBadPayload; neither changes the cache. Marks apply nothing.
// Other errors are the Purger's, for the tailer to retry.
func (a *Applier) Apply(rec Record) error {
	if rec.Kind == KindMark {
		return nil
	}
	p, err := ParsePurge(rec)
	if err == nil {
		var n int
		n, err = a.to.Purge(p)
		a.removed.Add(uint64(n))
	}
	switch {
	case errors.Is(err, ErrUnknownKind):
		a.unknown.Add(1)
		return err
	case errors.Is(err, ErrBadPayload):
		a.bad.Add(1)
		return err
	case err != nil:
		return err
	}
	switch p.Kind {
	case KindKey:
		a.keys.Add(1)
	case KindPrefix:
		a.prefixes.Add(1)
	case KindTag:
		a.tags.Add(1)
	case KindAll:
		a.alls.Add(1)
	}
	return nil
}

// Stats returns the counters.
func (a *Applier) Stats() ApplyStats {
	return ApplyStats{
		Keys: a.keys.Load(), Prefixes: a.prefixes.Load(), Tags: a.tags.Load(), Alls: a.alls.Load(),
		Removed: a.removed.Load(), Unknown: a.unknown.Load(), BadPayload: a.bad.Load(),
	}
}
