package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// Breakers and retries, on both entry paths: the fast path hands a miss
// to the same forward code net/http runs (serveUpstream, send).

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// bothPaths runs f with the fast path in front of net/http and without.
func bothPaths(t *testing.T, f func(t *testing.T, plain bool)) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "net-http"}[plain], func(t *testing.T) { f(t, plain) })
	}
}

func retries(attempts int, on ...string) *config.RetryPolicy {
	return &config.RetryPolicy{Attempts: attempts, RetryOn: on, BackoffBase: time.Millisecond,
		BackoffMax: 5 * time.Millisecond, MaxBody: config.DefaultRetryMaxBody}
}

// logLine is the access-log record of request id.
func logLine(t *testing.T, h *harness, id string) map[string]any {
	t.Helper()
	h.logs.statusLogged(id)
	for _, l := range h.logs.records() {
		if l["request_id"] == id {
			return l
		}
	}
	t.Fatalf("no access-log line for %s", id)
	return nil
}

func TestBreakerMaxRequests(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		const limit = 3
		release := make(chan struct{})
		var inflight atomic.Int64
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			inflight.Add(1)
			defer inflight.Add(-1)
			if r.URL.Path != "/fast" {
				<-release
			}
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "ok")
		}, config: func(c *config.Config) {
			c.Clusters[0].CircuitBreakers.MaxRequests = limit
		}})
		var wg sync.WaitGroup
		codes := make(chan int, limit)
		for i := range limit {
			wg.Go(func() { codes <- h.get(fmt.Sprintf("/slow/%d", i)).StatusCode })
		}
		deadline := time.Now().Add(wait)
		for inflight.Load() < limit && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if inflight.Load() != limit {
			t.Fatalf("%d requests reached the upstream; want %d", inflight.Load(), limit)
		}
		r := h.do("GET", "/fast", hdr("X-Request-Id", "over"), nil)
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("X-Zerohop-Reason") != "breaker_open; limit=max_requests" {
			t.Fatalf("request over the limit: %d %q %q; want 503 breaker_open", r.StatusCode, r.Header.Get("X-Zerohop-Reason"), r.body)
		}
		if l := logLine(t, h, "over"); l["decision"] != "breaker_open" || l["status"] != int64(503) {
			t.Errorf("access log: %v; want decision breaker_open, status 503", l)
		}
		if got := counter(t, h.p, "zerohop_breaker_rejections_total", "limit", "max_requests"); got != 1 {
			t.Errorf("zerohop_breaker_rejections_total = %v; want 1", got)
		}
		close(release)
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != 200 {
				t.Errorf("a request under the limit got %d", c)
			}
		}
		// Closed again: the limit counts requests in flight, not ever made.
		for i := range 2 * limit {
			if r := h.get("/fast"); r.StatusCode != 200 {
				t.Fatalf("after the slow requests ended, #%d: %d %q", i, r.StatusCode, r.body)
			}
		}
	})
}

func TestBreakerPendingRequests(t *testing.T) {
	release := make(chan struct{})
	var inflight atomic.Int64
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		inflight.Add(1)
		<-release
		w.Header().Set("Cache-Control", "no-store")
	}, config: func(c *config.Config) {
		c.Clusters[0].CircuitBreakers = config.CircuitBreakers{MaxConnections: 1, MaxPendingRequests: 1}
	}})
	var wg sync.WaitGroup
	codes := make(chan *result, 3)
	wg.Go(func() { codes <- h.get("/a") }) // takes the one connection
	deadline := time.Now().Add(wait)
	for inflight.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// One of these waits for the connection; the other is one pending
	// request too many.
	wg.Go(func() { codes <- h.get("/b") })
	wg.Go(func() { codes <- h.get("/c") })
	for counter(t, h.p, "zerohop_breaker_rejections_total", "limit", "max_pending_requests") < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(codes)
	ok, rejected := 0, 0
	for r := range codes {
		switch {
		case r.StatusCode == 200:
			ok++
		case r.StatusCode == 503 && r.Header.Get("X-Zerohop-Reason") == "breaker_open; limit=max_pending_requests":
			rejected++
		default:
			t.Errorf("%d %q %q", r.StatusCode, r.Header.Get("X-Zerohop-Reason"), r.body)
		}
	}
	if ok != 2 || rejected != 1 {
		t.Errorf("%d answered, %d rejected; want 2 (connected and pending) and 1", ok, rejected)
	}
	if inflight.Load() != 2 {
		t.Errorf("upstream saw %d requests; want 2 (the rejected one never reached it)", inflight.Load())
	}
}

