package store

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/zerohop/zerohop/shm"
)

// Kind is what an Invalidation removes.
type Kind uint8

// Invalidation kinds.
const (
	// InvalidateKey removes exactly Key (shm.Writer.Delete's meaning).
	InvalidateKey Kind = iota + 1
	// InvalidateURL removes the primary key Key and every Vary variant
	// of it (the keys that start with Key's bytes).
	InvalidateURL
	// InvalidatePrefix removes every entry of Scheme and Host whose target
	// (path and query) starts with Target, whatever the method.
	InvalidatePrefix
	// InvalidateTag removes every entry carrying the surrogate key Tag.
	InvalidateTag
	// InvalidateAll removes everything.
	InvalidateAll
)

func (k Kind) String() string {
	switch k {
	case InvalidateKey:
		return "key"
	case InvalidateURL:
		return "url"
	case InvalidatePrefix:
		return "prefix"
	case InvalidateTag:
		return "tag"
	case InvalidateAll:
		return "all"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Invalidation is one purge, as the invalidation tailer reads it from the
// log or the proxy makes it.
type Invalidation struct {
	Kind Kind
	// Key is the canonical key (InvalidateKey) or primary key
	// (InvalidateURL).
	Key []byte
	// Scheme, Host and Target are the InvalidatePrefix arguments; they are
	// normalised like shm.AppendKey (lower case, default port removed).
	Scheme, Host, Target string
	// Tag is the InvalidateTag surrogate key.
	Tag string
	// Soft marks the entries stale from the moment of the invalidation
	// (ExpiresMs lowered to it, as shm.Writer.MarkStale does) instead of
	// removing them: they stay servable for their stale-while-revalidate
	// and stale-if-error windows, counted from the purge.
	Soft bool
	// Seq, when not zero, is the invalidation-log sequence number of this
	// record: the store persists it as AppliedSeq in the same Pebble batch
	// as the end of the purge.
	Seq uint64

	at int64 // when it was made (unix ms): the staleness of a soft one
}

func (inv Invalidation) String() string {
	s := inv.Kind.String()
	switch inv.Kind {
	case InvalidateKey, InvalidateURL:
		s += fmt.Sprintf(" %q", inv.Key)
	case InvalidatePrefix:
		s += fmt.Sprintf(" %s://%s%s", inv.Scheme, inv.Host, inv.Target)
	case InvalidateTag:
		s += fmt.Sprintf(" %q", inv.Tag)
	}
	if inv.Soft {
		s += " soft"
	}
	if inv.Seq != 0 {
		s += fmt.Sprintf(" seq=%d", inv.Seq)
	}
	return s
}

// valid reports whether inv is well-formed.
func (inv *Invalidation) valid() error {
	switch inv.Kind {
	case InvalidateKey, InvalidateURL:
		if len(inv.Key) == 0 {
			return fmt.Errorf("store: invalidation %s: empty key", inv.Kind)
		}
	case InvalidatePrefix:
		if inv.Scheme == "" || inv.Host == "" {
			return fmt.Errorf("store: invalidation prefix: scheme and host are required")
		}
	case InvalidateTag:
		if inv.Tag == "" || len(inv.Tag) > 0xffff {
			return fmt.Errorf("store: invalidation tag: empty or over 65535 bytes")
		}
	case InvalidateAll:
	default:
		return fmt.Errorf("store: invalidation: unknown kind %d", inv.Kind)
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
func (inv *Invalidation) apply(w *shm.Writer) int {
	switch inv.Kind {
	case InvalidateKey:
		if inv.Soft {
			if w.MarkStale(inv.Key) {
				return 1
			}
			return 0
		}
		if w.Delete(inv.Key) {
			return 1
		}
		return 0
	case InvalidateURL:
		n := 0
		if inv.Soft {
			if w.MarkStale(inv.Key) {
				n++
			}
		} else if w.Delete(inv.Key) {
			n++
		}
		return n + w.PurgeTag(shm.VariantTag(inv.Key), inv.Soft)
	case InvalidatePrefix:
		s, h := hostPart(inv.Scheme, inv.Host)
		t := []byte(inv.Target)
		return w.PurgeFunc(func(key []byte) bool { return prefixMatch(key, s, h, t) }, inv.Soft)
	case InvalidateTag:
		return w.PurgeTag(inv.Tag, inv.Soft)
	case InvalidateAll:
		return w.PurgeFunc(nil, inv.Soft)
	}
	return 0
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

func (f *filter) add(inv *Invalidation) {
	f.n++
	l := level(inv.Soft)
	if inv.Soft && (!f.hasSoft || inv.at < f.softAt) {
		f.softAt, f.hasSoft = inv.at, true
	}
	set := func(m *map[string]int8, k string) {
		if *m == nil {
			*m = map[string]int8{}
		}
		(*m)[k] = max((*m)[k], l)
	}
	switch inv.Kind {
	case InvalidateKey:
		set(&f.keys, string(inv.Key))
	case InvalidateURL:
		set(&f.urls, string(inv.Key))
	case InvalidatePrefix:
		s, h := hostPart(inv.Scheme, inv.Host)
		f.prefixes = append(f.prefixes, prefixRule{s, h, []byte(inv.Target), l})
	case InvalidateTag:
		set(&f.tags, inv.Tag)
	case InvalidateAll:
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
