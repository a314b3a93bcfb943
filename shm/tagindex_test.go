package shm_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// taggedHeap fills a 64 MiB cache with n entries, each carrying a tag of
// its own (a tag per product), and returns the writer's live heap growth
// per entry: the cost of the private tag index (the entries themselves
// are in the mapping, not the heap).
func taggedHeap(tb testing.TB, n int, tag func(i int) string) float64 {
	tb.Helper()
	w, err := shm.OpenWriter(tb.TempDir(), &shm.Options{Size: 64 << 20, Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	items := make([]*shm.Item, n)
	for i := range items {
		items[i] = item(fmt.Sprintf("/products/%d", i), "b", tag(i))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, it := range items {
		if err := w.Put(it); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := w.Stats().Entries // a few are evicted from full bucket pairs
	if live < uint64(n)*9/10 {
		tb.Fatalf("%d entries live of %d put", live, n)
	}
	runtime.KeepAlive(items)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(live)
}

// TestTagIndexHeapPerEntry bounds the heap the writer spends per tagged
// entry. The index used to be a map of tag strings to maps, about 500 B
// per entry with a tag of its own (40 MB for a 64 MiB cache); it now holds
// tag hashes in flat maps.
func TestTagIndexHeapPerEntry(t *testing.T) {
	const n = 50000
	for _, tt := range []struct {
		name string
		tag  func(i int) string
	}{
		{"a tag each", func(i int) string { return fmt.Sprintf("product-%d", i) }},
		{"100 shared tags", func(i int) string { return fmt.Sprintf("group-%d", i%100) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			per := taggedHeap(t, n, tt.tag)
			t.Logf("tag index: %.0f B of heap per tagged entry (%d entries, %s)", per, n, tt.name)
			if per > 100 {
				t.Errorf("%.0f B of heap per tagged entry; want at most 100", per)
			}
		})
	}
}

func BenchmarkTagIndexHeap(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(taggedHeap(b, 50000, func(i int) string { return fmt.Sprintf("product-%d", i) }), "heap-B/entry")
	}
}

// TestTagIndexOverflow: past MaxTagPostings the index is dropped and purges
// by tag scan every entry; they stay exact (every carrier, nothing else),
// and once the postings fit again a scan rebuilds the index.
func TestTagIndexOverflow(t *testing.T) {
	w, r, _ := openPair(t, &shm.Options{Size: 4 << 20, RegionSize: 256 << 10, MaxTagPostings: 100, Logger: quietLogger()})
	const n = 300
	for i := 0; i < n; i++ {
		if err := w.Put(item(fmt.Sprintf("/p/%d", i), "b", fmt.Sprintf("t%d", i%10), "all")); err != nil {
			t.Fatal(err)
		}
	}
	if k := len(w.TaggedKeys("t3")); k != n/10 {
		t.Fatalf("TaggedKeys(t3) over the bound: %d keys; want %d", k, n/10)
	}
	if got := w.PurgeTag("t3", false); got != n/10 {
		t.Fatalf("PurgeTag(t3) over the bound removed %d; want %d", got, n/10)
	}
	for i := 0; i < n; i++ {
		_, _, hit := r.Get(nil, key(fmt.Sprintf("/p/%d", i)), time.Now().UnixMilli())
		if hit == (i%10 == 3) {
			t.Fatalf("/p/%d: hit %v after purging t3", i, hit)
		}
	}
	// Purging everything by a tag every entry carries leaves no postings:
	// that scan rebuilds the index, and new entries are indexed again.
	if got := w.PurgeTag("all", false); got != n-n/10 {
		t.Fatalf("PurgeTag(all) removed %d; want %d", got, n-n/10)
	}
	for i := 0; i < 20; i++ {
		if err := w.Put(item(fmt.Sprintf("/q/%d", i), "b", fmt.Sprintf("u%d", i%2), "all")); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.PurgeTag("u1", true); got != 10 {
		t.Fatalf("soft PurgeTag(u1) marked %d; want 10", got)
	}
	if got := len(w.TaggedKeys("all")); got != 20 {
		t.Fatalf("TaggedKeys(all) = %d; want 20", got)
	}
	if got := w.PurgeTag("u0", false); got != 10 {
		t.Fatalf("PurgeTag(u0) removed %d; want 10", got)
	}
	if got := len(w.TaggedKeys("all")); got != 10 {
		t.Fatalf("TaggedKeys(all) after purging u0 = %d; want 10", got)
	}
}
