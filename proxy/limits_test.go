package proxy_test

import (
	"bufio"
	"context"
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

// slowUpstream holds /slow requests until release is closed or the
// request is cancelled; it counts the requests it holds.
type slowUpstream struct {
	held atomic.Int64
	mu   sync.Mutex
	rel  chan struct{}
	gone atomic.Int64 // requests whose context ended before release
}

// arm makes the next /slow requests wait; release lets them go.
func (s *slowUpstream) arm() {
	s.mu.Lock()
	s.rel = make(chan struct{})
	s.mu.Unlock()
}

func (s *slowUpstream) release() {
	s.mu.Lock()
	if s.rel != nil {
		close(s.rel)
		s.rel = nil
	}
	s.mu.Unlock()
}

func (s *slowUpstream) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rel == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.rel
}

func (s *slowUpstream) handler(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/slow") {
		s.held.Add(1)
		defer s.held.Add(-1)
		select {
		case <-s.wait():
		case <-r.Context().Done():
			s.gone.Add(1)
			return
		case <-time.After(20 * time.Second):
		}
	}
	io.WriteString(w, "done")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestConcurrencyLimitBothPaths: a route's caps (all clients, and per
// client address) answer 503 with the cap named in Proxy-Status while
// requests are in progress, count the refusals, and give the slot back
// when a request ends: by its response or because its client went away.
func TestConcurrencyLimitBothPaths(t *testing.T) {
	for _, tt := range []struct {
		name           string
		max, perClient int
		limit          string
	}{
		{"route", 2, 0, "route"},
		{"client", 0, 2, "client"},
	} {
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/plain=%v", tt.name, plain), func(t *testing.T) {
				up := &slowUpstream{}
				up.arm()
				defer up.release()
				h := newHarness(t, harnessOptions{handler: up.handler, plainServer: plain, config: func(c *config.Config) {
					c.Routes[0].MaxConcurrentRequests = tt.max
					c.Routes[0].MaxConcurrentRequestsPerClient = tt.perClient
				}})
				var wg sync.WaitGroup
				codes := make(chan int, 2)
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := h.client.Get(h.url(fmt.Sprintf("/slow%d", i)))
						if err != nil {
							codes <- -1
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						codes <- resp.StatusCode
					}()
				}
				waitFor(t, "two requests upstream", func() bool { return up.held.Load() == 2 })
				r := h.get("/fast")
				if r.StatusCode != 503 || !strings.Contains(r.Header.Get("Proxy-Status"), "concurrency limit: "+tt.limit) {
					t.Errorf("third request: %d, Proxy-Status %q; want 503 naming the %s limit", r.StatusCode, r.Header.Get("Proxy-Status"), tt.limit)
				}
				if got := counter(t, h.p, "zerohop_concurrency_refused_total", "limit", tt.limit); got != 1 {
					t.Errorf("refusals counted %v; want 1", got)
				}
				up.release()
				wg.Wait()
				close(codes)
				for c := range codes {
					if c != 200 {
						t.Errorf("a held request ended %d; want 200", c)
					}
				}
				// The slots were given back.
				for i := range 3 {
					if r := h.get("/fast"); r.StatusCode != 200 {
						t.Fatalf("after the release #%d: %d; want 200", i, r.StatusCode)
					}
				}

				// A client that goes away gives its slot back too.
				up.arm()
				ctx, cancel := context.WithCancel(context.Background())
				for i := range 2 {
					req, _ := http.NewRequestWithContext(ctx, "GET", h.url(fmt.Sprintf("/slow%d", i)), nil)
					go func() {
						if resp, err := h.client.Do(req); err == nil {
							resp.Body.Close()
						}
					}()
				}
				waitFor(t, "two requests upstream", func() bool { return up.held.Load() == 2 })
				if r := h.get("/fast"); r.StatusCode != 503 {
					t.Fatalf("while two are held: %d; want 503", r.StatusCode)
				}
				cancel()
				if plain {
					// net/http sees the client go and cancels the exchange.
					waitFor(t, "the aborted requests to end upstream", func() bool { return up.gone.Load() == 2 })
				} else {
					// A request the fast path handed over ends with its
					// handler, not with its client (fastpath.RequestCtx): the
					// slot comes back when the upstream answers (or the
					// cluster's response_timeout ends the exchange).
					time.Sleep(50 * time.Millisecond)
					up.release()
				}
				waitFor(t, "a slot after the clients went away", func() bool { return h.get("/fast").StatusCode == 200 })
			})
		}
	}
}

