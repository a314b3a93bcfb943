package main_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGlobalRateLimitTwoSidecars runs two real sidecars (two "pods")
// whose listener applies one global limit of 200 requests/s (burst 20)
// kept in one real redis-server on loopback, and drives both harder than
// the limit for 2 s: together they let through burst + rate*D within 5%,
// both take part, and keys over the limit are mostly refused without a
// round trip (local_reject).
func TestGlobalRateLimitTwoSidecars(t *testing.T) {
	redisAddr := startRedis(t)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "shared body")
	}))
	defer origin.Close()
	const rate, burst = 200, 20
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listeners:
  - name: forward
    rate_limits: [shared]
limits:
  - name: shared
    rate: %d
    burst: %d
    key: all
    global: {redis: {address: %q}, timeout: 250ms, on_error: closed}
`, rate, burst, redisAddr)), 0o644)
	pods := []*daemon{startDaemon(t, "ZEROHOP_CONFIG="+cfg), startDaemon(t, "ZEROHOP_CONFIG="+cfg)}

	const d = 2 * time.Second
	var ok, refused, other [2]atomic.Int64
	var first, last atomic.Int64 // unix ns of the first and last request sent
	first.Store(math.MaxInt64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, pod := range pods {
		c := pod.client()
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					now := time.Now().UnixNano()
					for f := first.Load(); now < f && !first.CompareAndSwap(f, now); f = first.Load() {
					}
					for l := last.Load(); now > l && !last.CompareAndSwap(l, now); l = last.Load() {
					}
					resp, err := c.Get(origin.URL + "/f")
					if err != nil {
						other[i].Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok[i].Add(1)
					case 429:
						refused[i].Add(1)
					default:
						other[i].Add(1)
					}
				}
			}()
		}
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	span := time.Duration(last.Load() - first.Load())
	want := burst + rate*span.Seconds()
	got := float64(ok[0].Load() + ok[1].Load())
	t.Logf("%v: allowed %d + %d = %.0f (want %.0f), refused %d + %d", span.Round(time.Millisecond), ok[0].Load(), ok[1].Load(), got, want,
		refused[0].Load(), refused[1].Load())
	if other[0].Load()+other[1].Load() > 0 {
		t.Errorf("%d + %d requests neither allowed nor refused", other[0].Load(), other[1].Load())
	}
	if math.Abs(got-want)/want > 0.05 {
		t.Errorf("%.0f allowed by the two sidecars over %v; want %.0f within 5%%", got, span, want)
	}
	for i, pod := range pods {
		if ok[i].Load() == 0 || refused[i].Load() == 0 {
			t.Errorf("pod %d: %d allowed, %d refused; want both", i, ok[i].Load(), refused[i].Load())
		}
		series := func(o string) string { return `zerohop_ratelimit_decisions_total{limit="shared",outcome="` + o + `"}` }
		a, r, l := pod.metric(t, series("allowed")), pod.metric(t, series("rejected")), pod.metric(t, series("local_reject"))
		if a != float64(ok[i].Load()) || r+l != float64(refused[i].Load()) || l < r {
			t.Errorf("pod %d metrics: allowed %v rejected %v local_reject %v; want %d allowed, %d refused, most of them locally",
				i, a, r, l, ok[i].Load(), refused[i].Load())
		}
	}
}