func TestRetryConnectFailure(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		dead := closedURL(t)
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "live")
		}, config: func(c *config.Config) {
			c.Clusters[0].Endpoints = append(c.Clusters[0].Endpoints, config.Endpoint{URL: dead, Weight: 1})
			c.Clusters[0].Retries = retries(2, config.RetryConnectFailure)
		}})
		retried := 0
		const n = 30
		for i := range n {
			id := fmt.Sprintf("cf-%d", i)
			r := h.do("GET", "/x", hdr("X-Request-Id", id), nil)
			if r.StatusCode != 200 || r.body != "live" {
				t.Fatalf("#%d: %d %q; want the live endpoint's answer", i, r.StatusCode, r.body)
			}
			if l := logLine(t, h, id); l["decision"] == "retried" {
				retried++
				if l["tries"] != int64(2) || !strings.HasSuffix(fmt.Sprint(l["upstream"]), h.up.hostport()) {
					t.Errorf("#%d: log %v; want tries 2 on the live endpoint", i, l)
				}
			}
		}
		if retried == 0 || h.up.hits.Load() != n {
			t.Errorf("retried %d, live hits %d; want some retried (half go to the dead endpoint first) and %d hits", retried, h.up.hits.Load(), n)
		}
		if got := counter(t, h.p, "zerohop_retries_total", "outcome", "retried_connect_failure"); got != float64(retried) {
			t.Errorf("zerohop_retries_total{retried_connect_failure} = %v; want %d", got, retried)
		}
	})
}

func TestRetryOnStatusToAnotherEndpoint(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		bad := newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, n int64) {
			w.WriteHeader(503)
			io.WriteString(w, "down")
		})
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "good")
		}, config: func(c *config.Config) {
			c.Clusters[0].Endpoints = append(c.Clusters[0].Endpoints, config.Endpoint{URL: bad.URL, Weight: 1})
			c.Clusters[0].Retries = retries(1, "503")
		}})
		const n = 30
		for i := range n {
			if r := h.get(fmt.Sprintf("/s/%d", i)); r.StatusCode != 200 || r.body != "good" {
				t.Fatalf("#%d: %d %q; want the retry's answer from the good endpoint", i, r.StatusCode, r.body)
			}
		}
		// One retry is enough: it never goes back to the endpoint that failed.
		if b, g := bad.hits.Load(), h.up.hits.Load(); g != n || b == 0 || b >= n {
			t.Errorf("bad endpoint %d hits, good %d; want every request answered by the good one", b, g)
		}
	})
}

func TestRetryNeverNonIdempotent(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		var mu sync.Mutex
		bodies := map[string][]string{}
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies[r.Method] = append(bodies[r.Method], string(b))
			mu.Unlock()
			w.WriteHeader(503)
		}, config: func(c *config.Config) {
			c.Clusters[0].Retries = retries(3, "503", config.RetryReset, config.RetryConnectFailure)
		}})
		for _, m := range []string{"POST", "PATCH", "PUT", "DELETE"} {
			r := h.do(m, "/w", nil, strings.NewReader("payload-"+m))
			if r.StatusCode != 503 {
				t.Errorf("%s: %d; want the upstream's 503 passed on", m, r.StatusCode)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for m, want := range map[string]int{"POST": 1, "PATCH": 1, "PUT": 4, "DELETE": 4} {
			got := bodies[m]
			if len(got) != want {
				t.Errorf("%s reached the upstream %d times; want %d", m, len(got), want)
			}
			for _, b := range got {
				if b != "payload-"+m {
					t.Errorf("%s: upstream got body %q; want it whole on every try", m, b)
				}
			}
		}
	})
}

