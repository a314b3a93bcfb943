package proxy_test

import (
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// TestRateLimitAccuracy offers more than 1,000 requests/s to a route
// limited to 1,000/s (burst 100) through the real proxy on loopback, on
// the real clock, and counts what it lets through: burst + rate*D over D
// seconds, within the tolerance.
//
// Why the tolerance: GCRA lets through exactly burst + rate*(time
// between the first and the last decision) while it is kept busy, and
// never more. D is measured between the first and the last request sent;
// the decisions come one request's latency later (at both ends, so it
// cancels out but for the jitter: well under 10ms even on a loaded
// machine, 2*10ms*1000/s = 20 requests). A bucket that stays full is
// the one other error: when no request at all is sent for longer than
// burst/rate = 100ms (the process descheduled on a loaded machine), the
// tokens beyond burst are lost, so the test subtracts rate*(gap - 100ms)
// for each such gap in the send times (and skips, saying so, if that
// correction is more than 10%: the machine could not offer the load).
// Over D = 2s (2,100 expected) 20 requests are 1%: the default run
// allows 3%; ZEROHOP_LONG=1 runs D = 10s (10,100 expected) within the
// issue's 2%.
func TestRateLimitAccuracy(t *testing.T) {
	d, tol := 2*time.Second, 0.03
	if os.Getenv("ZEROHOP_LONG") != "" {
		d, tol = 10*time.Second, 0.02
	}
	const rate, burst = 1000, 100
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain,
			config: withLimits([]config.Limit{{Name: "thousand", Rate: rate, Period: time.Second, Burst: burst, Key: config.KeyAll}},
				[]string{"thousand"}, nil)})
		proxy.SetLimitClock(h.p, time.Now)
		h.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		h.get("/warm") // store /f's neighbour; the limit counts it, before the clock starts
		var ok, refused, other atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		sends := make([][]time.Time, 8)
		start := time.Now()
		for g := range sends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					sends[g] = append(sends[g], time.Now())
					resp, err := h.client.Get(h.url("/f"))
					if err != nil {
						other.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok.Add(1)
					case 429:
						refused.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		time.Sleep(d)
		close(stop)
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.SortedFunc(func(yield func(time.Time) bool) {
			for _, s := range sends {
				for _, ts := range s {
					if !yield(ts) {
						return
					}
				}
			}
		}, time.Time.Compare)
		span := all[len(all)-1].Sub(all[0])
		full := time.Duration(burst) * time.Second / rate
		var lost float64
		for i := 1; i < len(all); i++ {
			if gap := all[i].Sub(all[i-1]); gap > full {
				lost += rate * (gap - full).Seconds()
			}
		}
		// The /warm request took one token before the clock started.
		want := float64(burst-1) + rate*span.Seconds() - lost
		upper := float64(burst) + rate*elapsed.Seconds()
		got := float64(ok.Load())
		t.Logf("plain=%v: %v: %d allowed (want %.0f, of which %.0f lost to send gaps over %v), %d refused, %d other (%.0f requests/s offered)",
			plain, span.Round(time.Millisecond), ok.Load(), want, lost, full, refused.Load(), other.Load(), float64(len(all))/span.Seconds())
		if other.Load() > 0 {
			t.Errorf("plain=%v: %d requests neither allowed nor refused", plain, other.Load())
		}
		if got > upper {
			t.Errorf("plain=%v: %v allowed over %v; the limit allows at most %.0f", plain, got, elapsed, upper)
		}
		if refused.Load() < ok.Load()/10 || lost > want/10 {
			t.Skipf("plain=%v: the clients could not keep offering more than the limit (%d refused, %.0f tokens lost in gaps): the machine is too loaded to measure accuracy", plain, refused.Load(), lost)
		}
		if math.Abs(got-want)/want > tol {
			t.Errorf("plain=%v: %v allowed over %v; want %.0f within %.0f%%", plain, got, span, want, tol*100)
		}
	}
}
