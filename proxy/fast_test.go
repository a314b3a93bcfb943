package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// fastUpstream answers the paths the fast-path tests use.
func fastUpstream(w http.ResponseWriter, r *http.Request, n int64) {
	h := w.Header()
	switch r.URL.Path {
	case "/cache":
		h.Set("Cache-Control", "max-age=60")
		h.Set("Content-Type", "text/plain")
		h.Set("Etag", `"v1"`)
		fmt.Fprintf(w, "cached %s", r.URL.RawQuery)
	case "/nocache":
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "fresh %d", n)
	case "/notype":
		h.Set("Cache-Control", "max-age=60")
		h["Content-Type"] = nil // nothing set: the server sniffs
		io.WriteString(w, "<html><body>sniff me</body></html>")
	case "/stream":
		h.Set("Content-Type", "text/plain")
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			http.NewResponseController(w).Flush()
		}
	case "/trailer":
		h.Set("Trailer", "X-Sum")
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("t", 3000))
		h.Set("X-Sum", "42")
	case "/empty":
		w.WriteHeader(http.StatusNoContent)
	case "/big":
		h.Set("Cache-Control", "max-age=60")
		h.Set("Content-Type", "application/octet-stream")
		w.Write([]byte(strings.Repeat("b", 100<<10)))
	case "/hints":
		h.Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "after hints")
	default:
		http.NotFound(w, r)
	}
}

// TestFastPathMatchesNetHTTP sends the same requests to a proxy behind the
// fast path and to one served by net/http alone, and compares the answers
// field by field (the request id, Date and Cache-Status ttl aside).
func TestFastPathMatchesNetHTTP(t *testing.T) {
	for _, mode := range []config.ListenerMode{config.ModeReverse, config.ModeForward} {
		t.Run(string(mode), func(t *testing.T) {
			clk := newClock()
			fast := newHarness(t, harnessOptions{mode: mode, handler: fastUpstream, clock: clk})
			plain := newHarness(t, harnessOptions{mode: mode, handler: fastUpstream, clock: clk, plainServer: true})
			reqs := []struct {
				method, path string
				kv           []string
			}{
				{"GET", "/cache?a=1", nil},
				{"GET", "/cache?a=1", nil}, // a hit
				{"HEAD", "/cache?a=1", nil},
				{"GET", "/cache?a=1", []string{"If-None-Match", `"v1"`}},
				{"GET", "/cache?a=1", []string{"Cache-Control", "max-age=0"}},
				{"GET", "/cache?a=1", []string{"X-Request-Id", "mine-123"}},
				{"GET", "/cache?q=%20x", nil},
				{"GET", "/cache?q=%20x", nil},
				{"GET", "/nocache", nil},
				{"GET", "/notype", nil},
				{"GET", "/notype", nil},
				{"GET", "/stream", nil},
				{"GET", "/trailer", nil},
				{"GET", "/empty", nil},
				{"GET", "/big", nil},
				{"GET", "/big", nil},
				{"HEAD", "/big", nil},
				{"GET", "/hints", nil},
				{"GET", "/missing", nil},
				{"POST", "/nocache", nil},
			}
			for i, rq := range reqs {
				var a, b *result
				if rq.method == "POST" {
					a = fast.do(rq.method, rq.path, hdr(rq.kv...), strings.NewReader("body"))
					b = plain.do(rq.method, rq.path, hdr(rq.kv...), strings.NewReader("body"))
				} else {
					a = fast.do(rq.method, rq.path, hdr(rq.kv...), nil)
					b = plain.do(rq.method, rq.path, hdr(rq.kv...), nil)
				}
				name := fmt.Sprintf("#%d %s %s %v", i, rq.method, rq.path, rq.kv)
				sameAnswer(t, name, "fast", "net/http", a, b, a.body, b.body)
			}
			if got := fast.get("/cache?a=1", "X-Request-Id", "mine-123").Header.Get("X-Request-Id"); got != "mine-123" {
				t.Errorf("X-Request-Id = %q; want the app's own", got)
			}
		})
	}
}

