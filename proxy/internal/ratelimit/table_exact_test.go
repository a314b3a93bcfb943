package ratelimit

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// check verifies tb's structure, as only the shards' locks see it: each
// shard holds its count of keys, at most its bound, each once and where
// a probe from its home finds it.
func check(t *testing.T, tb *Table) {
	t.Helper()
	seen := map[string]bool{}
	for i := range tb.shards {
		s := &tb.shards[i]
		s.mu.Lock()
		a := tb.slots[i].Load()
		n := 0
		for j := range a.s {
			e := a.s[j].ent.Load()
			if (e == nil) != (a.s[j].hash.Load() == 0) {
				t.Fatalf("shard %d slot %d: hash and entry disagree", i, j)
			}
			if e == nil {
				continue
			}
			n++
			if seen[e.key] {
				t.Fatalf("key %q held twice", e.key)
			}
			seen[e.key] = true
			if shardOf(e.hash) != i || a.find(e.hash, e.key) != e || e.dead.Load() {
				t.Fatalf("key %q: not found from its home in shard %d (or dead)", e.key, i)
			}
		}
		if n != s.keys || n > tb.perShard {
			t.Fatalf("shard %d: %d entries, count %d, bound %d", i, n, s.keys, tb.perShard)
		}
		s.mu.Unlock()
	}
}

// TestTableConcurrentExact: goroutines hammering one key at once never
// get more than GCRA allows. At a fixed instant they get exactly the
// burst, and after the clock moves by k intervals exactly k more; with
// each goroutine reading a clock that another advances, at most burst
// plus the elapsed intervals. Run with -race.
func TestTableConcurrentExact(t *testing.T) {
	const goroutines, burst, interval = 8, 50, 1000
	hammer := func(tb *Table, tries int, now func() int64) int64 {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range tries {
					if tb.Take("k", now()).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return admitted.Load()
	}
	tb := NewTable(Rule{Interval: interval, Burst: burst}, 100)
	at := int64(0)
	fixed := func() int64 { return at }
	if n := hammer(tb, 100, fixed); n != burst {
		t.Fatalf("at one instant: %d admitted; want the burst, %d", n, burst)
	}
	for k := int64(1); k <= 20; k++ {
		at += k * interval
		if n := hammer(tb, 50, fixed); n != k {
			t.Fatalf("after %d intervals: %d admitted; want %d", k, n, k)
		}
	}
	if st := tb.Stats(); st.Allowed != burst+210 || st.Allowed+st.Refused != goroutines*(100+20*50) {
		t.Errorf("stats %+v: want %d allowed of %d", st, burst+210, goroutines*(100+20*50))
	}

	// A moving clock, read by each goroutine for each request.
	tb = NewTable(Rule{Interval: interval, Burst: burst}, 100)
	var clock atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				clock.Add(interval / 7)
			}
		}
	}()
	n := hammer(tb, 2000, clock.Load)
	close(stop)
	<-done
	if limit := burst + clock.Load()/interval; n > limit || n < burst {
		t.Errorf("moving clock: %d admitted; want between %d and burst + elapsed intervals = %d", n, burst, limit)
	}
}

// TestTableEvictionAtCapacity: a table at capacity keeps its bound while
// many goroutines bring new keys, counts every eviction and every
// decision (those made on an entry being evicted too), and forgets an
// evicted key's state: it starts again with a full bucket.
func TestTableEvictionAtCapacity(t *testing.T) {
	tb := NewTable(Rule{Interval: 1 << 30, Burst: 2}, 4*Shards) // 4 keys a shard
	const goroutines, per = 8, 3000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				k := strconv.Itoa(g*per + i)
				tb.Take(k, 0)
				tb.Take(k, 0)
				tb.Take("hot-"+strconv.Itoa(i%8), 0) // shared keys, taken while others evict
			}
		}()
	}
	wg.Wait()
	check(t, tb)
	st := tb.Stats()
	if st.Keys > tb.Cap() || st.Keys < tb.Cap()/2 {
		t.Errorf("%d keys held; want at most, and near, the capacity %d", st.Keys, tb.Cap())
	}
	if st.Allowed+st.Refused != 3*goroutines*per {
		t.Errorf("%d decisions counted; want %d", st.Allowed+st.Refused, 3*goroutines*per)
	}
	// Keys the table ever created = held + evicted: at least the distinct
	// ones (a hot key evicted and taken again is created again).
	if created := uint64(st.Keys) + st.Evictions; created < goroutines*per+8 {
		t.Errorf("held %d + evicted %d < %d distinct keys", st.Keys, st.Evictions, goroutines*per+8)
	}

	// Single-threaded: an evicted key is forgotten; a used one survives.
	tb = NewTable(Rule{Interval: 1 << 30, Burst: 2}, 1) // one key a shard
	tb.Take("a", 0)
	tb.Take("a", 0)
	if tb.Take("a", 0).Allowed {
		t.Fatal("a third request within the burst of 2 allowed")
	}
	// Fill a's shard with another key: a is evicted.
	h := tb.hash("a")
	for i := 0; ; i++ {
		k := "b" + strconv.Itoa(i)
		if shardOf(tb.hash(k)) == shardOf(h) {
			tb.Take(k, 0)
			break
		}
	}
	if ev := tb.Evictions(); ev != 1 {
		t.Fatalf("evictions %d; want 1", ev)
	}
	if d := tb.Take("a", 0); !d.Allowed || d.Remaining != 1 {
		t.Errorf("the evicted key: %+v; want a full bucket again", d)
	}
	check(t, tb)
}

