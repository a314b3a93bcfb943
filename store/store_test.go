package store

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itemFor(key []byte, nowMs int64, ttl time.Duration, tags ...string) *shm.Item {
	return &shm.Item{Key: key, Status: 200, Body: []byte("body of " + string(key)), StoredMs: nowMs,
		ExpiresMs: nowMs + ttl.Milliseconds(), Tags: tags, Header: http.Header{"Content-Type": {"text/plain"}}}
}

func urlKey(host, target string) []byte { return shm.AppendKey(nil, "GET", "http", host, target) }

func has(s *Store, key []byte, nowMs int64) bool {
	_, ok := s.Get(key, nowMs)
	return ok
}

// TestDeadline covers the last servable moment of an entry.
func TestDeadline(t *testing.T) {
	const now = 1_000_000
	cases := []struct {
		name            string
		stored, expires int64
		swr, sie        uint32
		flags           uint16
		validator       bool
		grace, want     int64
	}{
		{"fresh only", now, now + 1000, 0, 0, 0, false, 0, now + 1000},
		{"swr window", now, now + 1000, 30, 0, 0, false, 0, now + 31000},
		{"sie longer than swr", now, now + 1000, 30, 60, 0, false, 0, now + 61000},
		{"must-revalidate ignores windows", now, now + 1000, 30, 60, shm.FlagMustRevalidate, false, 0, now + 1000},
		{"soft-purged: windows from stored", now, 0, 30, 0, 0, false, 0, now + 30000},
		{"grace needs a validator", now, now + 1000, 0, 0, 0, false, 5000, now + 1000},
		{"grace with validator", now, now + 1000, 0, 0, 0, true, 5000, now + 6000},
	}
	for _, tc := range cases {
		if got := deadline(tc.stored, tc.expires, tc.swr, tc.sie, tc.flags, tc.validator, tc.grace); got != tc.want {
			t.Errorf("%s: deadline %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestExpirySweep: expired entries are never served and the sweeper
// removes them, touching only the expired ones.
func TestExpirySweep(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.SweepInterval = 10 * time.Millisecond
	s := mustOpen(t, t.TempDir(), o)
	var short, long [][]byte
	for i := 0; i < 200; i++ {
		k := urlKey("e.test", fmt.Sprint("/s", i))
		short = append(short, k)
		it := itemFor(k, c.Ms(), time.Minute)
		it.SWR = 30 // servable stale for 30s more
		putAll(t, s, it)
		k = urlKey("e.test", fmt.Sprint("/l", i))
		long = append(long, k)
		putAll(t, s, itemFor(k, c.Ms(), time.Hour))
	}
	flush(t, s)
	c.Add(80 * time.Second) // past the fresh minute, inside the SWR window
	if !has(s, short[0], c.Ms()) {
		t.Fatal("entry inside its stale-while-revalidate window not served")
	}
	c.Add(20 * time.Second) // past the window
	for _, k := range short {
		if has(s, k, c.Ms()) {
			t.Fatalf("expired entry %q served", k)
		}
	}
	waitFor(t, "sweep", 10*time.Second, func() bool { return s.Stats().Entries == int64(len(long)) })
	for _, k := range long {
		if !has(s, k, c.Ms()) {
			t.Fatalf("live entry %q lost", k)
		}
	}
	if st := s.Stats(); st.Expired != uint64(len(short)) {
		t.Errorf("Expired = %d, want %d", st.Expired, len(short))
	}
	// Nothing of the expired entries is left in any index.
	for _, p := range []byte{pRec, pInfo, pOrder, pExp} {
		if n := countPrefix(t, s, []byte{p}); n != len(long) {
			t.Errorf("prefix %#x holds %d keys, want %d", p, n, len(long))
		}
	}
}

func countPrefix(t testing.TB, s *Store, p []byte) int {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	end := prefixEnd(p)
	for ok := it.SeekGE(p); ok && (end == nil || string(it.Key()) < string(end)); ok = it.Next() {
		n++
	}
	return n
}

// TestDeadOnArrival: a Put that is already past its deadline removes the
// older version instead of being written.
func TestDeadOnArrival(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	k := urlKey("d.test", "/")
	putAll(t, s, itemFor(k, c.Ms(), time.Hour))
	flush(t, s)
	putAll(t, s, itemFor(k, c.Ms(), -time.Second))
	flush(t, s)
	if has(s, k, c.Ms()) || s.Stats().Entries != 0 {
		t.Fatal("dead-on-arrival put left the older version")
	}
}

// TestDiskBound fills a store past MaxDisk: the lowest-score entries are
// evicted, recently used ones survive, and after compaction the disk use
// is under the bound.
func TestDiskBound(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.MaxDisk = 16 << 20
	o.UseFlushInterval = 20 * time.Millisecond
	s := mustOpen(t, t.TempDir(), o)
	n := 16000 // about 64 MiB of records before compression...
	body := func(id int) []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(mix(uint64(id*4096 + i))) // incompressible
		}
		return b
	}
	keep := map[int]bool{}
	for id := 0; id < n; id++ {
		it := &shm.Item{Key: genKey(id), Status: 200, Body: body(id), StoredMs: c.Ms(), ExpiresMs: c.Ms() + 3600_000}
		putAll(t, s, it)
		if id < 50 {
			keep[id] = true
		}
		c.Add(time.Millisecond)
		if id%1000 == 999 {
			flush(t, s)
			// Use the first 50 entries often: they must outrank newer ones.
			for k := range keep {
				if _, ok := s.Get(genKey(k), c.Ms()); !ok {
					t.Fatalf("entry %d evicted while in use (after %d puts)", k, id+1)
				}
			}
			time.Sleep(40 * time.Millisecond) // let the uses flush
		}
	}
	flush(t, s)
	st := s.Stats()
	t.Logf("live %d KiB, disk %d KiB, entries %d, evicted %d", st.LiveBytes>>10, st.DiskBytes>>10, st.Entries, st.Evicted)
	if st.LiveBytes > o.MaxDisk*3/4 {
		t.Errorf("live bytes %d over 3/4 of MaxDisk %d", st.LiveBytes, o.MaxDisk)
	}
	if st.Evicted == 0 || st.Entries+int64(st.Evicted) != int64(n) {
		t.Errorf("entries %d + evicted %d != puts %d", st.Entries, st.Evicted, n)
	}
	for k := range keep {
		if !has(s, genKey(k), c.Ms()) {
			t.Errorf("frequently used entry %d was evicted", k)
		}
	}
	// The newest entries are there, the oldest unused ones are not.
	if !has(s, genKey(n-1), c.Ms()) {
		t.Error("newest entry evicted")
	}
	if has(s, genKey(100), c.Ms()) {
		t.Error("an old unused entry survived while newer ones were evicted")
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	// Obsolete files are deleted in the background.
	waitFor(t, "disk use under MaxDisk after compaction", 20*time.Second, func() bool {
		return int64(s.db.Metrics().DiskSpaceUsage()) <= o.MaxDisk
	})
}

// TestInvalidationOrdering queues puts and invalidations without letting
// the writer run in between, then checks the result is the sequential one:
// a put queued before a purge never resurrects after it; one queued after
// survives.
func TestInvalidationOrdering(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.BatchDelay = 50 * time.Millisecond // let everything pile up in the queue
	o.BatchSize = 1 << 20
	dir := t.TempDir()
	s := mustOpen(t, dir, o)
	now := c.Ms()
	a, b, v := urlKey("o.test", "/a"), urlKey("o.test", "/b"), urlKey("o.test", "/v")
	variant := shm.AppendVary(v, []shm.VaryField{{Name: "accept", Present: true, Value: "x"}})
	s.Put(itemFor(a, now, time.Hour, "t"))
	s.Put(itemFor(b, now, time.Hour, "t"))
	s.Put(itemFor(variant, now, time.Hour))
	s.Purge(invalidate.TagPurge("t", invalidate.Hard)) // removes a, b
	s.Put(itemFor(b, now+1, time.Hour))                // b comes back, newer, untagged
	s.Purge(keyPurge(v, false))                        // removes the variant
	s.Put(itemFor(a, now+2, time.Hour, "t"))
	s.Purge(invalidate.TagPurge("t", invalidate.Hard)) // removes the second a
	s.Purge(invalidate.TagPurge("none", invalidate.Hard))
	s.SetAppliedSeq(42)
	// Before anything is written, reads already honour the queued purges.
	for _, k := range [][]byte{a, variant} {
		if has(s, k, now) {
			t.Fatalf("%q visible while its purge is queued", k)
		}
	}
	flush(t, s)
	check := func(s *Store) {
		t.Helper()
		if has(s, a, now) || has(s, variant, now) {
			t.Fatal("a purged entry came back")
		}
		got, ok := s.Get(b, now)
		if !ok || got.StoredMs != now+1 {
			t.Fatalf("the put after the purge was lost: %v %+v", ok, got)
		}
		if s.AppliedSeq() != 42 {
			t.Fatalf("AppliedSeq = %d, want 42", s.AppliedSeq())
		}
	}
	check(s)
	s.Close()
	check(mustOpen(t, dir, testOpts(t, c)))
}

// TestPendingInvalidationHidesReads: between an invalidation call and its
// commit, Get must not return what it covers.
func TestPendingInvalidationHidesReads(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.BatchDelay = 200 * time.Millisecond // the writer waits: purges stay queued
	o.BatchSize = 1 << 20
	s := mustOpen(t, t.TempDir(), o)
	now := c.Ms()
	keys := map[string][]byte{}
	for i := 0; i < 50; i++ {
		k := urlKey(fmt.Sprintf("h%d.test", i%2), fmt.Sprintf("/x/%d", i))
		keys[string(k)] = k
		putAll(t, s, itemFor(k, now, time.Hour, fmt.Sprint("t", i%5)))
	}
	flush(t, s)
	for round, inv := range []inval{
		purgeInval(invalidate.TagPurge("t1", invalidate.Hard)),
		purgeInval(invalidate.PrefixPurge("HTTP", "H0.test:80", "/x/1", invalidate.Hard)),
		exactInval(urlKey("h1.test", "/x/3"), false),
		purgeInval(invalidate.AllPurge(invalidate.Hard)),
	} {
		before := map[string]bool{}
		for ks, k := range keys {
			before[ks] = has(s, k, now)
		}
		if err := s.invalidate(inv, nil); err != nil {
			t.Fatal(err)
		}
		if s.Stats().QueuedInvalidations != 1 {
			t.Fatalf("round %d: the invalidation is not queued any more; the test needs it queued", round)
		}
		f := &filter{}
		f.add(&inv)
		for ks, k := range keys {
			got := has(s, k, now)
			p, _ := shm.SplitKey(k)
			tag := fmt.Sprint("t", mustAtoi(string(p.Target[3:]))%5)
			covered := f.match(k, appendStr16(nil, tag)) == 2
			if covered && got {
				t.Fatalf("round %d (%s): %q served after the call", round, inv, k)
			}
			if !covered && got != before[ks] {
				t.Fatalf("round %d (%s): %q changed though not covered", round, inv, k)
			}
		}
		flush(t, s)
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestSoftPurge marks entries stale: served (expires 0) while a stale
// window lasts, gone after.
func TestSoftPurge(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	now := c.Ms()
	withSWR := itemFor(urlKey("s.test", "/swr"), now, time.Hour, "t")
	withSWR.SWR = 60
	plain := itemFor(urlKey("s.test", "/plain"), now, time.Hour, "t")
	putAll(t, s, withSWR, plain)
	flush(t, s)
	if _, err := s.Purge(invalidate.TagPurge("t", invalidate.Soft)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	got, ok := s.Get(withSWR.Key, now)
	if !ok || got.ExpiresMs != now || string(got.Body) != string(withSWR.Body) {
		t.Fatalf("soft-purged entry with SWR: %v %+v", ok, got)
	}
	if has(s, plain.Key, now) {
		t.Fatal("soft-purged entry without a stale window still served")
	}
	c.Add(61 * time.Second)
	if has(s, withSWR.Key, c.Ms()) {
		t.Fatal("soft-purged entry served past its window")
	}
	if st := s.Stats(); st.Softened != 1 || st.Deleted != 1 {
		t.Errorf("softened %d deleted %d, want 1 1", st.Softened, st.Deleted)
	}
	// The tag index still finds it: a hard purge removes it.
	c.Add(-61 * time.Second)
	s.Purge(invalidate.TagPurge("t", invalidate.Hard))
	flush(t, s)
	if has(s, withSWR.Key, c.Ms()) || s.Stats().Entries != 0 {
		t.Fatal("hard purge after soft purge left the entry")
	}
}

// TestDeletePrefix purges by scheme, host and target prefix, over several
// methods, examining only that host's keys.
func TestDeletePrefix(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	now := c.Ms()
	type k struct {
		method, scheme, host, target string
		gone                         bool
	}
	keys := []k{
		{"GET", "http", "p.test", "/api/1", true},
		{"GET", "http", "p.test", "/api/2?q", true},
		{"HEAD", "http", "p.test", "/api/3", true},
		{"GET", "http", "p.test:80", "/api/4", true}, // default port: same host
		{"GET", "http", "p.test", "/apx", false},
		{"GET", "https", "p.test", "/api/1", false},
		{"GET", "http", "q.test", "/api/1", false},
		{"GET", "http", "p.test:8080", "/api/1", false},
		{"PURGE", "http", "p.test", "/api/9", true},
	}
	for _, x := range keys {
		putAll(t, s, itemFor(shm.AppendKey(nil, x.method, x.scheme, x.host, x.target), now, time.Hour))
	}
	for i := 0; i < 1000; i++ { // other hosts: not examined
		putAll(t, s, itemFor(urlKey(fmt.Sprintf("other%d.test", i), "/api/1"), now, time.Hour))
	}
	flush(t, s)
	v0 := s.Stats().Visited
	if _, err := s.Purge(invalidate.PrefixPurge("HTTP", "P.test", "/api/", invalidate.Hard)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	for _, x := range keys {
		if got := has(s, shm.AppendKey(nil, x.method, x.scheme, x.host, x.target), now); got == x.gone {
			t.Errorf("%s %s://%s%s: present=%v", x.method, x.scheme, x.host, x.target, got)
		}
	}
	if v := s.Stats().Visited - v0; v > 10 {
		t.Errorf("prefix purge examined %d entries; the host has 7", v)
	}
}

// TestPurgeAll empties the store and its counters.
func TestPurgeAll(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	s := mustOpen(t, dir, testOpts(t, c))
	for id := 0; id < 300; id++ {
		putAll(t, s, genItem(id, 1, c.Ms(), time.Hour, 10, 100))
	}
	s.Purge(invalidate.AllPurge(invalidate.Hard))
	putAll(t, s, genItem(1, 2, c.Ms(), time.Hour, 10, 100))
	flush(t, s)
	if st := s.Stats(); st.Entries != 1 {
		t.Fatalf("entries %d after PurgeAll and one put", st.Entries)
	}
	s.Close()
	s = mustOpen(t, dir, testOpts(t, c))
	if st := s.Stats(); st.Entries != 1 || st.LiveBytes <= 0 {
		t.Fatalf("after reopen: entries %d live %d", st.Entries, st.LiveBytes)
	}
	if it, ok := s.Get(genKey(1), c.Ms()); !ok || it.Header.Get("X-Ver") != "2" {
		t.Fatal("the put after PurgeAll was lost")
	}
}

// TestTagPurgeCost purges 10k tagged entries among 200k: the purge
// examines only the tagged ones (Stats.Visited) and its time does not grow
// with the rest of the store.
func TestTagPurgeCost(t *testing.T) {
	total, tagged := 200_000, 10_000
	if testing.Short() || raceEnabled {
		total, tagged = 40_000, 2_000
	}
	c := newClock()
	o := testOpts(t, c)
	o.CompressMin = -1
	s := mustOpen(t, t.TempDir(), o)
	now := c.Ms()
	for id := 0; id < total; id++ {
		it := &shm.Item{Key: genKey(id), Status: 200, Body: []byte("x"), StoredMs: now, ExpiresMs: now + 3600_000,
			Tags: []string{groupTag(id % groups)}}
		if id%(total/tagged) == 0 {
			it.Tags = append(it.Tags, "hot")
		}
		putAll(t, s, it)
	}
	flush(t, s)
	v0 := s.Stats().Visited
	start := time.Now()
	s.Purge(invalidate.TagPurge("hot", invalidate.Hard))
	flush(t, s)
	el := time.Since(start)
	st := s.Stats()
	t.Logf("purged %d tagged of %d entries in %v, examined %d", tagged, total, el, st.Visited-v0)
	if st.Visited-v0 != uint64(tagged) || st.Deleted != uint64(tagged) {
		t.Errorf("examined %d, deleted %d; want %d and %d", st.Visited-v0, st.Deleted, tagged, tagged)
	}
	if st.Entries != int64(total-tagged) {
		t.Errorf("entries %d, want %d", st.Entries, total-tagged)
	}
	// A purge of a tag no entry carries costs nothing, whatever the size.
	v0 = s.Stats().Visited
	s.Purge(invalidate.TagPurge("nobody", invalidate.Hard))
	flush(t, s)
	if v := s.Stats().Visited - v0; v != 0 {
		t.Errorf("purging an unused tag examined %d entries", v)
	}
}

// TestPutNeverBlocks floods a tiny queue: Puts return at once and drops
// are counted.
func TestPutNeverBlocks(t *testing.T) {
	c := newClock()
	o := testOpts(t, c)
	o.Queue = 8
	s := mustOpen(t, t.TempDir(), o)
	it := genItem(1, 1, c.Ms(), time.Hour, 4096, 4096)
	var worst time.Duration
	for i := 0; i < 20000; i++ {
		it.Key = genKey(i)
		t0 := time.Now()
		s.Put(it)
		worst = max(worst, time.Since(t0))
	}
	flush(t, s)
	st := s.Stats()
	t.Logf("worst Put %v, enqueued %d dropped %d", worst, st.Enqueued, st.Dropped)
	if st.Dropped == 0 {
		t.Error("no drops with a queue of 8")
	}
	if st.Enqueued+st.Dropped != 20000 {
		t.Errorf("enqueued %d + dropped %d != 20000", st.Enqueued, st.Dropped)
	}
	// A gross bound, as in TestFullDisk: the drops above are what shows
	// that a full queue sheds instead of waiting; the goroutine can wait
	// for a P (110-180 ms under -race on two busy CPUs) without Put
	// waiting on anything.
	if worst > 500*time.Millisecond {
		t.Errorf("a Put took %v", worst)
	}
}

// TestAppliedSeqPersists: SetAppliedSeq survives a reopen, the last one
// queued winning.
func TestAppliedSeqPersists(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testOpts(t, nil))
	s.Purge(invalidate.TagPurge("x", invalidate.Hard))
	s.SetAppliedSeq(5)
	s.SetAppliedSeq(6)
	flush(t, s)
	if s.AppliedSeq() != 6 {
		t.Fatalf("AppliedSeq %d", s.AppliedSeq())
	}
	s.Close()
	if s := mustOpen(t, dir, testOpts(t, nil)); s.AppliedSeq() != 6 {
		t.Fatalf("after reopen AppliedSeq %d", s.AppliedSeq())
	}
}

// TestClosed: operations after Close fail cleanly.
func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testOpts(t, nil))
	s.Close()
	s.Put(genItem(1, 1, 1, time.Hour, 1, 1))
	if _, ok := s.Get(genKey(1), 1); ok {
		t.Error("Get after Close hit")
	}
	if err := s.Flush(context.Background()); err != ErrClosed {
		t.Errorf("Flush after Close: %v", err)
	}
	if _, err := s.Purge(invalidate.AllPurge(invalidate.Hard)); err != ErrClosed {
		t.Errorf("PurgeAll after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