// TestFastHitAccessLog: a hit served straight from the cache logs the same
// access-log line as one served through net/http.
func TestFastHitAccessLog(t *testing.T) {
	clk := newClock()
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	lines := map[bool]map[string]any{}
	hosts := map[bool]string{}
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: fastUpstream, clock: clk, plainServer: plain})
		hosts[plain] = strings.TrimPrefix(h.origin, "http://")
		h.get("/cache?a=1")
		if r := h.get("/cache?a=1", "X-Request-Id", "log-1", "Traceparent", tp); !strings.Contains(r.cacheStatus(), "hit") {
			t.Fatalf("plain=%v: second request %q; want a hit", plain, r.cacheStatus())
		}
		if _, ok := h.logs.statusLogged("log-1"); !ok {
			t.Fatalf("plain=%v: no access-log line", plain)
		}
		for _, r := range h.logs.records() {
			if r["request_id"] == "log-1" {
				lines[plain] = r
			}
		}
	}
	fast, plain := lines[false], lines[true]
	for plain, line := range lines {
		if line["host"] != hosts[plain] {
			t.Errorf("plain=%v: host %v; want %v", plain, line["host"], hosts[plain])
		}
	}
	for _, k := range []string{"msg", "listener", "method", "target", "status", "route", "upstream", "cache", "bytes", "upstream_ms", "traceparent"} {
		if fmt.Sprint(fast[k]) != fmt.Sprint(plain[k]) {
			t.Errorf("%s: fast %v; net/http %v", k, fast[k], plain[k])
		}
	}
	if fast["traceparent"] != tp || !strings.HasPrefix(fmt.Sprint(fast["cache"]), "zerohop; hit; ttl=") {
		t.Errorf("fast line: %v", fast)
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// readResponses reads n responses from br (to GETs unless head[i]).
func readResponses(t *testing.T, br *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("response %d body: %v", i+1, err)
		}
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, b))
	}
	return out
}

// TestFastConnMixedRequests interleaves, on one connection and pipelined,
// requests the fast path serves with requests it hands to net/http (a body,
// a chunked body that hands the connection over for good).
func TestFastConnMixedRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "posted %s", b)
			return
		}
		fastUpstream(w, r, n)
	}})
	h.get("/cache?a=1") // stored
	c, br := h.dial()
	get := "GET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	post := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	chunked := "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	want := "200 cached a=1"
	steps := []struct {
		send string
		want []string
	}{
		{get + get + get, []string{want, want, want}},                // pipelined hits
		{get + post + get, []string{want, "200 posted hello", want}}, // a body goes to net/http and back
		{post, []string{"200 posted hello"}},                         // alone
		{get, []string{want}},                                        // the fast path again
		{strings.Repeat("G", 1) + "ET /nocache HTTP/1.1\r\nHost: x\r\n\r\n", []string{"200 fresh 5"}},
		{chunked, []string{"200 posted abc"}}, // net/http from here on; it closes after a chunked request
	}
	for i, s := range steps {
		if _, err := io.WriteString(c, s.send); err != nil {
			t.Fatal(err)
		}
		if got := readResponses(t, br, len(s.want)); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: %q; want %q", i, got, s.want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after a chunked request: read %v; want EOF (smuggling defence)", err)
	}
}

// TestFastConnHeldBytes: while net/http serves a handed-off request, the
// next request's bytes are held back until net/http aborts its background
// read; a leftover abort must not be taken for a new one (which would
// cancel the request being served).
func TestFastConnHeldBytes(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(30 * time.Millisecond)
		fmt.Fprintf(w, "posted %s", b)
	}})
	c, br := h.dial()
	post := func(s string) string {
		return "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(s)) + "\r\n\r\n" + s
	}
	for i, step := range []struct {
		send string
		want []string
	}{
		{post("a"), []string{"200 posted a"}},
		{post("b"), []string{"200 posted b"}},
		{post("c") + post("d"), []string{"200 posted c", "200 posted d"}},
		{post("e") + post("f") + post("g"), []string{"200 posted e", "200 posted f", "200 posted g"}},
	} {
		io.WriteString(c, step.send)
		if got := readResponses(t, br, len(step.want)); !slices.Equal(got, step.want) {
			t.Fatalf("step %d: %q; want %q", i, got, step.want)
		}
	}
}