// model is a plain GCRA map: what a table that never evicts decides.
type model map[string]int64

func (m model) take(r Rule, key string, now int64) Decision {
	tat, ok := m[key]
	if !ok {
		tat = now
	}
	d, next := r.take(tat, now)
	m[key] = next
	return d
}

// runModel applies ops (3 bytes each: operation, key, time step) to a
// table of maxKeys keys and to the model, and checks that every answer
// is the model's, or, when the table evicted some key since this one was
// last used, what a table that forgot it answers (the model forgets it
// too).
func runModel(t *testing.T, ops []byte, keys, maxKeys int) {
	r := Rule{Interval: 10, Burst: 3}
	tb := NewTable(r, maxKeys)
	m := model{}
	lastEv := map[string]uint64{} // the table's evictions after the key's last use
	now := int64(0)
	for ; len(ops) >= 3; ops = ops[3:] {
		op, key := ops[0]%4, "k"+strconv.Itoa(int(ops[1])%keys)
		now += int64(ops[2] % 16)
		evicted := tb.Evictions() != lastEv[key]
		switch op {
		case 0, 1: // Take
			got := tb.Take(key, now)
			_, held := m[key]
			if want := m.take(r, key, now); got != want {
				delete(m, key)
				fresh := m.take(r, key, now)
				if !evicted || !held || got != fresh {
					t.Fatalf("Take(%s, %d) = %+v; want %+v (evicted since its last use: %v, then %+v)", key, now, got, want, evicted, fresh)
				}
			}
		case 2: // Block
			until := now + int64(ops[2])
			tb.Block(key, until)
			tat, held := m[key]
			if !held {
				tat = until
			}
			m[key] = max(tat, until)
			if evicted {
				// The table may have forgotten the key: both agree again
				// only if its old TAT was not later; check on the next use.
				w, b := tb.Blocked(key, now)
				if wb := m[key] > now; b != wb || (b && w != m[key]-now) {
					if b != (until > now) || (b && w != until-now) {
						t.Fatalf("Block(%s, %d) after an eviction: %d %v", key, until, w, b)
					}
					m[key] = until
				}
			}
		case 3: // Blocked
			w, b := tb.Blocked(key, now)
			tat, held := m[key]
			if wb := held && tat > now; b != wb || (b && w != tat-now) {
				if !evicted || b {
					t.Fatalf("Blocked(%s, %d) = %d %v; model TAT %d (held %v, evicted since %v)", key, now, w, b, tat, held, evicted)
				}
				delete(m, key) // forgotten
			}
		}
		lastEv[key] = tb.Evictions()
	}
	check(t, tb)
	if maxKeys >= 2*keys*Shards && tb.Evictions() != 0 {
		t.Errorf("%d evictions in a table far larger than the keys", tb.Evictions())
	}
}

// TestTableModel: random operations on a table agree with a plain map
// of GCRA states: exactly when nothing is evicted, and up to forgetting
// evicted keys in a small table.
func TestTableModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 40 {
		ops := make([]byte, 3*2000)
		for i := range ops {
			ops[i] = byte(rng.Uint32())
		}
		keys := []int{4, 40, 256}[run%3]
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			runModel(t, ops, keys, 4*256*Shards) // never full
			runModel(t, ops, keys, 2*Shards)     // evicting
		})
	}
}

// FuzzTable is TestTableModel's check on fuzzed operations
// (go test -fuzz FuzzTable ./proxy/internal/ratelimit).
func FuzzTable(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x01\x01\x05\x02\x01\x09\x03\x01\x01"), uint16(64))
	f.Add(binary.LittleEndian.AppendUint64(nil, 0x0102030405060708), uint16(1))
	f.Fuzz(func(t *testing.T, ops []byte, maxKeys uint16) {
		runModel(t, ops, 200, int(maxKeys))
	})
}
