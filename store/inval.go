package store

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// inval is one purge as the store queues it: an invalidate.Purge, or the
// removal of exactly one key (Tier.Delete, for a stored response that no
// longer describes its resource).
type inval struct {
	p invalidate.Purge
	// key is the primary key of a KindKey purge, or the one key an exact
	// removal names.
	key []byte
	// exact removes key alone, not its Vary variants.
	exact bool
	at    int64 // when it was made (unix ms): the staleness of a soft one
}

// purgeInval returns the inval applying p.
func purgeInval(p invalidate.Purge) inval {
	inv := inval{p: p}
	if p.Kind == invalidate.KindKey {
		inv.key = p.Key()
	}
	return inv
}

// exactInval returns the inval removing exactly key.
func exactInval(key []byte, soft bool) inval {
	inv := inval{p: invalidate.Purge{Kind: invalidate.KindKey}, key: key, exact: true}
	if soft {
		inv.p.Mode = invalidate.Soft
	}
	return inv
}

func (inv *inval) soft() bool { return inv.p.Soft() }

func (inv inval) String() string {
	if inv.exact {
		return fmt.Sprintf("exact/%s %q", inv.p.Mode, inv.key)
	}
	return inv.p.String()
}

// valid reports whether inv is well-formed.
func (inv *inval) valid() error {
	if inv.exact {
		if len(inv.key) == 0 {
			return fmt.Errorf("store: invalidation: %w: empty key", invalidate.ErrBadPayload)
		}
		return nil
	}
	if err := inv.p.Validate(); err != nil {
		return fmt.Errorf("store: invalidation: %w", err)
	}
	return nil
}

// hostPart returns str16(scheme) str16(host), normalised as in a key.
func hostPart(scheme, host string) (schemeB, hostB []byte) {
	k := shm.AppendKey(nil, http.MethodGet, scheme, host, "")
	p, _ := shm.SplitKey(k)
	return p.Scheme, p.Host
}

// apply applies inv to the shared-memory tier and returns how many entries
// it removed or marked stale.
func (inv *inval) apply(w *shm.Writer) int {
	if inv.exact {
		if inv.soft() {
			if w.MarkStale(inv.key) {
				return 1
			}
			return 0
		}
		if w.Delete(inv.key) {
			return 1
		}
		return 0
	}
	n, _ := invalidate.NewShmPurger(w).Purge(inv.p) // valid: checked when queued
	return n
}

func prefixMatch(key, scheme, host, target []byte) bool {
	p, ok := shm.SplitKey(key)
	return ok && bytes.Equal(p.Scheme, scheme) && bytes.Equal(p.Host, host) && bytes.HasPrefix(p.Target, target)
}

// primaryOf returns the primary part of a key (without its Vary part).
func primaryOf(key []byte) []byte {
	p, ok := shm.SplitKey(key)
	if !ok {
		return key
	}
	return key[:len(key)-len(p.Vary)]
}

// filter answers "does one of these invalidations cover this entry", for
// invalidations that Pebble has not applied yet (reads) or that came after
// a refill's snapshot. Lookups cost O(1) per key, tag and prefix rule.
type filter struct {
	n        int
	softAt   int64 // the earliest soft invalidation's time
	hasSoft  bool
	all      int8 // 0 none, 1 soft, 2 hard
	keys     map[string]int8
	urls     map[string]int8
	tags     map[string]int8
	prefixes []prefixRule
}

type prefixRule struct {
	scheme, host, target []byte
	level                int8
}

func level(soft bool) int8 {
	if soft {
		return 1
	}
	return 2
}

func (f *filter) add(inv *inval) {
	f.n++
	l := level(inv.soft())
	if inv.soft() && (!f.hasSoft || inv.at < f.softAt) {
		f.softAt, f.hasSoft = inv.at, true
	}
	set := func(m *map[string]int8, k string) {
		if *m == nil {
			*m = map[string]int8{}
		}
		(*m)[k] = max((*m)[k], l)
	}
	switch inv.p.Kind {
	case invalidate.KindKey:
		if inv.exact {
			set(&f.keys, string(inv.key))
		} else {
			set(&f.urls, string(inv.key))
		}
	case invalidate.KindPrefix:
		s, h := hostPart(inv.p.Scheme, inv.p.Host)
		f.prefixes = append(f.prefixes, prefixRule{s, h, []byte(inv.p.Target), l})
	case invalidate.KindTag:
		set(&f.tags, inv.p.Tag)
	case invalidate.KindAll:
		f.all = max(f.all, l)
	}
}

// match returns 0 (not covered), 1 (covered by soft invalidations only: the
// entry is stale from softAt on) or 2 (covered by a removal).
func (f *filter) match(key, tags []byte) int8 {
	if f == nil || f.n == 0 {
		return 0
	}
	m := f.all
	if m == 2 {
		return 2
	}
	if f.keys != nil {
		m = max(m, f.keys[string(key)])
	}
	if f.urls != nil {
		m = max(m, f.urls[string(primaryOf(key))])
	}
	if f.tags != nil {
		for it := newStrIter(tags); it.next(); {
			m = max(m, f.tags[string(it.cur)])
		}
	}
	for i := range f.prefixes {
		r := &f.prefixes[i]
		if r.level > m && prefixMatch(key, r.scheme, r.host, r.target) {
			m = r.level
		}
	}
	return m
}
