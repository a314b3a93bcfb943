package invalidate_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// Benchmarks (docs/invalidation.md, "Performance"):
//
//	cd invalidate && go test -run '^$' -bench . -benchtime 20000x ./...

// reportLatency reports a histogram's percentiles in nanoseconds.
func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-ns")
	b.ReportMetric(float64(h.Max()), "max-ns")
}

// BenchmarkAppend: one writer's append latency (lock, find the last
// sequence number, one write, unlock).
func BenchmarkAppend(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "inval.log"), "bench")
	ctx := context.Background()
	h := hdrhistogram.New(1, int64(time.Second), 3)
	rec := invalidate.KeyRecord("http://catalog.internal/items/42", invalidate.Hard)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := l.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
	}
	b.StopTimer()
	reportLatency(b, h)
}

// BenchmarkAppend4Processes: 4 writer processes appending at once; reports
// records/s over all of them (target >= 50k/s).
func BenchmarkAppend4Processes(b *testing.B) {
	const writers = 4
	per := max(b.N/writers, 1)
	path := filepath.Join(b.TempDir(), "inval.log")
	b.ResetTimer()
	start := time.Now()
	var procs []*os.Process
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		cmd := roleCommand("writer", "LOG="+path, "WRITER=w"+strconv.Itoa(w), "COUNT="+strconv.Itoa(per))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, cmd.Process)
		go func() { errs <- cmd.Wait() }()
	}
	b.Cleanup(func() {
		for _, p := range procs {
			p.Kill()
		}
	})
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start) // includes starting the processes
	b.StopTimer()
	b.ReportMetric(float64(writers*per)/el.Seconds(), "records/s")
}

// BenchmarkPurgeTag10k: purging a tag carried by 10k entries of a real
// cache, through the applier (target < 50 ms). The writer's PurgeTag walks
// only the tag's own index, so the cost is per tagged entry.
func BenchmarkPurgeTag10k(b *testing.B) {
	for _, mode := range []invalidate.Mode{invalidate.Hard, invalidate.Soft} {
		b.Run(mode.String(), func(b *testing.B) {
			w, err := shm.OpenWriter(b.TempDir(), &shm.Options{Size: 64 << 20, RegionSize: 1 << 20, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			a := invalidate.NewApplier(invalidate.NewShmPurger(w))
			keys := make([][]byte, 10000)
			for i := range keys {
				keys[i] = key("http", "catalog.internal", "/items/"+strconv.Itoa(i))
			}
			h := hdrhistogram.New(1, int64(10*time.Second), 3)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for _, k := range keys {
					put(b, w, k, "catalog", "item")
				}
				b.StartTimer()
				t0 := time.Now()
				if err := a.Apply(invalidate.TagRecord("catalog", mode)); err != nil {
					b.Fatal(err)
				}
				h.RecordValue(time.Since(t0).Nanoseconds())
			}
			b.StopTimer()
			if n := a.Stats().Removed; n != uint64(10000*b.N) {
				b.Fatalf("purged %d entries, want %d", n, 10000*b.N)
			}
			reportLatency(b, h)
		})
	}
}