func TestRetryBudget(t *testing.T) {
	const minRetries = 2
	var retriesIn, maxRetriesIn atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		seen[r.URL.Path]++
		retry := seen[r.URL.Path] > 1
		mu.Unlock()
		if retry {
			n := retriesIn.Add(1)
			for m := maxRetriesIn.Load(); n > m && !maxRetriesIn.CompareAndSwap(m, n); m = maxRetriesIn.Load() {
			}
			defer retriesIn.Add(-1)
		}
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(503)
	}, config: func(c *config.Config) {
		c.Clusters[0].Retries = retries(3, "503")
		c.Clusters[0].CircuitBreakers.RetryBudget = &config.RetryBudget{BudgetPercent: 0, MinRetryConcurrency: minRetries}
	}})
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if r := h.get(fmt.Sprintf("/b/%d", i)); r.StatusCode != 503 {
				t.Errorf("#%d: %d; want the upstream's 503", i, r.StatusCode)
			}
		})
	}
	wg.Wait()
	hits := h.up.hits.Load()
	refused := counter(t, h.p, "zerohop_retries_total", "outcome", "budget")
	t.Logf("upstream hits %d for %d requests (%d without a budget); retries refused by the budget %v; most retries at once %d",
		hits, n, n*4, refused, maxRetriesIn.Load())
	if maxRetriesIn.Load() > minRetries {
		t.Errorf("%d retries reached the upstream at once; the budget allows %d", maxRetriesIn.Load(), minRetries)
	}
	if refused == 0 || hits >= n*4 {
		t.Errorf("budget refused %v retries, upstream hit %d times; want the budget to hold retries back", refused, hits)
	}
}

func TestRetryAfterAndBackoff(t *testing.T) {
	var mu sync.Mutex
	at := map[string][]time.Time{}
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		at[r.URL.Path] = append(at[r.URL.Path], time.Now())
		k := len(at[r.URL.Path])
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		switch {
		case r.URL.Path == "/after1" && k == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		case r.URL.Path == "/after9":
			w.Header().Set("Retry-After", "9")
			w.WriteHeader(503)
		case r.URL.Path == "/always":
			w.WriteHeader(503)
		}
	}, config: func(c *config.Config) {
		c.Clusters[0].Retries = retries(3, "503")
		c.Clusters[0].Retries.BackoffMax = 2 * time.Second
		c.Clusters[0].Retries.BackoffBase = 10 * time.Millisecond
	}})
	if r := h.get("/after1"); r.StatusCode != 200 {
		t.Fatalf("/after1: %d; want the retry's 200", r.StatusCode)
	}
	mu.Lock()
	ts := at["/after1"]
	mu.Unlock()
	if len(ts) != 2 || ts[1].Sub(ts[0]) < 900*time.Millisecond {
		t.Errorf("/after1: %d tries, %v apart; want 2, at least Retry-After's 1s apart", len(ts), ts[len(ts)-1].Sub(ts[0]))
	}
	// Retry-After longer than backoff_max: passed on at once, not retried.
	r := h.get("/after9")
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "9" {
		t.Errorf("/after9: %d Retry-After %q; want the 503 and its Retry-After passed on", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if got := counter(t, h.p, "zerohop_retries_total", "outcome", "retry_after"); got != 1 {
		t.Errorf("retry_after refusals %v; want 1", got)
	}
	// Without Retry-After: attempts + 1 tries, each after a backoff.
	if r := h.get("/always"); r.StatusCode != 503 {
		t.Errorf("/always: %d", r.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(at["/after9"]); got != 1 {
		t.Errorf("/after9 tried %d times; want 1", got)
	}
	ts = at["/always"]
	if len(ts) != 4 {
		t.Fatalf("/always tried %d times; want 4 (attempts 3)", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if !ts[i].After(ts[i-1]) {
			t.Errorf("try %d not after try %d", i+1, i)
		}
	}
}

func TestRetryPerTryTimeout(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set("Cache-Control", "no-store")
			if n == 1 || r.URL.Path == "/both" {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return
			}
			io.WriteString(w, "second")
		}, config: func(c *config.Config) {
			c.Clusters[0].Retries = retries(1, config.RetryTimeout)
			c.Clusters[0].Retries.PerTryTimeout = 200 * time.Millisecond
		}})
		if r := h.get("/t"); r.StatusCode != 200 || r.body != "second" {
			t.Fatalf("%d %q; want the second try's answer after the first timed out", r.StatusCode, r.body)
		}
		if got := counter(t, h.p, "zerohop_retries_total", "outcome", "retried_timeout"); got != 1 {
			t.Errorf("retried_timeout %v; want 1", got)
		}
		// Every try out of time: 504, after attempts + 1 tries.
		if r := h.get("/both"); r.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("/both: %d %q; want 504", r.StatusCode, r.body)
		}
		if got := h.up.hits.Load(); got != 4 {
			t.Errorf("upstream hits %d; want 4 (2 for /t, 2 for /both)", got)
		}
	})
}