// TestFastConnAbortBeforeHeldRead: net/http may abort its background read
// before the goroutine doing it has even started (a handler that answers
// at once). The held read must then end at once too, not wait for a
// wake-up that already came and went; otherwise the connection hangs.
func TestFastConnAbortBeforeHeldRead(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream, listener: func(l *config.Listener) { l.MaxRequestBody = 1 }})
	h.get("/cache?a=1")
	c, br := h.dial()
	tooBig := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" // 413 without reading the body
	get := "GET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	for i := 0; i < 200; i++ {
		c.SetDeadline(time.Now().Add(wait))
		io.WriteString(c, tooBig+get)
		got := readResponses(t, br, 2)
		if !strings.HasPrefix(got[0], "413 ") || got[1] != "200 cached a=1" {
			t.Fatalf("round %d: %q", i, got)
		}
	}
}

// TestFastConnSlowClient sends requests a byte at a time.
func TestFastConnSlowClient(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream})
	h.get("/cache?a=1")
	c, br := h.dial()
	raw := "GET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /nocache HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	go func() {
		for i := range len(raw) {
			c.Write([]byte{raw[i]})
			time.Sleep(100 * time.Microsecond)
		}
	}()
	got := readResponses(t, br, 3)
	if got[0] != "200 cached a=1" || !strings.HasPrefix(got[1], "200 fresh") || got[2] != "200 cached a=1" {
		t.Fatalf("got %q", got)
	}
}

// TestFastConnLimits checks the listener's limits on the fast path: header
// timeout, idle timeout, head size, and the 400s net/http gives.
func TestFastConnLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream, listener: func(l *config.Listener) {
		l.ReadHeaderTimeout = 200 * time.Millisecond
		l.IdleTimeout = 300 * time.Millisecond
		l.MaxHeaderBytes = 8 << 10
	}})
	tests := []struct {
		name   string
		raw    string
		status int
		within time.Duration
	}{
		{"a head that never ends times out", "GET /cache HTTP/1.1\r\nHost: x\r\n", 0, 2 * time.Second},
		{"an idle connection is closed", "", 0, 2 * time.Second},
		{"a head above max_header_bytes", "GET /cache HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, 2 * time.Second},
		{"two Hosts", "GET /cache HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, 2 * time.Second},
		{"an invalid Host", "GET /cache HTTP/1.1\r\nHost: a b\r\n\r\n", 400, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			status, resp := rawRequest(t, h.addr(), tt.raw, wait)
			if status != tt.status {
				t.Errorf("status %d; want %d (%q)", status, tt.status, trunc(resp))
			}
			if d := time.Since(start); d > tt.within {
				t.Errorf("connection open for %v; want closed within %v", d, tt.within)
			}
		})
	}
}

// TestFastConnConnectionClose: a request asking to close gets its answer
// with Connection: close and then the connection closes.
func TestFastConnConnectionClose(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream})
	h.get("/cache?a=1")
	for _, path := range []string{"/cache?a=1", "/nocache"} {
		status, resp := rawRequest(t, h.addr(), "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", wait)
		if status != 200 || !strings.Contains(resp, "Connection: close\r\n") || strings.Count(resp, "HTTP/1.1 ") != 1 {
			t.Errorf("%s: %d %q; want one response with Connection: close", path, status, resp)
		}
	}
}

// TestFastConnShutdownDrains: a request the fast path is serving when the
// server shuts down gets its whole response; the sidecar waits for it
// (WaitFast) before closing the cache.
func TestFastConnShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fastUpstream(w, r, n)
	}})
	var wg sync.WaitGroup
	var got *result
	wg.Go(func() { got = h.get("/slow") })
	deadline := time.Now().Add(wait)
	for h.up.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- h.srv.Config.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := h.p.WaitFast(ctx); err == nil {
		t.Error("WaitFast returned while a request was being served")
	}
	cancel()
	close(release)
	wg.Wait()
	if got.StatusCode != 404 || got.err != nil {
		t.Errorf("in-flight request: %d %v; want its whole 404", got.StatusCode, got.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.p.WaitFast(ctx); err != nil {
		t.Errorf("WaitFast after the response: %v", err)
	}
}

// TestFastConnShutdownClosesIdle: a keep-alive connection that only had
// requests served by the fast path is "new" to net/http, which Shutdown
// would wait five seconds to close; the fast path closes it at once.
func TestFastConnShutdownClosesIdle(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream})
	h.get("/cache?a=1")
	c, br := h.dial()
	io.WriteString(c, "GET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponses(t, br, 1)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with an idle fast-path connection; want well under net/http's 5s for new connections", d)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the idle connection is still open after Shutdown")
	}
}

