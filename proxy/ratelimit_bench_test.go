package proxy

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
)

// benchRequest is a request view with a fixed client address.
type benchRequest struct {
	remote string
}

func (r *benchRequest) Method() string              { return "GET" }
func (r *benchRequest) Host() string                { return "app.local" }
func (r *benchRequest) Target() string              { return "/" }
func (r *benchRequest) Field(string) string         { return "" }
func (r *benchRequest) RemoteAddr() string          { return r.remote }
func (r *benchRequest) Listener() string            { return "in" }
func (r *benchRequest) Route() string               { return "main" }
func (r *benchRequest) Consumer() string            { return "" }
func (r *benchRequest) SetConsumer(string)          {}
func (r *benchRequest) Destination() netip.AddrPort { return netip.AddrPort{} }

func benchLimitFilter(b testing.TB) *rateLimitFilter {
	g, err := newLimitRegistry(prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &config.Config{Limits: []config.Limit{{Name: "per-client", Rate: 1 << 40, Period: time.Second,
		Key: config.KeyClientAddress, MaxKeys: 100_000}}}
	set, err := g.build(cfg, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	return set.filters([]string{"per-client"})[0].(*rateLimitFilter)
}

// BenchmarkRateLimitFilter is a whole local decision as a request makes
// it: the client address as the key, the clock, the table, the counter.
// An existing key allocates nothing.
func BenchmarkRateLimitFilter(b *testing.B) {
	f := benchLimitFilter(b)
	reqs := make([]benchRequest, 256)
	for i := range reqs {
		reqs[i].remote = "10.1.0." + strconv.Itoa(i) + ":40000"
	}
	var a answer
	b.ReportAllocs()
	cpu := processCPU()
	n := 0
	for ; b.Loop(); n++ {
		if f.OnRequest(&reqs[n&255], &a) != filterContinue {
			b.Fatal("refused")
		}
	}
	if c := processCPU() - cpu; c > 0 {
		b.ReportMetric(float64(c)/float64(n), "cpu-ns/op")
	}
}

// BenchmarkRateLimitFilterParallel: the same on every core (-cpu 1,2).
func BenchmarkRateLimitFilterParallel(b *testing.B) {
	f := benchLimitFilter(b)
	reqs := make([]benchRequest, 4096)
	for i := range reqs {
		reqs[i].remote = "10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":40000"
	}
	var seed atomic.Int64
	b.ReportAllocs()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		var a answer
		i := int(seed.Add(977))
		for pb.Next() {
			i++
			f.OnRequest(&reqs[i&4095], &a)
		}
	})
	if c := processCPU() - cpu; c > 0 {
		b.ReportMetric(float64(c)/float64(b.N), "cpu-ns/op")
	}
}

// TestRateLimitFilterAllocs: an allowed decision for a known key
// allocates nothing.
func TestRateLimitFilterAllocs(t *testing.T) {
	f := benchLimitFilter(t)
	r := &benchRequest{remote: "10.0.0.1:5000"}
	var a answer
	f.OnRequest(r, &a)
	if n := testing.AllocsPerRun(1000, func() { f.OnRequest(r, &a) }); n != 0 {
		t.Errorf("%v allocations a decision; want 0", n)
	}
}
