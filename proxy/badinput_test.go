package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// noLeak runs f as a subtest, so that everything it starts is stopped by
// its cleanups, and fails if goroutines are left behind afterwards.
func noLeak(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Run("run", f)
	if n := settleGoroutines(base); n > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d after; want at most %d as before\n%s", n, base, buf)
	}
}

// TestBadRequests sends malformed and hostile requests on raw connections:
// each gets a clear error (or, where RFC 9112 allows, a safe
// interpretation), nothing smuggled reaches the upstream, nothing is
// stored, and no goroutine is left behind.
func TestBadRequests(t *testing.T) {
	big := strings.Repeat("a", 64<<10)
	tests := []struct {
		name     string
		raw      string // "{host}" is replaced by the proxy's address
		deadline time.Duration
		listener func(l *config.Listener)
		status   int           // 0: no response at all, the connection is closed
		closedIn time.Duration // the connection must be closed within this
		check    func(t *testing.T, up *upstream)
	}{
		{
			name: "RFC 9112 §6.1 Content-Length with Transfer-Encoding: chunked framing, connection closed",
			raw: "POST /a HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n",
			status: 200, closedIn: wait,
			check: func(t *testing.T, up *upstream) {
				if got := up.requests(); len(got) != 1 || got[0] != "POST /a" {
					t.Errorf("upstream requests = %q; want only [POST /a]", got)
				}
				if r := up.lastRequest(); r == nil || r.ContentLength > 0 {
					t.Errorf("upstream saw a body; want the empty chunked one")
				}
			},
		},
		{
			name: "RFC 9112 §6.1 Transfer-Encoding then a larger Content-Length: no smuggled request",
			raw: "POST /a HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n",
			status: 200, closedIn: wait,
			check: func(t *testing.T, up *upstream) {
				if got := up.requests(); len(got) != 1 || got[0] != "POST /a" {
					t.Errorf("upstream requests = %q; want only [POST /a]", got)
				}
			},
		},
		{
			name:   "RFC 9112 §6.1 unknown transfer coding: 501",
			raw:    "POST /a HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
			status: 501,
		},
		{
			name:   "RFC 9112 §6.3 differing duplicate Content-Length: 400",
			raw:    "POST /a HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
			status: 400,
		},
		{
			name:   "RFC 9112 §6.3 invalid Content-Length: 400",
			raw:    "POST /a HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n",
			status: 400,
		},
		{
			// RFC 9112 §5.2 allows rejecting or replacing obs-fold with SP;
			// net/http replaces, so the upstream sees one clean line.
			name:   "RFC 9112 §5.2 obs-fold is unfolded before forwarding",
			raw:    "GET /fold HTTP/1.1\r\nHost: {host}\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n",
			status: 200,
			check: func(t *testing.T, up *upstream) {
				if got := up.lastHeader().Values("X-Fold"); len(got) != 1 || got[0] != "a b" {
					t.Errorf("upstream X-Fold = %q; want [\"a b\"]", got)
				}
			},
		},
		{
			name:   "RFC 9112 §3 malformed request line: 400",
			raw:    "GET / HTTP/1.1 trailing-garbage\r\nHost: {host}\r\n\r\n",
			status: 400,
		},
		{
			name:   "RFC 9112 §3 request line without a target: 400",
			raw:    "GET\r\nHost: {host}\r\n\r\n",
			status: 400,
		},
		{
			name:   "RFC 9112 §3.2 HTTP/1.1 without Host: 400",
			raw:    "GET /a HTTP/1.1\r\n\r\n",
			status: 400,
		},
		{
			name:   "RFC 9110 §5.1 invalid field name: 400",
			raw:    "GET /a HTTP/1.1\r\nHost: {host}\r\nX Bad: v\r\n\r\n",
			status: 400,
		},
		{
			name:     "RFC 6585 §5 header section over max_header_bytes: 431",
			raw:      "GET /a HTTP/1.1\r\nHost: {host}\r\nX-Big: " + big + "\r\n\r\n",
			listener: func(l *config.Listener) { l.MaxHeaderBytes = 8 << 10 },
			status:   431,
		},
		{
			name:     "RFC 9110 §15.5.14 body over max_request_body (Content-Length): 413",
			raw:      "POST /a HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n" + strings.Repeat("b", 4096),
			listener: func(l *config.Listener) { l.MaxRequestBody = 1 << 10 },
			status:   413,
			check: func(t *testing.T, up *upstream) {
				if n := up.hits.Load(); n != 0 {
					t.Errorf("upstream requests = %d; want 0 (rejected before forwarding)", n)
				}
			},
		},
		{
			name: "RFC 9110 §15.5.14 body over max_request_body (chunked): 413",
			raw: "POST /a HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
				"1000\r\n" + strings.Repeat("b", 4096) + "\r\n0\r\n\r\n",
			listener: func(l *config.Listener) { l.MaxRequestBody = 1 << 10 },
			status:   413,
		},
		{
			name:     "slow client: headers never finish, closed after read_header_timeout",
			raw:      "GET /a HTTP/1.1\r\nHost: {host}\r\nX-Slow: ",
			listener: func(l *config.Listener) { l.ReadHeaderTimeout = 200 * time.Millisecond },
			status:   0, closedIn: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t, func(t *testing.T) {
				h := newHarness(t, harnessOptions{handler: echoHandler, listener: tt.listener})
				start := time.Now()
				status, resp := rawRequest(t, h.addr(), strings.ReplaceAll(tt.raw, "{host}", h.addr()), wait)
				if status != tt.status {
					first, _, _ := strings.Cut(resp, "\r\n")
					t.Errorf("status = %d (%q); want %d", status, first, tt.status)
				}
				if tt.closedIn > 0 {
					if d := time.Since(start); d >= tt.closedIn {
						t.Errorf("connection closed after %v; want within %v", d, tt.closedIn)
					}
				}
				if tt.check != nil {
					tt.check(t, h.up)
				}
				if got := h.w.Stats().Entries; got != 0 {
					t.Errorf("cache entries = %d; want 0", got)
				}
			})
		})
	}
}