func TestRetriedResponseCached(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "fresh")
	}, config: func(c *config.Config) {
		c.Routes[0].Retries = retries(1, config.RetryGatewayError)
	}})
	if r := h.get("/c"); r.StatusCode != 200 || r.body != "fresh" {
		t.Fatalf("%d %q", r.StatusCode, r.body)
	}
	if r := h.get("/c"); r.StatusCode != 200 || !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("second GET: %d %q; want a hit of the retried response", r.StatusCode, r.cacheStatus())
	}
	if h.up.hits.Load() != 2 {
		t.Errorf("upstream hits %d; want 2", h.up.hits.Load())
	}
}

// TestRetryBodyBound: a body larger than max_body is not buffered, so it
// is retried only when none of it was sent (the connect failed).
func TestRetryBodyBound(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		big := strings.Repeat("b", 100<<10)
		dead := closedURL(t)
		var mu sync.Mutex
		var got []int
		h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, len(b))
			mu.Unlock()
			if r.URL.Path == "/fail" {
				w.WriteHeader(503)
			}
		}, config: func(c *config.Config) {
			c.Clusters[0].Retries = retries(2, "503", config.RetryConnectFailure)
			c.Clusters[0].Retries.MaxBody = 16 << 10
		}})
		if r := h.do("PUT", "/fail", nil, strings.NewReader(big)); r.StatusCode != 503 {
			t.Errorf("PUT over max_body: %d; want the 503 passed on", r.StatusCode)
		}
		if got := counter(t, h.p, "zerohop_retries_total", "outcome", "body_sent"); got != 1 {
			t.Errorf("body_sent %v; want 1", got)
		}
		// Within the bound: buffered, sent whole on each try.
		if r := h.do("PUT", "/fail", nil, strings.NewReader(big[:8<<10])); r.StatusCode != 503 {
			t.Errorf("PUT within max_body: %d", r.StatusCode)
		}
		mu.Lock()
		if want := []int{100 << 10, 8 << 10, 8 << 10, 8 << 10}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("upstream got bodies of %v bytes; want %v", got, want)
		}
		got = nil
		mu.Unlock()

		// A connect failure sent nothing: the big body goes to the live
		// endpoint whole.
		h2 := newHarness(t, harnessOptions{plainServer: plain, origin: dead, config: func(c *config.Config) {
			c.Clusters[0].Endpoints = append(c.Clusters[0].Endpoints, config.Endpoint{URL: h.up.URL, Weight: 1})
			c.Clusters[0].Retries = retries(2, config.RetryConnectFailure)
			c.Clusters[0].Retries.MaxBody = 16 << 10
		}})
		for i := range 10 {
			if r := h2.do("PUT", "/ok", nil, strings.NewReader(big)); r.StatusCode != 200 {
				t.Fatalf("#%d: %d %q", i, r.StatusCode, r.body)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			if n != len(big) {
				t.Errorf("upstream got %d bytes of %d", n, len(big))
			}
		}
		if len(got) != 10 || counter(t, h2.p, "zerohop_retries_total", "outcome", "retried_connect_failure") == 0 {
			t.Errorf("upstream got %d requests (want 10), %v after a connect failure (want some)", len(got),
				counter(t, h2.p, "zerohop_retries_total", "outcome", "retried_connect_failure"))
		}
	})
}
