package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// resilienceOrigin is one endpoint of the cluster under test: its health
// check answer, its answers to /flaky and /fail, and the requests it saw
// can be changed and read while the sidecar runs.
type resilienceOrigin struct {
	name    string
	srv     *httptest.Server
	healthy atomic.Bool
	fail    atomic.Bool   // /flaky answers 503 while set
	posts   atomic.Int64  // POST /flaky seen
	gets    atomic.Int64  // GET /flaky and /who seen
	hold    chan struct{} // /slow waits for it to close
	holding atomic.Int64  // /slow requests waiting
}

func newResilienceOrigin(t *testing.T, name string) *resilienceOrigin {
	o := &resilienceOrigin{name: name, hold: make(chan struct{})}
	o.healthy.Store(true)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/health":
			if !o.healthy.Load() {
				w.WriteHeader(503)
			}
		case "/flaky":
			if r.Method == http.MethodPost {
				o.posts.Add(1)
			} else {
				o.gets.Add(1)
			}
			if o.fail.Load() {
				w.WriteHeader(503)
			}
			io.WriteString(w, o.name)
		case "/slow":
			o.holding.Add(1)
			<-o.hold
			io.WriteString(w, o.name)
		case "/fail":
			w.WriteHeader(500)
		default:
			o.gets.Add(1)
			io.WriteString(w, o.name)
		}
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *resilienceOrigin) hostport() string { return strings.TrimPrefix(o.srv.URL, "http://") }