// TestBadUpstreams: an upstream that hangs, resets, talks garbage or cuts
// its body short gets a clear 5xx (or a broken response, never a stored
// one), and leaves no goroutine behind.
func TestBadUpstreams(t *testing.T) {
	readRequest := func(c net.Conn) bool {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return false
		}
		io.Copy(io.Discard, req.Body)
		return true
	}
	tests := []struct {
		name    string
		handler handlerFunc      // a net/http upstream, or
		raw     func(c net.Conn) // a raw TCP one
		timeout time.Duration    // route timeout
		respTO  time.Duration    // cluster response_timeout (0: the harness default)
		status  int              // 0: the client sees a broken response
		within  time.Duration    // the answer must come within this
		cs      string           // Cache-Status substring
	}{
		{
			name: "upstream hangs: route timeout answers 504",
			handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				select {
				case <-r.Context().Done():
				case <-time.After(wait):
				}
			},
			timeout: 300 * time.Millisecond, status: 504, within: 2 * time.Second, cs: "detail=upstream-error",
		},
		{
			name: "upstream sends no response head: cluster response_timeout answers 504",
			handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				select {
				case <-r.Context().Done():
				case <-time.After(wait):
				}
			},
			respTO: 300 * time.Millisecond, status: 504, within: 2 * time.Second, cs: "detail=upstream-error",
		},
		{
			name: "upstream resets the connection: 502",
			raw: func(c net.Conn) {
				if readRequest(c) {
					c.(*net.TCPConn).SetLinger(0) // RST instead of FIN
				}
			},
			status: 502, within: wait, cs: "detail=upstream-error",
		},
		{
			name: "upstream closes without answering: 502",
			raw: func(c net.Conn) {
				readRequest(c)
			},
			status: 502, within: wait, cs: "detail=upstream-error",
		},
		{
			name: "upstream answers garbage: 502",
			raw: func(c net.Conn) {
				if readRequest(c) {
					io.WriteString(c, "THIS IS NOT HTTP\r\n\r\n")
				}
			},
			status: 502, within: wait, cs: "detail=upstream-error",
		},
		{
			name: "upstream answers an invalid status line: 502",
			raw: func(c net.Conn) {
				if readRequest(c) {
					io.WriteString(c, "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")
				}
			},
			status: 502, within: wait, cs: "detail=upstream-error",
		},
		{
			name: "upstream body shorter than its Content-Length: broken, never stored",
			raw: func(c net.Conn) {
				if readRequest(c) {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nCache-Control: max-age=60\r\n"+
						"Content-Type: application/octet-stream\r\n\r\nshort")
				}
			},
			status: 0, within: wait,
		},
		{
			name: "chunked upstream body cut short: broken, never stored",
			raw: func(c net.Conn) {
				if readRequest(c) {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n"+
						"Content-Type: application/octet-stream\r\n\r\n5\r\nshort\r\n")
				}
			},
			status: 0, within: wait,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t, func(t *testing.T) {
				o := harnessOptions{handler: tt.handler}
				if tt.raw != nil {
					o = harnessOptions{origin: newRawUpstream(t, tt.raw)}
				}
				o.config = func(c *config.Config) {
					c.Routes[0].Timeout = tt.timeout
					if tt.respTO > 0 {
						c.Clusters[0].ResponseTimeout = tt.respTO
					}
				}
				h := newHarness(t, o)
				for i := 0; i < 2; i++ { // the second one proves nothing was stored
					start := time.Now()
					resp, err := h.client.Get(h.url("/r"))
					var body []byte
					if err == nil {
						body, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if d := time.Since(start); d > tt.within {
						t.Errorf("request %d: answered after %v; want within %v", i+1, d, tt.within)
					}
					switch {
					case tt.status == 0:
						if err == nil {
							t.Errorf("request %d: got a complete response (%d, %q); want a broken one", i+1, resp.StatusCode, body)
						}
					case err != nil:
						t.Fatalf("request %d: %v; want %d", i+1, err, tt.status)
					default:
						if resp.StatusCode != tt.status {
							t.Errorf("request %d: status = %d; want %d", i+1, resp.StatusCode, tt.status)
						}
						if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, tt.cs) {
							t.Errorf("request %d: Cache-Status = %q; want %q", i+1, cs, tt.cs)
						}
					}
				}
				if _, _, ok := h.w.GetStale(nil, h.key("/r")); ok {
					t.Error("the response was stored; want nothing stored")
				}
			})
		})
	}
}

