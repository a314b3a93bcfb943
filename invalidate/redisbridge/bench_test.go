package redisbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/zerohop/zerohop/invalidate"
)

// BenchmarkRedisEndToEnd: from Append in pod A to pod B's tailer having
// applied the record, through pod A's bridge, Redis (Unix socket) and pod
// B's bridge and log (target p99 < 10 ms).
//
//	cd invalidate/redisbridge && go test -run '^$' -bench RedisEndToEnd -benchtime 2000x .
func BenchmarkRedisEndToEnd(b *testing.B) {
	rs := startRedis(b)
	pa := newBenchPod(b, "pod-a", rs)
	pb := newBenchPod(b, "pod-b", rs)
	time.Sleep(200 * time.Millisecond)
	h := hdrhistogram.New(1, int64(10*time.Second), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := pa.log.Append(ctx, invalidate.TagRecord("bench", invalidate.Hard)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-pb.appliedCh:
		case <-ctx.Done():
			b.Fatal("not delivered")
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
	}
	b.StopTimer()
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-ns")
	b.ReportMetric(float64(h.Max()), "max-ns")
}