var _ = proxy.RequestsSeen

// TestFastConnHeaderMapsReused checks that the header maps a fast-path
// connection reuses carry nothing from one request to the next: on one
// keep-alive connection, requests with different fields (one with more
// fields than a reused map may hold) reach the upstream with their own
// fields only, and each response carries only its own upstream's fields.
func TestFastConnHeaderMapsReused(t *testing.T) {
	for _, mode := range []config.ListenerMode{config.ModeReverse, config.ModeForward} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
				var names []string
				for k := range r.Header {
					if strings.HasPrefix(k, "X-T") {
						names = append(names, k)
					}
				}
				slices.Sort(names)
				w.Header().Set("Cache-Control", "no-store")
				w.Header().Set(fmt.Sprintf("X-Resp-%d", n), "1")
				fmt.Fprint(w, strings.Join(names, ","))
			}})
			c, br := h.dial()
			target := "/reuse"
			if mode == config.ModeForward {
				target = h.origin + "/reuse"
			}
			many := ""
			var manyNames []string
			for i := range 24 {
				many += fmt.Sprintf("X-T-Many-%02d: v\r\n", i)
				manyNames = append(manyNames, fmt.Sprintf("X-T-Many-%02d", i))
			}
			steps := []struct {
				fields string
				want   string
			}{
				{"X-T-One: 1\r\n", "X-T-One"},
				{"X-T-Two: 2\r\n", "X-T-Two"},
				{many, strings.Join(manyNames, ",")},
				{"", ""},
				{"X-T-One: 1\r\nX-T-Three: 3\r\n", "X-T-One,X-T-Three"},
			}
			for i, s := range steps {
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.local\r\n%s\r\n", target, s.fields)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != s.want {
					t.Errorf("step %d: upstream saw %q; want %q", i, b, s.want)
				}
				var resps []string
				for k := range resp.Header {
					if strings.HasPrefix(k, "X-Resp-") {
						resps = append(resps, k)
					}
				}
				if want := fmt.Sprintf("X-Resp-%d", i+1); len(resps) != 1 || resps[0] != want {
					t.Errorf("step %d: response fields %q; want only %s", i, resps, want)
				}
				if n := len(resp.Header.Values("X-Request-Id")); n != 1 {
					t.Errorf("step %d: %d X-Request-Id fields; want 1", i, n)
				}
			}
		})
	}
}

// blockingLog is an access log whose Handle waits until released: what
// the proxy does after a response, held up.
type blockingLog struct {
	logBuffer
	release chan struct{}
}

func (l *blockingLog) Handle(ctx context.Context, r slog.Record) error {
	select {
	case <-l.release:
	case <-time.After(5 * time.Second):
	}
	return nil
}
func (l *blockingLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *blockingLog) WithGroup(string) slog.Handler      { return l }

// TestFastResponseSentBeforeBookkeeping checks that a response whose
// length is known reaches the app when its last byte is written, not
// when the proxy is done with its access log and metrics: with the
// access log held up, the app still gets whole responses (a forwarded
// one with a body, a 304), on one keep-alive connection.
func TestFastResponseSentBeforeBookkeeping(t *testing.T) {
	log := &blockingLog{release: make(chan struct{})}
	h := newHarness(t, harnessOptions{accessLog: log, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get("If-None-Match") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "answer")
	}})
	defer close(log.release)
	c, br := h.dial()
	for _, tc := range []struct {
		fields string
		status int
		body   string
	}{
		{"", http.StatusOK, "answer"},
		{"If-None-Match: \"x\"\r\n", http.StatusNotModified, ""},
	} {
		// Well before the access log's 5 s: it is the response, not
		// the log giving up, that must arrive.
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET /early HTTP/1.1\r\nHost: app.local\r\n%s\r\n", tc.fields)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d: response not sent while the access log waits: %v", tc.status, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || string(b) != tc.body {
			t.Fatalf("got %d %q (%v); want %d %q", resp.StatusCode, b, err, tc.status, tc.body)
		}
		log.release <- struct{}{} // let this request's handler return
	}
}