// TestCachePoisoning: request fields the cache key does not include must
// not let one request plant a response that others then get (unkeyed
// input poisoning). The upstream reflects each field into its body and
// sends no Vary, which is the classic vulnerable origin.
func TestCachePoisoning(t *testing.T) {
	reflect := func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/octet-stream")
		switch {
		case r.Header.Get("X-Original-Url") != "":
			fmt.Fprintf(w, "page %s", r.Header.Get("X-Original-Url"))
		case r.Header.Get("X-Rewrite-Url") != "":
			fmt.Fprintf(w, "page %s", r.Header.Get("X-Rewrite-Url"))
		case r.Header.Get("X-Forwarded-Scheme") == "http":
			http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
		case r.Header.Get("X-Http-Method-Override") != "":
			fmt.Fprintf(w, "did %s", r.Header.Get("X-Http-Method-Override"))
		default:
			fmt.Fprintf(w, "host %s", r.Header.Get("X-Forwarded-Host"))
		}
	}
	tests := []struct {
		name   string
		attack []string
		cs     string // Cache-Status of the attack request
	}{
		{"X-Forwarded-Host is set by the proxy, never taken from the client", []string{"X-Forwarded-Host", "evil.example"}, "stored"},
		{"X-Original-URL does not poison the URL's entry", []string{"X-Original-URL", "/admin"}, "fwd=bypass"},
		{"X-Rewrite-URL does not poison the URL's entry", []string{"X-Rewrite-URL", "/admin"}, "fwd=bypass"},
		{"X-Forwarded-Scheme does not poison the URL's entry", []string{"X-Forwarded-Scheme", "http"}, "fwd=bypass"},
		{"X-HTTP-Method-Override does not poison the URL's entry", []string{"X-HTTP-Method-Override", "DELETE"}, "fwd=bypass"},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				h := newHarness(t, harnessOptions{mode: mode, handler: reflect})
				_, host := h.rawHead(http.MethodGet, "/")
				want := "host " + host
				if cs := h.get("/p", tt.attack...).cacheStatus(); !strings.Contains(cs, tt.cs) {
					t.Errorf("attack request Cache-Status = %q; want %q", cs, tt.cs)
				}
				for i := 0; i < 2; i++ {
					r := h.get("/p")
					if r.StatusCode != 200 || r.body != want {
						t.Errorf("normal request %d: %d %q (Cache-Status %q); want 200 %q", i+1, r.StatusCode, r.body, r.cacheStatus(), want)
					}
				}
			})
		}
	}

	// RFC 9110 §7.2: in reverse mode the Host is part of the cache key, so
	// a request with a forged Host gets (and stores) its own entry.
	t.Run("reverse/Host values are separate cache entries", func(t *testing.T) {
		h := newHarness(t, harnessOptions{handler: reflect})
		runSteps(t, h, []step{
			{hdr: []string{"Host", "a.example"}, hits: 1, body: "host a.example", cs: []string{"stored"}},
			{hdr: []string{"Host", "b.example"}, hits: 2, body: "host b.example", cs: []string{"fwd=uri-miss"}},
			{hdr: []string{"Host", "a.example"}, hits: 2, body: "host a.example", cs: []string{"hit"}},
			{hdr: []string{"Host", "A.EXAMPLE:80"}, hits: 2, body: "host a.example", cs: []string{"hit"}},
		})
	})
}
