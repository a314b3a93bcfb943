package store

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

func openShm(t testing.TB, dir string, c *clock) *shm.Writer {
	t.Helper()
	o := &shm.Options{Size: 64 << 20, RegionSize: 1 << 20, NoSalvage: true, Logger: quietLogger(t)}
	if c != nil {
		o.Now = c.Now
	}
	w, err := shm.OpenWriter(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// entryItem turns a shared-memory entry back into an Item.
func entryItem(e *shm.Entry) *shm.Item {
	it := &shm.Item{Key: e.Key, Status: e.Status, Header: http.Header{}, Body: e.Body, StoredMs: e.StoredMs,
		ExpiresMs: e.ExpiresMs, InitialAge: e.InitialAge, SWR: e.SWR, SIE: e.SIE, Flags: e.Flags,
		ETag: string(e.ETag), LastModified: string(e.LastModified)}
	for h := shm.NewHeaderIter(e.Headers); h.Next(); {
		it.Header[string(h.Name())] = append(it.Header[string(h.Name())], string(h.Value()))
	}
	for s := shm.NewStringIter(e.Vary); s.Next(); {
		it.Vary = append(it.Vary, s.String())
	}
	for s := shm.NewStringIter(e.Tags); s.Next(); {
		it.Tags = append(it.Tags, s.String())
	}
	return it
}

func shmHas(w *shm.Writer, key []byte) (*shm.Item, bool) {
	e, _, ok := w.GetStale(nil, key)
	if !ok {
		return nil, false
	}
	return entryItem(&e), true
}

// TestRefill refills an empty shared-memory file: every live entry comes
// back exactly, expired ones do not, soft-purged ones come back stale.
func TestRefill(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	const n = 3000
	items := map[int]*shm.Item{}
	for id := 0; id < n; id++ {
		ttl := time.Hour
		if id%10 == 3 {
			ttl = time.Second // expired by refill time (SWR/SIE < 10s)
		}
		it := genItem(id, 1, c.Ms(), ttl, 10, 3000)
		items[id] = it
		putAll(t, s, it)
		c.Add(time.Millisecond)
	}
	purgeAt := c.Ms()
	s.Purge(invalidate.TagPurge(groupTag(5), invalidate.Soft))
	flush(t, s)
	c.Add(4 * time.Second)
	w := openShm(t, t.TempDir(), c)
	calls := 0
	entries := int(s.Stats().Entries)
	put, err := s.Refill(context.Background(), w, func(done, total int) {
		calls++
		if total != entries {
			t.Errorf("progress total %d, want %d", total, entries)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := s.RefillProgress()
	t.Logf("refill: %+v, %d progress calls", rs, calls)
	if !rs.Finished || rs.Fraction() != 1 || calls == 0 {
		t.Errorf("refill stats %+v, calls %d", rs, calls)
	}
	want := 0
	for id, it := range items {
		wantIt := *it
		if id%groups == 5 {
			wantIt.ExpiresMs = min(wantIt.ExpiresMs, purgeAt)
		}
		live := deadline(wantIt.StoredMs, wantIt.ExpiresMs, wantIt.SWR, wantIt.SIE, wantIt.Flags, true, 0) > c.Ms()
		got, ok := shmHas(w, it.Key)
		switch {
		case !live:
			if ok {
				t.Errorf("id %d: expired entry refilled", id)
			}
		case !ok:
			t.Errorf("id %d: not refilled", id)
		default:
			want++
			if err := sameItem(got, &wantIt, false); err != nil {
				t.Errorf("id %d: %v", id, err)
			}
		}
	}
	if put != want || int(rs.Put) != want {
		t.Errorf("put %d (stats %d), want %d", put, rs.Put, want)
	}
}

// TestRefillOrderAndBudget: with a budget smaller than the store, the
// refill puts the highest-score entries: the most recently and most often
// used.
func TestRefillOrderAndBudget(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.UseFlushInterval = 10 * time.Millisecond
	s := mustOpen(t, t.TempDir(), o)
	const n = 2000
	for id := 0; id < n; id++ {
		putAll(t, s, genItem(id, 1, c.Ms(), 24*time.Hour, 1000, 1000))
		c.Add(time.Second)
	}
	flush(t, s)
	// Entries 0-9 are old but used a lot.
	for i := 0; i < 64; i++ {
		for id := 0; id < 10; id++ {
			if _, ok := s.Get(genKey(id), c.Ms()); !ok {
				t.Fatal("miss")
			}
		}
	}
	waitFor(t, "uses flushed", 5*time.Second, func() bool {
		s.umu.Lock()
		defer s.umu.Unlock()
		return len(s.uses) == 0
	})
	flush(t, s)
	w := openShm(t, t.TempDir(), c)
	probe := newScratch()
	it0, _ := s.Get(genKey(0), c.Ms())
	probe.it = *it0
	probe.hv = len(shm.AppendHeaderBlock(nil, it0.Header))
	per := probe.shmSize()
	s.opts.RefillBudget = per * 200 // about 10%
	put, err := s.Refill(context.Background(), w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.RefillProgress().BudgetHit || put < 190 || put > 210 {
		t.Fatalf("put %d, stats %+v", put, s.RefillProgress())
	}
	for id := 0; id < 10; id++ {
		if _, ok := shmHas(w, genKey(id)); !ok {
			t.Errorf("often-used entry %d not refilled", id)
		}
	}
	for id := n - 150; id < n; id++ {
		if _, ok := shmHas(w, genKey(id)); !ok {
			t.Errorf("recent entry %d not refilled", id)
		}
	}
	for id := 10; id < n-300; id++ {
		if _, ok := shmHas(w, genKey(id)); ok {
			t.Errorf("old unused entry %d refilled before newer ones", id)
		}
	}
}

// TestRefillWhileServing: invalidations and newer puts made through the
// Tier during a refill are never undone by it.
func TestRefillWhileServing(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	const n = 4000
	for id := 0; id < n; id++ {
		putAll(t, s, genItem(id, 1, c.Ms(), time.Hour, 10, 500))
		c.Add(time.Millisecond)
	}
	flush(t, s)
	c.Add(time.Second)
	w := openShm(t, t.TempDir(), c)
	tier := NewTier(w, s)
	// Entry 0 has the lowest score: refilled last.
	newer := genItem(0, 2, c.Ms(), time.Hour, 10, 500)
	first := true
	_, err := tier.Refill(context.Background(), func(done, total int) {
		if !first {
			return
		}
		first = false
		tier.PurgeTag(groupTag(3), false)
		tier.PurgeTag(groupTag(4), true)
		tier.Purge(invalidate.PrefixPurge("http", genHost(1), "/p1", invalidate.Hard)) // ids ≡ 1 mod 4 and ≡ 1 mod 8: id%8 == 1
		tier.Delete(genKey(2))
		if err := tier.Put(newer); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if first {
		t.Fatal("progress never called mid-refill")
	}
	for id := 0; id < n; id++ {
		got, ok := shmHas(w, genKey(id))
		switch {
		case id == 0:
			if !ok || got.Header.Get("X-Ver") != "2" {
				t.Fatalf("the newer put was overwritten by the refill: %v %v", ok, got)
			}
		case id%groups == 3, id%8 == 1, id == 2:
			if ok {
				t.Errorf("id %d: purged during the refill, but refilled", id)
			}
		case id%groups == 4:
			if ok && got.ExpiresMs > c.Ms() {
				t.Errorf("id %d: soft-purged during the refill, but refilled fresh: expires %d stored %d now %d", id, got.ExpiresMs, got.StoredMs, c.Ms())
			}
		case !ok:
			t.Errorf("id %d: missing", id)
		}
	}
	// The store agrees after the queue drains.
	flush(t, s)
	for id := 0; id < n; id++ {
		it, ok := s.Get(genKey(id), c.Ms())
		purged := id%groups == 3 || id%8 == 1 || id == 2
		if ok == purged && !(id%groups == 4 && !ok) {
			t.Errorf("store: id %d present=%v", id, ok)
		}
		if id == 0 && (!ok || it.Header.Get("X-Ver") != "2") {
			t.Errorf("store lost the newer put")
		}
	}
}

// TestPromotion: a shared-memory miss that the store holds is served from
// it and promoted.
func TestPromotion(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	w1 := openShm(t, t.TempDir(), c)
	t1 := NewTier(w1, s)
	for id := 0; id < 100; id++ {
		if err := t1.Put(genItem(id, 1, c.Ms(), time.Hour, 10, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	w2 := openShm(t, t.TempDir(), c) // the tmpfs was lost
	t2 := NewTier(w2, s)
	for id := 0; id < 100; id++ {
		e, _, ok := t2.GetStale(nil, genKey(id))
		if !ok {
			t.Fatalf("id %d: second tier miss", id)
		}
		if _, err := checkGen(entryItem(&e), id, 10, 3000); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Promoted != 100 {
		t.Errorf("Promoted = %d", st.Promoted)
	}
	for id := 0; id < 100; id++ {
		if _, _, ok := w2.GetStale(nil, genKey(id)); !ok {
			t.Fatalf("id %d not in shared memory after promotion", id)
		}
		t2.GetStale(nil, genKey(id))
	}
	if st := s.Stats(); st.Promoted != 100 {
		t.Errorf("hits after promotion went to the store: Promoted = %d", st.Promoted)
	}
	w3 := openShm(t, t.TempDir(), c)
	// Memory-only tier.
	tm := NewTier(w3, nil)
	if err := tm.Put(genItem(7, 1, c.Ms(), time.Hour, 10, 10)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := tm.GetStale(nil, genKey(7)); !ok || tm.PurgeTag(groupTag(7), false) != 1 {
		t.Error("memory-only tier")
	}
}

// TestPromotionRacesInvalidation: promotions racing purges never bring a
// purged entry back into shared memory.
func TestPromotionRacesInvalidation(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	const n = 400
	for round := 0; round < 5; round++ {
		w := openShm(t, t.TempDir(), c)
		tier := NewTier(w, s)
		for id := 0; id < n; id++ {
			putAll(t, s, genItem(id, uint64(round+1), c.Ms(), time.Hour, 10, 200))
		}
		flush(t, s)
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 1))
				for !stop.Load() {
					tier.GetStale(nil, genKey(r.IntN(n)))
				}
			}(uint64(round*10 + g))
		}
		for g := 0; g < groups; g++ {
			tier.PurgeTag(groupTag(g), false)
			time.Sleep(time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		for id := 0; id < n; id++ {
			if _, _, ok := w.GetStale(nil, genKey(id)); ok {
				t.Fatalf("round %d: id %d back in shared memory after its purge", round, id)
			}
			if _, ok := s.Get(genKey(id), c.Ms()); ok {
				t.Fatalf("round %d: id %d in the store after its purge", round, id)
			}
		}
	}
}
