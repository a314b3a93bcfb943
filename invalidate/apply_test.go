package invalidate_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

func newCache(t testing.TB) *shm.Writer {
	w, err := shm.OpenWriter(t.TempDir(), &shm.Options{Size: 8 << 20, RegionSize: 1 << 20, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func put(t testing.TB, w *shm.Writer, key []byte, tags ...string) {
	t.Helper()
	now := time.Now()
	if err := w.Put(&shm.Item{Key: key, Status: 200, Header: http.Header{}, Body: []byte("b"), StoredMs: now.UnixMilli(),
		ExpiresMs: now.Add(time.Hour).UnixMilli(), Tags: tags}); err != nil {
		t.Fatal(err)
	}
}

func key(scheme, host, target string) []byte { return shm.AppendKey(nil, "GET", scheme, host, target) }

func variant(primary []byte, lang string) []byte {
	return shm.AppendVary(append([]byte(nil), primary...), []shm.VaryField{{Name: "accept-language", Present: true, Value: lang}})
}

// state returns "fresh", "stale" or "gone" for key.
func state(w *shm.Writer, k []byte) string {
	if _, _, ok := w.Get(nil, k, time.Now().UnixMilli()); ok {
		return "fresh"
	}
	if _, _, ok := w.GetStale(nil, k); ok {
		return "stale"
	}
	return "gone"
}

func TestApplyToCache(t *testing.T) {
	items := map[string][]byte{
		"item42":     key("http", "catalog.internal", "/items/42"),
		"item42q":    key("http", "catalog.internal", "/items/42?x=1"),
		"item43":     key("http", "catalog.internal", "/items/43"),
		"other":      key("http", "other.internal", "/items/42"),
		"https":      key("https", "catalog.internal", "/items/42"),
		"users":      key("http", "catalog.internal", "/users/1"),
		"item42-en":  variant(key("http", "catalog.internal", "/items/42"), "en"),
		"item42-fr":  variant(key("http", "catalog.internal", "/items/42"), "fr"),
		"items-list": key("http", "catalog.internal", "/items"),
	}
	tags := map[string][]string{
		"item42": {"product:42"}, "item43": {"product:43", "list"}, "items-list": {"list"},
		"item42-en": {shm.VariantTag(items["item42"])}, "item42-fr": {shm.VariantTag(items["item42"])},
	}
	for _, tc := range []struct {
		name string
		rec  invalidate.Record
		want map[string]string // items whose state changes; all others stay fresh
		n    uint64
	}{
		{"key hard removes variants", invalidate.KeyRecord("http://CATALOG.internal:80/items/42#frag", invalidate.Hard),
			map[string]string{"item42": "gone", "item42-en": "gone", "item42-fr": "gone"}, 3},
		{"key soft", invalidate.KeyRecord("http://catalog.internal/items/42", invalidate.Soft),
			map[string]string{"item42": "stale", "item42-en": "stale", "item42-fr": "stale"}, 3},
		{"key with query is exact", invalidate.KeyRecord("http://catalog.internal/items/42?x=1", invalidate.Hard),
			map[string]string{"item42q": "gone"}, 1},
		{"prefix", invalidate.PrefixRecord("http://catalog.internal/items/", invalidate.Hard),
			map[string]string{"item42": "gone", "item42q": "gone", "item43": "gone", "item42-en": "gone", "item42-fr": "gone"}, 5},
		{"prefix without slash", invalidate.PrefixRecord("http://catalog.internal/items", invalidate.Soft),
			map[string]string{"item42": "stale", "item42q": "stale", "item43": "stale", "item42-en": "stale", "item42-fr": "stale", "items-list": "stale"}, 6},
		{"prefix whole host", invalidate.PrefixRecord("HTTPS://catalog.internal:443", invalidate.Hard),
			map[string]string{"https": "gone"}, 1},
		{"tag", invalidate.TagRecord("list", invalidate.Hard), map[string]string{"item43": "gone", "items-list": "gone"}, 2},
		{"tag soft", invalidate.TagRecord("product:42", invalidate.Soft), map[string]string{"item42": "stale"}, 1},
		{"all hard", invalidate.AllRecord(invalidate.Hard), map[string]string{"*": "gone"}, 9},
		{"all soft", invalidate.AllRecord(invalidate.Soft), map[string]string{"*": "stale"}, 9},
		{"no match", invalidate.KeyRecord("http://nowhere/", invalidate.Hard), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCache(t)
			for name, k := range items {
				put(t, w, k, tags[name]...)
			}
			a := invalidate.NewApplier(invalidate.NewShmPurger(w))
			if err := a.Apply(tc.rec); err != nil {
				t.Fatal(err)
			}
			for name, k := range items {
				want := "fresh"
				if s, ok := tc.want[name]; ok {
					want = s
				} else if s, ok := tc.want["*"]; ok {
					want = s
				}
				if got := state(w, k); got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
			if s := a.Stats(); s.Removed != tc.n {
				t.Errorf("removed %d, want %d", s.Removed, tc.n)
			}
			// Applying again is harmless.
			if err := a.Apply(tc.rec); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestApplyToCacheRejects(t *testing.T) {
	w := newCache(t)
	k := key("http", "h", "/")
	put(t, w, k, "t")
	a := invalidate.NewApplier(invalidate.NewShmPurger(w))
	for _, tc := range []struct {
		rec  invalidate.Record
		want error
	}{
		{invalidate.Record{Kind: 42}, invalidate.ErrUnknownKind},
		{invalidate.Record{Kind: invalidate.KindAll, Mode: 5}, invalidate.ErrUnknownKind},
		{invalidate.Record{Kind: invalidate.KindKey, Payload: []byte("/relative")}, invalidate.ErrBadPayload},
		{invalidate.Record{Kind: invalidate.KindPrefix, Payload: []byte("nohost")}, invalidate.ErrBadPayload},
		{invalidate.Record{Kind: invalidate.KindTag}, invalidate.ErrBadPayload},
	} {
		if err := a.Apply(tc.rec); !errors.Is(err, tc.want) {
			t.Errorf("%v: %v, want %v", tc.rec, err, tc.want)
		}
	}
	if err := a.Apply(invalidate.Record{Kind: invalidate.KindMark, Seq: 5}); err != nil {
		t.Error("mark:", err)
	}
	if state(w, k) != "fresh" {
		t.Fatal("a rejected record changed the cache")
	}
	if s := a.Stats(); s.Unknown != 2 || s.BadPayload != 3 {
		t.Fatalf("stats %+v", s)
	}
	w.SetInvalidation(7, 99)
	r, err := shm.Open(w.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.InvalidationSeq() != 7 {
		t.Fatalf("published seq %d", r.InvalidationSeq())
	}
}
