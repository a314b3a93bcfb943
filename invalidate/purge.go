package invalidate

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/zerohop/zerohop/shm"
)

// Purge is one invalidation, decoded from a record once (ParsePurge) or made
// by the proxy (KeyPurge, after an unsafe method). Every tier applies the
// same value through a Purger.
type Purge struct {
	// Kind is KindKey, KindPrefix, KindTag or KindAll.
	Kind Kind
	// Mode is Hard (remove) or Soft (mark stale from the purge on).
	Mode Mode
	// Scheme and Host name the origin of a KindKey or KindPrefix purge,
	// normalised as in a cache key (lower case, default port removed).
	Scheme, Host string
	// Target is, for KindKey, the request target (path and query) whose
	// primary key and Vary variants go; for KindPrefix, what the targets
	// start with ("" for the whole host).
	Target string
	// Tag is the surrogate key of a KindTag purge.
	Tag string
}

// Purger is a cache tier that applies purges: the shared-memory cache
// (ShmPurger), the Pebble store (store.Store) and both in order
// (store.Tier). removed is how many entries the call removed or marked
// stale, when the tier knows it at once (the store applies purges in the
// background and reports 0). An invalid p is an error wrapping
// ErrUnknownKind or ErrBadPayload and changes nothing.
type Purger interface {
	Purge(p Purge) (removed int, err error)
}

// MaxTag is the longest surrogate key a cached entry can carry, so the
// longest a tag purge may name.
const MaxTag = 0xffff

// ParsePurge decodes a record into the purge it asks for: the one parser of
// records' payloads. A KindMark record, or one of an unknown kind or mode,
// is ErrUnknownKind; a payload unfit for its kind is ErrBadPayload. Both
// errors name the record's sequence number.
func ParsePurge(rec Record) (Purge, error) {
	p := Purge{Kind: rec.Kind, Mode: rec.Mode}
	if !rec.Kind.Known() || !rec.Mode.Known() {
		return p, fmt.Errorf("%w: %s/%s (record %d)", ErrUnknownKind, rec.Kind, rec.Mode, rec.Seq)
	}
	var err error
	switch rec.Kind {
	case KindKey:
		p.Scheme, p.Host, p.Target, err = SplitURL(string(rec.Payload))
	case KindPrefix:
		p.Scheme, p.Host, p.Target, err = SplitPrefix(string(rec.Payload))
	case KindTag:
		p.Tag = string(rec.Payload)
	}
	if err == nil {
		p = p.normalised()
		err = p.Validate()
	}
	if err != nil {
		return p, fmt.Errorf("%w (record %d)", err, rec.Seq)
	}
	return p, nil
}

// KeyPurge returns the purge of one URL's primary key and every Vary
// variant of it.
func KeyPurge(scheme, host, target string, mode Mode) Purge {
	return Purge{Kind: KindKey, Mode: mode, Scheme: scheme, Host: host, Target: target}.normalised()
}

// PrefixPurge returns the purge of every entry of scheme://host whose
// target starts with prefix.
func PrefixPurge(scheme, host, prefix string, mode Mode) Purge {
	return Purge{Kind: KindPrefix, Mode: mode, Scheme: scheme, Host: host, Target: prefix}.normalised()
}

// TagPurge returns the purge of every entry carrying the surrogate key tag.
func TagPurge(tag string, mode Mode) Purge { return Purge{Kind: KindTag, Mode: mode, Tag: tag} }

// AllPurge returns the purge of everything.
func AllPurge(mode Mode) Purge { return Purge{Kind: KindAll, Mode: mode} }

// normalised returns p with its scheme and host as a cache key holds them.
func (p Purge) normalised() Purge {
	if p.Kind != KindKey && p.Kind != KindPrefix {
		return p
	}
	if k, ok := shm.SplitKey(shm.AppendKey(nil, "", p.Scheme, p.Host, "")); ok {
		p.Scheme, p.Host = string(k.Scheme), string(k.Host)
	}
	return p
}

// Soft reports whether p marks stale rather than removes.
func (p Purge) Soft() bool { return p.Mode == Soft }

// Validate checks that p is one a tier can apply: a known kind and mode,
// and the fields its kind needs.
func (p Purge) Validate() error {
	if !p.Kind.Known() || !p.Mode.Known() {
		return fmt.Errorf("%w: %s/%s", ErrUnknownKind, p.Kind, p.Mode)
	}
	switch p.Kind {
	case KindKey, KindPrefix:
		if p.Scheme == "" || p.Host == "" {
			return fmt.Errorf("%w: %s purge without a scheme and host", ErrBadPayload, p.Kind)
		}
		if p.Kind == KindKey && p.Target == "" {
			return fmt.Errorf("%w: key purge without a target", ErrBadPayload)
		}
	case KindTag:
		if p.Tag == "" || len(p.Tag) > MaxTag {
			return fmt.Errorf("%w: tag of %d bytes (1 to %d)", ErrBadPayload, len(p.Tag), MaxTag)
		}
	}
	return nil
}

// Key returns the primary key of a KindKey purge (a GET of its URL).
func (p Purge) Key() []byte { return shm.AppendKey(nil, http.MethodGet, p.Scheme, p.Host, p.Target) }

// matcher returns a predicate over cache keys that is true for the keys a
// KindPrefix purge covers: same scheme and host, target starting with the
// prefix, any method and variant.
func (p Purge) matcher() func(key []byte) bool {
	q := p.normalised()
	s, h, t := []byte(q.Scheme), []byte(q.Host), []byte(q.Target)
	return func(key []byte) bool {
		k, ok := shm.SplitKey(key)
		return ok && bytes.Equal(k.Scheme, s) && bytes.Equal(k.Host, h) && bytes.HasPrefix(k.Target, t)
	}
}

// String formats p for logs.
func (p Purge) String() string {
	switch p.Kind {
	case KindKey, KindPrefix:
		return fmt.Sprintf("%s/%s %s://%s%s", p.Kind, p.Mode, p.Scheme, p.Host, p.Target)
	case KindTag:
		return fmt.Sprintf("%s/%s %q", p.Kind, p.Mode, p.Tag)
	}
	return fmt.Sprintf("%s/%s", p.Kind, p.Mode)
}

// ShmPurger is the shared-memory cache as a Purger.
type ShmPurger struct{ w *shm.Writer }

// NewShmPurger returns w as a Purger.
func NewShmPurger(w *shm.Writer) ShmPurger { return ShmPurger{w: w} }

// Purge applies p to the shared-memory cache:
//   - KindKey: the URL's primary key (GET) and every Vary variant of it;
//   - KindPrefix: every key of the same scheme and host whose target starts
//     with the prefix;
//   - KindTag: every entry carrying the surrogate key;
//   - KindAll: everything.
//
// Applying a purge twice is harmless.
func (sp ShmPurger) Purge(p Purge) (n int, err error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	w, soft := sp.w, p.Soft()
	switch p.Kind {
	case KindKey:
		key := p.Key()
		var ok bool
		if soft {
			ok = w.MarkStale(key)
		} else {
			ok = w.Delete(key)
		}
		if ok {
			n++
		}
		n += w.PurgeTag(shm.VariantTag(key), soft)
	case KindPrefix:
		n = w.PurgeFunc(p.matcher(), soft)
	case KindTag:
		n = w.PurgeTag(p.Tag, soft)
	case KindAll:
		n = w.PurgeFunc(nil, soft)
	}
	return n, nil
}
