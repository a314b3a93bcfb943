package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchBody bounds: 1-3 KiB bodies make entries of 1.3-3.3 KiB with key
// and headers, about 2.3 KiB on average: 500k entries are 1.1 GiB.
const benchMinBody, benchMaxBody = 1 << 10, 3 << 10

// benchStore builds (once, cached under the temp dir) a store of n
// entries written through Put, and returns its directory.
func benchStore(b *testing.B, n int) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("zerohop-store-bench-%d", n))
	if _, err := os.Stat(dir + ".complete"); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	os.Remove(dir + ".complete")
	o := testOpts(b, nil)
	o.Queue = 4096
	s, err := Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	start := time.Now()
	var body int64
	for id := 0; id < n; id++ {
		it := genItem(id, 1, now, 30*24*time.Hour, benchMinBody, benchMaxBody)
		body += int64(len(it.Body))
		putAll(b, s, it)
	}
	flush(b, s)
	el := time.Since(start)
	st := s.Stats()
	b.Logf("built bench store: %d entries, %d MiB of bodies in %v (%.0f MB/s, %.0f puts/s); live %d MiB, disk %d MiB, compressed %d raw %d",
		n, body>>20, el.Round(time.Millisecond), float64(body)/el.Seconds()/1e6, float64(n)/el.Seconds(),
		st.LiveBytes>>20, st.DiskBytes>>20, st.CompressedBodies, st.RawBodies)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(dir+".complete", nil, 0o644)
	return dir
}

// BenchmarkRefill measures warm-start refill throughput: n (default 500k,
// ZEROHOP_BENCH_ENTRIES) entries of 1-3 KiB bodies from Pebble into a new
// shared-memory file on /dev/shm. MB/s counts the shared-memory bytes
// written (entry header, key, headers, body); the target is 200 MB/s.
func BenchmarkRefill(b *testing.B) {
	n := envInt("ZEROHOP_BENCH_ENTRIES", 500_000)
	dir := benchStore(b, n)
	o := testOpts(b, nil)
	o.RefillBudget = 1 << 40
	s, err := Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	shmRoot := "/dev/shm"
	if _, err := os.Stat(shmRoot); err != nil {
		shmRoot = os.TempDir()
	}
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		sd, err := os.MkdirTemp(shmRoot, "zerohop-refill-bench-")
		if err != nil {
			b.Fatal(err)
		}
		w, err := shm.OpenWriter(sd, &shm.Options{Size: 2 << 30, RegionSize: 16 << 20, ExpectedEntries: int64(n) * 5 / 4,
			NoSalvage: true, Logger: quietLogger(b)})
		if err != nil {
			os.RemoveAll(sd)
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		start := time.Now()
		put, err := s.Refill(context.Background(), w, nil)
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		rs := s.RefillProgress()
		ws := w.Stats()
		w.Close()
		os.RemoveAll(sd)
		if err != nil {
			b.Fatal(err)
		}
		if put != n {
			b.Fatalf("refill put %d entries, want %d (skipped %d)", put, n, rs.Skipped)
		}
		b.ReportMetric(float64(ws.BytesWritten)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(put)/el.Seconds(), "entries/s")
		b.ReportMetric(float64(ws.BytesWritten)/(1<<20), "MiB")
		b.ReportMetric(float64(ws.BytesWritten)/cpu.Seconds()/1e6, "MB/cpu-s")
		b.Logf("refill: %d entries, %d MiB into shm in %v", put, ws.BytesWritten>>20, el.Round(time.Millisecond))
	}
}

// BenchmarkWrite measures the writer's sustained throughput: Puts of 1-3
// KiB bodies committed to Pebble (compression included), flushed at the end.
func BenchmarkWrite(b *testing.B) {
	o := testOpts(b, nil)
	o.Queue = 4096
	s := mustOpen(b, b.TempDir(), o)
	now := time.Now().UnixMilli()
	items := make([]*shm.Item, 4096)
	for i := range items {
		items[i] = genItem(i, 1, now, time.Hour, benchMinBody, benchMaxBody)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var body int64
	for i := 0; i < b.N; i++ {
		it := items[i%len(items)]
		body += int64(len(it.Body))
		putAll(b, s, it)
	}
	flush(b, s)
	b.SetBytes(body / int64(b.N))
}

// BenchmarkPut measures the cost of an accepted Store.Put to the caller:
// encoding the item (1-3 KiB body) into a queued record. The writer is
// held off (queue drained outside the timer every 1024 Puts), so that no
// Put is dropped and the writer does not compete for the CPU.
func BenchmarkPut(b *testing.B) {
	o := testOpts(b, nil)
	o.Queue = 2048
	o.BatchDelay = time.Hour // the writer waits; Flush wakes it
	o.BatchSize = 1 << 20
	s := mustOpen(b, b.TempDir(), o)
	s.testNoSync = true
	now := time.Now().UnixMilli()
	items := make([]*shm.Item, 1024)
	for i := range items {
		items[i] = genItem(i, 1, now, time.Hour, benchMinBody, benchMaxBody)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 && i > 0 {
			b.StopTimer()
			flush(b, s)
			b.StartTimer()
		}
		s.Put(items[i%len(items)])
	}
	b.StopTimer()
	if st := s.Stats(); st.Dropped > 0 {
		b.Fatalf("%d Puts dropped", st.Dropped)
	}
}

// benchGetStore is a store of 20k entries for the read benchmarks.
func benchGetStore(b *testing.B) (*Store, [][]byte) {
	o := testOpts(b, nil)
	s := mustOpen(b, b.TempDir(), o)
	now := time.Now().UnixMilli()
	var keys [][]byte
	for id := 0; id < 20000; id++ {
		it := genItem(id, 1, now, 24*time.Hour, benchMinBody, benchMaxBody)
		putAll(b, s, it)
		keys = append(keys, it.Key)
	}
	flush(b, s)
	return s, keys
}

// BenchmarkGet measures a second-tier read: Pebble lookup, verification,
// decompression and a new Item.
func BenchmarkGet(b *testing.B) {
	s, keys := benchGetStore(b)
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := s.Get(keys[(i*7919)%len(keys)], now); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkPromote measures a shared-memory miss served by promotion
// (Tier.GetStale: miss, store read, put into shared memory, read again).
func BenchmarkPromote(b *testing.B) {
	s, keys := benchGetStore(b)
	var w *shm.Writer
	fresh := func() {
		if w != nil {
			w.Close()
		}
		w = openShm(b, b.TempDir(), nil)
	}
	fresh()
	buf := make([]byte, 0, 8<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(keys) == 0 && i > 0 {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		_, out, ok := NewTier(w, s).GetStale(buf[:0], keys[i%len(keys)])
		if !ok {
			b.Fatal("miss")
		}
		buf = out
	}
}