// TestHeaderTooLarge431BothPaths: a head over max_header_bytes is
// answered 431 behind the fast path and on net/http alone.
func TestHeaderTooLarge431BothPaths(t *testing.T) {
	for _, plain := range []bool{false, true} {
		for _, get := range []bool{true, false} {
			h := newHarness(t, harnessOptions{handler: echoHandler, plainServer: plain,
				listener: func(l *config.Listener) { l.MaxHeaderBytes = 8 << 10 }})
			method := "GET"
			if !get {
				method = "POST"
			}
			// net/http allows 4 KiB over MaxHeaderBytes; well past both.
			raw := method + " /a HTTP/1.1\r\nHost: " + h.addr() + "\r\nContent-Length: 0\r\nX-Big: " + strings.Repeat("x", 32<<10) + "\r\n\r\n"
			if status, resp := rawRequest(t, h.addr(), raw, 5*time.Second); status != 431 {
				first, _, _ := strings.Cut(resp, "\r\n")
				t.Errorf("plain=%v %s: %q; want 431", plain, method, first)
			}
			if n := h.up.hits.Load(); n != 0 {
				t.Errorf("plain=%v: upstream hit %d times", plain, n)
			}
		}
	}
}

// TestBodyTooLarge413Streaming: a chunked body of 64 MiB streamed in pieces, larger
// than max_request_body, is cut off at the cap while it streams (never
// buffered whole) and answered 413 on both paths.
func TestBodyTooLarge413Streaming(t *testing.T) {
	const limit = 64 << 10
	for _, plain := range []bool{false, true} {
		var upBytes atomic.Int64
		h := newHarness(t, harnessOptions{plainServer: plain,
			handler: func(w http.ResponseWriter, r *http.Request, n int64) {
				k, _ := io.Copy(io.Discard, r.Body)
				upBytes.Add(k)
				io.WriteString(w, "read")
			},
			listener: func(l *config.Listener) { l.MaxRequestBody = limit }})
		// A raw connection: the client keeps writing while the answer
		// comes, as a real uploader does, and its write errors after the
		// proxy stops reading are expected.
		conn, err := net.Dial("tcp", h.addr())
		if err != nil {
			t.Fatal(err)
		}
		sent := atomic.Int64{}
		go func() {
			fmt.Fprintf(conn, "POST /up HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n", h.addr())
			chunk := fmt.Sprintf("%x\r\n%s\r\n", 16<<10, strings.Repeat("b", 16<<10))
			for range 4096 { // 64 MiB, 16 KiB at a time: more than the sockets buffer
				if _, err := io.WriteString(conn, chunk); err != nil {
					return // the proxy stopped reading
				}
				sent.Add(16 << 10)
			}
			io.WriteString(conn, "0\r\n\r\n")
		}()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("plain=%v: %v", plain, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 413 {
			t.Errorf("plain=%v: status %d; want 413", plain, resp.StatusCode)
		}
		t.Logf("plain=%v: the client wrote %d KiB before the proxy stopped reading", plain, sent.Load()>>10)
		if s := sent.Load(); s >= 64<<20 {
			t.Errorf("plain=%v: the whole body (%d bytes) was read; want it cut off at the cap", plain, s)
		}
		if n := upBytes.Load(); n > limit {
			t.Errorf("plain=%v: the upstream got %d bytes; want at most the cap (%d)", plain, n, limit)
		}
	}
}

// TestRouteBodyLimit: a route's max_request_body applies to its requests
// only (413 for a declared length over it, and for a streamed body), the
// smaller of the route's and the listener's caps winning.
func TestRouteBodyLimit(t *testing.T) {
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: echoHandler, plainServer: plain,
			listener: func(l *config.Listener) { l.MaxRequestBody = 16 << 10 },
			config: func(c *config.Config) {
				c.Routes = append([]config.Route{
					{Name: "small", Cluster: "main", Match: config.Match{PathPrefix: "/small/"}, MaxRequestBody: 1 << 10},
					{Name: "large", Cluster: "main", Match: config.Match{PathPrefix: "/large/"}, MaxRequestBody: 1 << 20},
				}, c.Routes...)
			}})
		for _, tt := range []struct {
			path    string
			size    int
			chunked bool
			want    int
		}{
			{"/small/a", 512, false, 200},
			{"/small/a", 4 << 10, false, 413},
			{"/small/a", 4 << 10, true, 413},
			{"/other", 4 << 10, false, 200},
			{"/large/a", 32 << 10, false, 413}, // the listener's cap is smaller
			{"/large/a", 32 << 10, true, 413},
		} {
			te := "Content-Length: " + fmt.Sprint(tt.size) + "\r\n"
			body := strings.Repeat("b", tt.size)
			if tt.chunked {
				te = "Transfer-Encoding: chunked\r\n"
				body = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", tt.size, body)
			}
			raw := "POST " + tt.path + " HTTP/1.1\r\nHost: " + h.addr() + "\r\n" + te + "Connection: close\r\n\r\n" + body
			if status, _ := rawRequest(t, h.addr(), raw, 5*time.Second); status != tt.want {
				t.Errorf("plain=%v %s %d bytes chunked=%v: %d; want %d", plain, tt.path, tt.size, tt.chunked, status, tt.want)
			}
		}
	}
}
