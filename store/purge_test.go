package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// TestPurgeModelBothTiers applies one invalidation-log record, through
// invalidate.Applier and the Tier, to a real shared-memory file and a real
// Pebble store, for each kind and mode, and checks every entry in each
// tier on its own: shared memory as the app reads it, the store before
// and after a reopen (what a restart would refill from).
func TestPurgeModelBothTiers(t *testing.T) {
	v42 := urlKey("catalog.test", "/items/42")
	variant := func(lang string) []byte {
		return shm.AppendVary(append([]byte(nil), v42...), []shm.VaryField{{Name: "accept-language", Present: true, Value: lang}})
	}
	items := map[string][]byte{
		"item42":     v42,
		"item42q":    urlKey("catalog.test", "/items/42?x=1"),
		"item43":     urlKey("catalog.test", "/items/43"),
		"items-list": urlKey("catalog.test", "/items"),
		"users":      urlKey("catalog.test", "/users/1"),
		"other":      urlKey("other.test", "/items/42"),
		"https":      shm.AppendKey(nil, "GET", "https", "catalog.test", "/items/42"),
		"item42-en":  variant("en"),
		"item42-fr":  variant("fr"),
	}
	tags := map[string][]string{
		"item42": {"product:42"}, "item43": {"product:43", "list"}, "items-list": {"list"},
		"item42-en": {shm.VariantTag(v42)}, "item42-fr": {shm.VariantTag(v42)},
	}
	type want map[string]string // entries whose state changes; "*" for all; others stay fresh
	cases := []struct {
		name string
		rec  invalidate.Record
		want want
	}{
		{"key", invalidate.KeyRecord("http://CATALOG.test:80/items/42#frag", invalidate.Hard),
			want{"item42": "gone", "item42-en": "gone", "item42-fr": "gone"}},
		{"prefix", invalidate.PrefixRecord("http://catalog.test/items", invalidate.Hard),
			want{"item42": "gone", "item42q": "gone", "item43": "gone", "items-list": "gone", "item42-en": "gone", "item42-fr": "gone"}},
		{"prefix-host", invalidate.PrefixRecord("HTTPS://catalog.test:443", invalidate.Hard), want{"https": "gone"}},
		{"tag", invalidate.TagRecord("list", invalidate.Hard), want{"item43": "gone", "items-list": "gone"}},
		{"all", invalidate.AllRecord(invalidate.Hard), want{"*": "gone"}},
	}
	for _, tc := range cases {
		for _, mode := range []invalidate.Mode{invalidate.Hard, invalidate.Soft} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				c := newClock()
				dir := t.TempDir()
				s := mustOpen(t, dir, testOpts(t, c))
				w := openShm(t, t.TempDir(), c)
				tier := NewTier(w, s)
				now := c.Ms()
				for name, k := range items {
					it := itemFor(k, now, time.Hour, tags[name]...)
					it.SWR = 600 // a soft-purged entry stays servable (stale), so soft and hard differ
					if err := tier.Put(it); err != nil {
						t.Fatal(err)
					}
				}
				flush(t, s)
				c.Add(2 * time.Second)

				rec := tc.rec
				rec.Mode, rec.Seq = mode, 7
				a := invalidate.NewApplier(tier)
				if err := a.Apply(rec); err != nil {
					t.Fatal(err)
				}
				flush(t, s)
				c.Add(2 * time.Second)

				expect := func(name string) string {
					st, ok := tc.want[name]
					if !ok {
						st, ok = tc.want["*"]
					}
					switch {
					case !ok:
						return "fresh"
					case mode == invalidate.Soft:
						return "stale"
					}
					return st
				}
				changed := 0
				for name := range items {
					if expect(name) != "fresh" {
						changed++
					}
				}
				check := func(tierName string, state func(k []byte) string) {
					t.Helper()
					for name, k := range items {
						if got, want := state(k), expect(name); got != want {
							t.Errorf("%s: %s is %s, want %s", tierName, name, got, want)
						}
					}
				}
				check("shared memory", func(k []byte) string { return shmState(w, k, c.Ms()) })
				check("store", func(k []byte) string { return storeState(s, k, c.Ms()) })
				if st := a.Stats(); st.Removed != uint64(changed) {
					t.Errorf("applier counted %d removed, want %d", st.Removed, changed)
				}
				if st := s.Stats(); st.Deleted+st.Softened != uint64(changed) {
					t.Errorf("store deleted %d + softened %d, want %d", st.Deleted, st.Softened, changed)
				}
				if s.AppliedSeq() == rec.Seq {
					t.Errorf("the record's own sequence number reached the store")
				}
				s.Close()
				s2 := mustOpen(t, dir, testOpts(t, c))
				check("store after reopen", func(k []byte) string { return storeState(s2, k, c.Ms()) })
			})
		}
	}
}

// TestPurgeModelRejects: records the model refuses change neither tier and
// are counted by kind of refusal.
func TestPurgeModelRejects(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	w := openShm(t, t.TempDir(), c)
	tier := NewTier(w, s)
	k := urlKey("h.test", "/")
	it := itemFor(k, c.Ms(), time.Hour, "t")
	if err := tier.Put(it); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	a := invalidate.NewApplier(tier)
	for _, tc := range []struct {
		rec  invalidate.Record
		want error
	}{
		{invalidate.Record{Kind: 42}, invalidate.ErrUnknownKind},
		{invalidate.Record{Kind: invalidate.KindAll, Mode: 5}, invalidate.ErrUnknownKind},
		{invalidate.Record{Kind: invalidate.KindKey, Payload: []byte("/relative")}, invalidate.ErrBadPayload},
		{invalidate.Record{Kind: invalidate.KindPrefix, Payload: []byte("nohost")}, invalidate.ErrBadPayload},
		{invalidate.Record{Kind: invalidate.KindTag}, invalidate.ErrBadPayload},
		{invalidate.TagRecord(strings.Repeat("t", invalidate.MaxTag+1), invalidate.Hard), invalidate.ErrBadPayload},
	} {
		if err := a.Apply(tc.rec); !errors.Is(err, tc.want) {
			t.Errorf("%.80s: %v, want %v", tc.rec, err, tc.want)
		}
	}
	flush(t, s)
	if got := shmState(w, k, c.Ms()); got != "fresh" {
		t.Errorf("shared memory: %s after refused records", got)
	}
	if got := storeState(s, k, c.Ms()); got != "fresh" {
		t.Errorf("store: %s after refused records", got)
	}
	if st := a.Stats(); st.Unknown != 2 || st.BadPayload != 4 {
		t.Errorf("stats %+v, want 2 unknown, 4 bad payloads", st)
	}
	if st := s.Stats(); st.Invalidations != 0 {
		t.Errorf("the store applied %d invalidations", st.Invalidations)
	}
}

// shmState is "fresh", "stale" or "gone" for key in shared memory.
func shmState(w *shm.Writer, key []byte, nowMs int64) string {
	if _, _, ok := w.Get(nil, key, nowMs); ok {
		return "fresh"
	}
	if _, _, ok := w.GetStale(nil, key); ok {
		return "stale"
	}
	return "gone"
}

// storeState is "fresh", "stale" or "gone" for key in the store.
func storeState(s *Store, key []byte, nowMs int64) string {
	it, ok := s.Get(key, nowMs)
	switch {
	case !ok:
		return "gone"
	case it.ExpiresMs > nowMs:
		return "fresh"
	}
	return "stale"
}
