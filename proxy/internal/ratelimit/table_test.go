package ratelimit

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// TestGCRA walks one key through the algorithm's cases: a full bucket,
// the steady rate, a partial refill, and a bucket that never exceeds
// burst however long the key was quiet.
func TestGCRA(t *testing.T) {
	tb := NewTable(Rule{Interval: 100 * ms, Burst: 3}, 10) // 10/s, burst 3
	for i, st := range []struct {
		at        int64
		allowed   bool
		remaining int64
		wait      int64
	}{
		{0, true, 2, 100 * ms},
		{0, true, 1, 200 * ms},
		{0, true, 0, 300 * ms},
		{0, false, 0, 100 * ms}, // one frees in 100ms
		{50 * ms, false, 0, 50 * ms},
		{100 * ms, true, 0, 300 * ms},
		{250 * ms, true, 0, 250 * ms}, // 1.5 intervals later: one, and half of the next
		{300 * ms, true, 0, 300 * ms},
		{300 * ms, false, 0, 100 * ms},
		{10_000 * ms, true, 2, 100 * ms}, // quiet for long: a full bucket of 3, not more
		{10_000 * ms, true, 1, 200 * ms},
		{10_000 * ms, true, 0, 300 * ms},
		{10_000 * ms, false, 0, 100 * ms},
	} {
		d := tb.Take("k", st.at)
		if d.Allowed != st.allowed || d.Remaining != st.remaining || d.Wait != st.wait {
			t.Errorf("#%d at %dms: %+v; want allowed %v remaining %d wait %dms", i, st.at/ms, d, st.allowed, st.remaining, st.wait/ms)
		}
	}
	if tb.Len() != 1 || tb.Evictions() != 0 {
		t.Errorf("len %d evictions %d", tb.Len(), tb.Evictions())
	}
}

// TestTableLRUBound: 100k distinct keys through a table of 10k: it holds
// at most its capacity, counts every eviction, keeps recently used keys,
// and its memory stays bounded by the capacity, not the keys seen.
func TestTableLRUBound(t *testing.T) {
	const n, capKeys = 100_000, 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := NewTable(Rule{Interval: ms, Burst: 1}, capKeys)
	hot := "hot-key"
	for i := range n {
		tb.Take("client-"+strconv.Itoa(i), int64(i))
		if i%100 == 0 {
			tb.Take(hot, int64(i)) // used often: never the least recent in its shard
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	l := tb.Len()
	if l > tb.Cap() || tb.Cap() > capKeys+Shards {
		t.Errorf("len %d cap %d; want len <= cap <= %d", l, tb.Cap(), capKeys+Shards)
	}
	if got := tb.Evictions(); got != uint64(n+1-l) {
		t.Errorf("evictions %d; want %d (every key beyond those held)", got, n+1-l)
	}
	if _, blocked := tb.Blocked(hot, 0); !blocked {
		t.Errorf("the hot key was evicted")
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	perKey := grown / int64(l)
	t.Logf("%d keys held after %d: heap +%d KiB, %d bytes a key", l, n, grown>>10, perKey)
	if perKey > 400 {
		t.Errorf("%d bytes a key; want at most 400", perKey)
	}
	runtime.KeepAlive(tb)
}

// TestTableConcurrent: goroutines taking from one key and from their own
// keys at one instant get exactly burst each; -race checks the locking.
func TestTableConcurrent(t *testing.T) {
	tb := NewTable(Rule{Interval: int64(time.Second), Burst: 100}, 1000)
	var shared atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := 0
			for range 200 {
				if tb.Take("shared", 0).Allowed {
					shared.Add(1)
				}
				if tb.Take(fmt.Sprint("own-", g), 0).Allowed {
					own++
				}
			}
			if own != 100 {
				t.Errorf("goroutine %d: own key allowed %d; want 100", g, own)
			}
		}()
	}
	wg.Wait()
	if shared.Load() != 100 {
		t.Errorf("shared key allowed %d; want 100", shared.Load())
	}
}

// TestBlock: Blocked reports keys blocked until later, and does not add
// keys it does not know.
func TestBlock(t *testing.T) {
	tb := NewTable(Rule{Interval: ms, Burst: 1}, 100)
	if _, b := tb.Blocked("x", 0); b || tb.Len() != 0 {
		t.Fatal("unknown key blocked or added")
	}
	tb.Block("x", 50)
	if w, b := tb.Blocked("x", 20); !b || w != 30 {
		t.Errorf("at 20: %d %v; want 30 true", w, b)
	}
	if _, b := tb.Blocked("x", 50); b {
		t.Errorf("at 50: still blocked")
	}
}

// BenchmarkTableTake is a decision for a key already in the table: no
// allocation.
func BenchmarkTableTake(b *testing.B) {
	tb := NewTable(Rule{Interval: 1, Burst: 1 << 40}, 100_000)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0.0." + strconv.Itoa(i)
		tb.Take(keys[i], 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tb.Take(keys[i&1023], int64(i))
	}
}

// BenchmarkTableTakeParallel: decisions on all cores for keys spread over
// the shards (run with -cpu 1,2 to see the scaling).
func BenchmarkTableTakeParallel(b *testing.B) {
	benchTakeParallel(b, func(keys []string, g int64) []string { return keys })
}

// BenchmarkTableTakeParallelOwnKeys is BenchmarkTableTakeParallel with
// each goroutine deciding for keys of its own: what the table costs when
// the cores share no key (no entry moves between them).
func BenchmarkTableTakeParallelOwnKeys(b *testing.B) {
	benchTakeParallel(b, func(keys []string, g int64) []string { return keys[g*256%4096:][:256] })
}

// benchTakeParallel runs decisions on all cores over 4,096 keys already in
// a table, each goroutine (numbered g from 0) cycling through the keys
// mine gives it from a starting point of its own, and reports the
// process's CPU per decision.
func benchTakeParallel(b *testing.B, mine func(keys []string, g int64) []string) {
	tb := NewTable(Rule{Interval: 1, Burst: 1 << 40}, 100_000)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		tb.Take(keys[i], 0)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		g := seq.Add(1) - 1
		ks := mine(keys, g)
		mask := len(ks) - 1 // a power of two: no division per decision
		for i := int(g * 977); pb.Next(); i++ {
			tb.Take(ks[i&mask], int64(i))
		}
	})
	if c := processCPU() - cpu; c > 0 {
		b.ReportMetric(float64(c)/float64(b.N), "cpu-ns/op")
	}
}