// TestResilienceInTheBinary runs the real binary with a two-endpoint
// cluster using the keys of docs/resilience.md and docs/load-balancing.md
// (health checks, outlier detection, retries, a circuit breaker) against
// loopback origins whose behaviour the test switches, and checks what the
// app, the origins, /metrics and the access log see.
func TestResilienceInTheBinary(t *testing.T) {
	a, b := newResilienceOrigin(t, "a"), newResilienceOrigin(t, "b")
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	cfg := filepath.Join(dir, "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: svc
    lb_policy: round_robin
    endpoints: [{url: %q}, {url: %q}]
    health_check: {path: /health, interval: 50ms, timeout: 1s, jitter: 0s, healthy_threshold: 1, unhealthy_threshold: 2}
    outlier_detection: {consecutive_5xx: 5, consecutive_gateway_failure: 0, base_ejection_time: 2s, max_ejection_percent: 50}
    retries: {attempts: 1, retry_on: [gateway-error], backoff_base: 1ms, backoff_max: 5ms}
    circuit_breakers: {max_requests: 2}
routes:
  - name: all
    cluster: svc
`, a.srv.URL, b.srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "ZEROHOP_ACCESS_LOG="+accessLog, "ZEROHOP_LOG_FORMAT=json")
	client := &http.Client{Timeout: 10 * time.Second}
	// do sends a request; a transport error is reported (t.Error, so that
	// do may run on any goroutine) and answered as status 0.
	do := func(t *testing.T, method, path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+d.listen+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, "", nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	// reachesBoth checks that ten requests reach both endpoints.
	reachesBoth := func(t *testing.T, when string) {
		t.Helper()
		seen := map[string]bool{}
		for i := 0; i < 10; i++ {
			_, body, _ := do(t, "GET", "/who")
			seen[body] = true
		}
		if !seen["a"] || !seen["b"] {
			t.Errorf("%s, round robin reached %v; want both", when, seen)
		}
	}
	healthy := func(o *resilienceOrigin) string {
		return fmt.Sprintf(`zerohop_endpoint_healthy{cluster="svc",endpoint=%q}`, o.hostport())
	}

	t.Run("health check down and up", func(t *testing.T) {
		a.healthy.Store(false)
		waitFor(t, func() bool { return d.metric(t, healthy(a)) == 0 }, "a marked down")
		before := a.gets.Load()
		for i := 0; i < 20; i++ {
			if code, body, _ := do(t, "GET", "/who"); code != 200 || body != "b" {
				t.Fatalf("request %d with a down: %d %q, want 200 from b", i, code, body)
			}
		}
		if n := a.gets.Load() - before; n != 0 {
			t.Errorf("a got %d requests while marked down", n)
		}
		a.healthy.Store(true)
		waitFor(t, func() bool { return d.metric(t, healthy(a)) == 1 }, "a back up")
		reachesBoth(t, "after a came back")
	})

	t.Run("retries idempotent only", func(t *testing.T) {
		// Four of each, so that a (answering 503) sees fewer than
		// consecutive_5xx failures in a row and is not ejected.
		a.fail.Store(true)
		defer a.fail.Store(false)
		getsBefore := a.gets.Load()
		for i := 0; i < 4; i++ {
			if code, body, _ := do(t, "GET", "/flaky"); code != 200 || body != "b" {
				t.Fatalf("GET %d: %d %q; want a's 503 retried on b", i, code, body)
			}
		}
		retried := a.gets.Load() - getsBefore
		postsBefore := a.posts.Load()
		var got503 int64
		for i := 0; i < 4; i++ {
			if code, _, _ := do(t, "POST", "/flaky"); code == 503 {
				got503++
			}
		}
		posts := a.posts.Load() - postsBefore
		if retried == 0 || posts == 0 {
			t.Fatalf("round robin never reached a (GETs %d, POSTs %d)", retried, posts)
		}
		if got503 != posts {
			t.Errorf("POSTs: %d answered 503, a saw %d; want every POST that reached a answered 503, none retried", got503, posts)
		}
		if v := d.metric(t, `zerohop_retries_total{cluster="svc",outcome="retried_status"}`); v != float64(retried) {
			t.Errorf("retried_status = %v, want %d (the GETs a answered 503)", v, retried)
		}
	})

	t.Run("breaker opens and closes", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); do(t, "GET", "/slow") }()
		}
		waitFor(t, func() bool { return a.holding.Load()+b.holding.Load() == 2 }, "two requests held upstream")
		code, _, h := do(t, "GET", "/who")
		if code != 503 || !strings.Contains(h.Get("X-Zerohop-Reason"), "breaker_open; limit=max_requests") {
			t.Errorf("third request: %d %q; want 503 breaker_open; limit=max_requests", code, h.Get("X-Zerohop-Reason"))
		}
		close(a.hold)
		close(b.hold)
		wg.Wait()
		if code, _, _ := do(t, "GET", "/who"); code != 200 {
			t.Errorf("after the held requests ended: %d, want 200", code)
		}
		if v := d.metric(t, `zerohop_breaker_rejections_total{cluster="svc",limit="max_requests"}`); v != 1 {
			t.Errorf("breaker rejections = %v, want 1", v)
		}
	})

	t.Run("outlier ejection and recovery", func(t *testing.T) {
		// /fail always answers 500 (not retried: retry_on is gateway-error);
		// round robin sends every other request to a, so a and b both
		// reach 5 in a row. At most half the endpoints may be ejected.
		for i := 0; i < 10; i++ {
			if code, _, _ := do(t, "GET", "/fail"); code != 500 {
				t.Fatalf("GET /fail %d: %d, want the origin's 500", i, code)
			}
		}
		ejA := d.metric(t, fmt.Sprintf(`zerohop_outlier_ejections_total{cluster="svc",endpoint=%q}`, a.hostport()))
		ejB := d.metric(t, fmt.Sprintf(`zerohop_outlier_ejections_total{cluster="svc",endpoint=%q}`, b.hostport()))
		if ejA+ejB < 1 || ejA > 1 || ejB > 1 {
			t.Fatalf("ejections a %v, b %v; want exactly one endpoint ejected (max_ejection_percent 50)", ejA, ejB)
		}
		ejected, other := a, b
		if ejB == 1 {
			ejected, other = b, a
		}
		if v := d.metric(t, healthy(ejected)); v != 0 {
			t.Errorf("%s ejected but zerohop_endpoint_healthy = %v", ejected.name, v)
		}
		for i := 0; i < 10; i++ {
			if _, body, _ := do(t, "GET", "/who"); body != other.name {
				t.Fatalf("request %d during the ejection went to %q, want %q", i, body, other.name)
			}
		}
		waitFor(t, func() bool { return d.metric(t, healthy(ejected)) == 1 }, "the ejection to end (2 s)")
		reachesBoth(t, "after the ejection")
	})

	log, _ := os.ReadFile(accessLog)
	for _, want := range []string{`"decision":"retried"`, `"tries":2`, `"decision":"breaker_open"`, `"upstream":"svc/` + b.hostport() + `"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("access log lacks %s", want)
		}
	}
}

// TestUpstreamFailuresInTheBinary: an endpoint that refuses connections
// and one that accepts and never answers become a 502 and a 504 with their
// reason logged, never a hang.
func TestUpstreamFailuresInTheBinary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts (backlog) and never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	cfg := filepath.Join(dir, "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - {name: dead, endpoints: [{url: "http://%s"}]}
  - {name: silent, response_timeout: 300ms, endpoints: [{url: "http://%s"}]}
routes:
  - {name: dead, match: {path_prefix: /dead}, cluster: dead}
  - {name: silent, match: {path_prefix: /silent}, cluster: silent}
`, dead, silent.Addr())
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "ZEROHOP_ACCESS_LOG="+accessLog, "ZEROHOP_LOG_FORMAT=json")
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		path string
		want int
	}{{"/dead", 502}, {"/silent", 504}} {
		resp, err := client.Get("http://" + d.listen + tc.path)
		if err != nil {
			t.Fatalf("%s: %v (want a %d, not a hang or a reset)", tc.path, err, tc.want)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	waitFor(t, func() bool {
		log, _ := os.ReadFile(accessLog)
		return strings.Count(string(log), `"route":"`) >= 2
	}, "two access log lines")
	log, _ := os.ReadFile(accessLog)
	for _, want := range []string{`"route":"dead","upstream":"dead/` + dead, `"status":502`, `"status":504`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("access log lacks %s:\n%s", want, log)
		}
	}
}
