package tail_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/tail"
	"github.com/zerohop/zerohop/shm"
)

// BenchmarkAppendToApplied: from the start of Append to the moment an app
// sees the record applied in the cache file's header (target p99 < 1 ms).
// "spin" polls shm.Reader.InvalidationSeq in a loop: the tailer's own
// latency. "wait" uses invalidate.WaitApplied, as the Go client does, whose
// backoff adds up to its first sleep (50µs).
//
//	cd invalidate && go test -run '^$' -bench AppendToApplied -benchtime 20000x ./tail/
func BenchmarkAppendToApplied(b *testing.B) {
	for _, how := range []string{"spin", "wait"} {
		b.Run(how, func(b *testing.B) {
			dir := b.TempDir()
			w, err := shm.OpenWriter(filepath.Join(dir, "cache"), &shm.Options{Size: 8 << 20, RegionSize: 1 << 20, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			r, err := shm.Open(filepath.Join(dir, "cache"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			a := invalidate.NewApplier(invalidate.NewShmPurger(w))
			path := filepath.Join(dir, "inval", "inval.log")
			tl, err := tail.New(tail.Options{Path: path, Apply: a.Apply, Publish: w.SetInvalidation, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { tl.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			l := openLog(b, path, "bench")
			rec := invalidate.KeyRecord("http://catalog.internal/items/42", invalidate.Hard)
			h := hdrhistogram.New(1, int64(10*time.Second), 3)
			wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
			defer wcancel()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				seq, err := l.Append(wctx, rec)
				if err != nil {
					b.Fatal(err)
				}
				if how == "wait" {
					if err := invalidate.WaitApplied(wctx, r, seq); err != nil {
						b.Fatal(err)
					}
				} else {
					for r.InvalidationSeq() < seq {
						if wctx.Err() != nil {
							b.Fatal("not applied")
						}
					}
				}
				h.RecordValue(time.Since(t0).Nanoseconds())
			}
			b.StopTimer()
			b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-ns")
			b.ReportMetric(float64(h.Max()), "max-ns")
			b.ReportMetric(float64(tl.Stats().Rotations), "rotations")
		})
	}
}
