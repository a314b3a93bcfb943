package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReuse: sequential exchanges whose responses allow keep-alive share
// one connection, whatever the framing, once each body is read to EOF.
func TestReuse(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		handler  http.HandlerFunc
		body     string
		trailers http.Header
	}{
		{name: "content-length", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello")
		}, body: "hello"},
		{name: "chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hel")
			w.(http.Flusher).Flush()
			io.WriteString(w, "lo")
		}, body: "hello"},
		{name: "chunked with trailers", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "hel")
			w.(http.Flusher).Flush()
			io.WriteString(w, "lo")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}, body: "hello", trailers: http.Header{"X-Sum": {"42"}, "X-Late": {"yes"}}},
		{name: "large body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), 1<<20))
		}, body: strings.Repeat("x", 1<<20)},
		{name: "empty", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "0")
		}},
		{name: "204", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}},
		{name: "304", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{name: "HEAD", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
		}},
		{name: "404 with body", handler: func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, body: "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, conns := newServer(t, tt.handler)
			tr := newTransport(t, Options{})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			for i := range 10 {
				resp, body := do(t, tr, mustRequest(t, context.Background(), method, s.URL+"/", nil))
				if body != tt.body {
					t.Fatalf("request %d: body = %.40q (%d bytes); want %.40q", i, body, len(body), tt.body)
				}
				for k, v := range tt.trailers {
					if got := resp.Trailer.Get(k); got != v[0] {
						t.Errorf("trailer %s = %q; want %q (all: %v)", k, got, v[0], resp.Trailer)
					}
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections for 10 sequential requests; want 1", n)
			}
			if n := tr.idleCount(); n != 1 {
				t.Errorf("idle pool holds %d; want 1", n)
			}
		})
	}
}

// TestNoReuse: responses and requests that end the connection.
func TestNoReuse(t *testing.T) {
	respond := func(head string) func(c net.Conn, br *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			for {
				if _, ok := readRequest(br); !ok {
					return
				}
				io.WriteString(c, head)
				if strings.Contains(head, "until-close") {
					return
				}
			}
		}
	}
	tests := []struct {
		name  string
		raw   string // a raw upstream's response, or
		h     http.HandlerFunc
		close bool // request Close
		hdr   bool // request Connection: close header
		body  string
	}{
		{name: "Connection: close", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", body: "ok"},
		{name: "HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", body: "ok"},
		{name: "read until close", raw: "HTTP/1.1 200 OK\r\nX-Mode: until-close\r\n\r\nok", body: "ok"},
		{name: "request Close", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true, body: "ok"},
		{name: "request Connection: close", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", hdr: true, body: "ok"},
		{name: "extra bytes after the response", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK", body: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRawServer(t, respond(tt.raw))
			tr := newTransport(t, Options{})
			for i := range 3 {
				req := mustRequest(t, context.Background(), "GET", s.URL()+"/", nil)
				req.Close = tt.close
				if tt.hdr {
					req.Header.Set("Connection", "close")
				}
				_, body := do(t, tr, req)
				if body != tt.body {
					t.Fatalf("request %d: body = %q; want %q", i, body, tt.body)
				}
			}
			if n := s.conns.Load(); n != 3 {
				t.Errorf("%d connections for 3 requests; want 3", n)
			}
			if n := tr.idleCount(); n != 0 {
				t.Errorf("idle pool holds %d; want 0", n)
			}
		})
	}
}

// TestEarlyClose: closing a body before EOF reuses the connection if the
// rest is short (drained), and closes it otherwise.
func TestEarlyClose(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunked bool
		stall   bool // the server stops sending after the first bytes
		conns   int32
	}{
		{name: "short content-length body is drained", size: 10 << 10, conns: 1},
		{name: "short chunked body is drained", size: 10 << 10, chunked: true, conns: 1},
		{name: "long content-length body closes", size: 4 << 20, conns: 3},
		{name: "long chunked body closes", size: 4 << 20, chunked: true, conns: 3},
		{name: "stalled body closes", size: 100, stall: true, conns: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if !tt.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(tt.size))
				}
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				if tt.stall {
					select {
					case <-release:
					case <-r.Context().Done():
					}
					return
				}
				w.Write(bytes.Repeat([]byte("x"), tt.size-1))
			})
			tr := newTransport(t, Options{})
			for range 3 {
				resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL, nil))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				within(t, time.Second, "Close", func() { resp.Body.Close() })
				if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
					t.Error("Read after Close succeeded")
				}
			}
			if n := conns.Load(); n != tt.conns {
				t.Errorf("%d connections for 3 requests; want %d", n, tt.conns)
			}
		})
	}
}

// closeAfter answers each request on a connection until the n-th, which it
// reads and then drops without answering: the server closing an idle
// keep-alive connection just as the client reuses it.
func closeAfter(n int, resp string) func(c net.Conn, br *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for i := 1; ; i++ {
			if _, ok := readRequest(br); !ok {
				return
			}
			if i == n {
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			io.WriteString(c, resp)
		}
	}
}

// TestStaleConnRetry: a request on a reused connection that the server
// closed is sent again on a fresh one if net/http would retry it.
func TestStaleConnRetry(t *testing.T) {
	body := func(s string) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
	}
	tests := []struct {
		name    string
		method  string
		body    string
		getBody bool
		header  string
		retried bool
	}{
		{name: "GET", method: "GET", retried: true},
		{name: "HEAD", method: "HEAD", retried: true},
		{name: "OPTIONS", method: "OPTIONS", retried: true},
		{name: "POST without body", method: "POST"},
		{name: "POST with body, no GetBody", method: "POST", body: "data"},
		{name: "POST with GetBody", method: "POST", body: "data", getBody: true},
		{name: "POST with GetBody and Idempotency-Key", method: "POST", body: "data", getBody: true, header: "Idempotency-Key", retried: true},
		{name: "POST with GetBody and X-Idempotency-Key", method: "POST", body: "data", getBody: true, header: "X-Idempotency-Key", retried: true},
		{name: "POST without GetBody, with Idempotency-Key", method: "POST", body: "data", header: "Idempotency-Key"},
		{name: "PUT with GetBody", method: "PUT", body: "data", getBody: true},
		{name: "DELETE", method: "DELETE"},
		{name: "GET with GetBody", method: "GET", body: "data", getBody: true, retried: true},
	}
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bodies []string
			var mu sync.Mutex
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for i := 1; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					if i == 2 {
						c.(*net.TCPConn).SetLinger(0)
						return
					}
					mu.Lock()
					bodies = append(bodies, string(b))
					mu.Unlock()
					io.WriteString(c, ok)
				}
			})
			tr := newTransport(t, Options{})
			get(t, tr, s.URL()) // leaves a pooled connection
			var rb io.Reader
			if tt.body != "" {
				rb = strings.NewReader(tt.body)
			}
			req := mustRequest(t, context.Background(), tt.method, s.URL(), rb)
			req.GetBody = nil
			if tt.getBody {
				req.GetBody = body(tt.body)
			}
			if tt.header != "" {
				req.Header.Set(tt.header, "k1")
			}
			resp, err := tr.RoundTrip(req)
			if tt.retried {
				if err != nil {
					t.Fatalf("got %v; want a retry on a fresh connection", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n := s.conns.Load(); n != 2 {
					t.Errorf("%d connections; want 2", n)
				}
				mu.Lock()
				if got := bodies[len(bodies)-1]; got != tt.body {
					t.Errorf("retried request body = %q; want %q", got, tt.body)
				}
				mu.Unlock()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got %d; want an error (no retry)", resp.StatusCode)
			}
			if n := s.conns.Load(); n != 1 {
				t.Errorf("%d connections; want 1 (no retry)", n)
			}
		})
	}
}

// TestNoRetryOnFreshConn: a fresh connection that fails is not retried.
func TestNoRetryOnFreshConn(t *testing.T) {
	s := newRawServer(t, closeAfter(1, ""))
	tr := newTransport(t, Options{})
	_, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL(), nil))
	if err == nil {
		t.Fatal("no error")
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}

// TestIdleCloseDetected: a connection the server closed while it sat in
// the pool is noticed at checkout, so that even a request that may not be
// retried goes out on a fresh connection.
func TestIdleCloseDetected(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br); true {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		// then close, idle
	})
	tr := newTransport(t, Options{})
	get(t, tr, s.URL())
	time.Sleep(50 * time.Millisecond)
	req := mustRequest(t, context.Background(), "POST", s.URL(), strings.NewReader("data"))
	req.GetBody = nil
	if _, body := do(t, tr, req); body != "ok" {
		t.Errorf("body = %q", body)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2", n)
	}
}

// TestCancel: the context aborts every stage, the error is the context's,
// and the connection is not pooled.
func TestCancel(t *testing.T) {
	errCause := errors.New("route timeout")
	tests := []struct {
		name   string
		stage  string // "head" or "body"
		ctx    func() (context.Context, context.CancelFunc)
		cancel bool // cancel after 100ms instead of waiting for a deadline
		want   error
	}{
		{name: "cancel awaiting the head", stage: "head", cancel: true, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "deadline awaiting the head", stage: "head", want: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}},
		{name: "deadline with cause awaiting the head", stage: "head", want: errCause,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeoutCause(context.Background(), 100*time.Millisecond, errCause)
			}},
		{name: "cancel mid-body", stage: "body", cancel: true, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "deadline mid-body", stage: "body", want: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}},
		{name: "cancel mid-body, chunked", stage: "chunked", cancel: true, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "EndWatcher cancel awaiting the head", stage: "head", cancel: true, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return newEndWatcherCtx() }},
		{name: "EndWatcher cancel mid-body", stage: "body", cancel: true, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return newEndWatcherCtx() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/warm" {
					return
				}
				switch tt.stage {
				case "body":
					w.Header().Set("Content-Length", "100")
					fallthrough
				case "chunked":
					io.WriteString(w, "first")
					w.(http.Flusher).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			tr := newTransport(t, Options{})
			get(t, tr, s.URL+"/warm?x") // a pooled connection to cancel on
			ctx, cancel := tt.ctx()
			defer cancel()
			if tt.cancel {
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			var err error
			within(t, 2*time.Second, "cancelled exchange", func() {
				var resp *http.Response
				resp, err = tr.RoundTrip(mustRequest(t, ctx, "GET", s.URL, nil))
				if err == nil {
					defer resp.Body.Close()
					var b []byte
					b, err = io.ReadAll(resp.Body)
					if string(b) != "first" {
						t.Errorf("body before the error = %q; want %q", b, "first")
					}
				}
			})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v; want %v", err, tt.want)
			}
			if n := tr.idleCount(); n != 0 {
				t.Errorf("idle pool holds %d; want 0 (the interrupted connection is closed)", n)
			}
			if w, ok := ctx.(*endWatcherCtx); ok && w.watches.Load() == 0 {
				t.Error("the connection did not watch through WatchEnd")
			}
		})
	}
}

// endWatcherCtx is a context with its own WatchEnd, as the proxy's fast
// path gives its requests, counting the watches.
type endWatcherCtx struct {
	context.Context
	watches atomic.Int32
	mu      sync.Mutex
	stop    func() bool
}

func newEndWatcherCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return &endWatcherCtx{Context: ctx}, cancel
}

func (c *endWatcherCtx) WatchEnd(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return false
	}
	c.watches.Add(1)
	c.stop = context.AfterFunc(c.Context, f)
	return true
}

func (c *endWatcherCtx) UnwatchEnd() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := c.stop
	c.stop = nil
	return stop != nil && stop()
}

// TestCanceledBeforeStart: a done context fails at once and closes the
// request body.
func TestCanceledBeforeStart(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &closeRecorder{Reader: strings.NewReader("x")}
	req := mustRequest(t, ctx, "POST", s.URL, b)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
	if !b.closed.Load() {
		t.Error("request body not closed")
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections; want 0", n)
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

// TestCloseAbortsRead: Close from another goroutine unblocks a Read.
func TestCloseAbortsRead(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	tr := newTransport(t, Options{})
	resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 5))
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	within(t, 2*time.Second, "blocked Read", func() {
		if _, err := resp.Body.Read(make([]byte, 10)); err == nil {
			t.Error("Read after Close succeeded")
		}
	})
	if n := tr.idleCount(); n != 0 {
		t.Errorf("idle pool holds %d; want 0", n)
	}
}

// TestResponseHeaderTimeout: the head must come in time, then the body
// may take longer.
func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "late")
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	tr := newTransport(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	var err error
	within(t, time.Second, "head timeout", func() {
		_, err = tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL+"/hang", nil))
	})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v; want a net.Error with Timeout()", err)
	}
	if !errors.Is(err, ErrHeaderTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want ErrHeaderTimeout, which is a context.DeadlineExceeded", err)
	}
	for range 2 { // the second one on the reused connection: no stale deadline
		if _, body := get(t, tr, s.URL+"/slow-body"); body != "late" {
			t.Errorf("body = %q; want %q", body, "late")
		}
	}
}

// TestMalformedResponses: broken upstreams produce errors, never a hang or
// a panic, and their connections are not pooled.
func TestMalformedResponses(t *testing.T) {
	endless := func(line string) func(c net.Conn, br *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, ok := readRequest(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			b := []byte(strings.Repeat(line, 1000))
			for range 100000 { // stops on the client's close, or after ~GiB
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}
	}
	answer := func(s string, linger bool) func(c net.Conn, br *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, ok := readRequest(br); !ok {
				return
			}
			io.WriteString(c, s)
			if linger {
				c.(*net.TCPConn).SetLinger(0)
			}
		}
	}
	tests := []struct {
		name   string
		handle func(c net.Conn, br *bufio.Reader)
		head   bool // the error comes from RoundTrip (else from the body)
		max    int64
		want   string // a part of the error
	}{
		{name: "garbage", handle: answer("THIS IS NOT HTTP\r\n\r\n", false), head: true, want: "malformed HTTP"},
		{name: "garbage without newline", handle: answer("garbage", false), head: true, want: "malformed HTTP"},
		{name: "invalid status code", handle: answer("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false), head: true, want: "status code"},
		{name: "bad version", handle: answer("HTP/1.1 200 OK\r\n\r\n", false), head: true, want: "malformed HTTP version"},
		{name: "conflicting Content-Length", handle: answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false), head: true, want: "Content-Length"},
		{name: "bad Content-Length", handle: answer("HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", false), head: true},
		{name: "bad header line", handle: answer("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", false), head: true},
		{name: "endless headers", handle: endless("X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), head: true, want: "exceeded 1048576 bytes"},
		{name: "endless headers, small limit", handle: endless("X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), max: 4096, head: true, want: "exceeded 4096 bytes"},
		{name: "endless header line", handle: endless("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), head: true, want: "exceeded"},
		{name: "close without answer", handle: answer("", false), head: true, want: "closed the connection"},
		{name: "reset without answer", handle: answer("", true), head: true},
		{name: "close mid-head", handle: answer("HTTP/1.1 200 OK\r\nContent-Le", false), head: true, want: "malformed MIME header"},
		{name: "close mid-status", handle: answer("HTTP/1.1 2", false), head: true, want: "malformed HTTP"},
		{name: "reset mid-head", handle: answer("HTTP/1.1 200 OK\r\nContent-Le", true), head: true},
		{name: "body shorter than Content-Length", handle: answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", false), want: "unexpected EOF"},
		{name: "chunked body cut short", handle: answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nshort\r\n", false), want: "unexpected EOF"},
		{name: "bad chunk size", handle: answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nshort\r\n", false)},
		{name: "too many 1xx", handle: answer(strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 10)+"HTTP/1.1 200 OK\r\n\r\n", false), head: true, want: "1xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRawServer(t, tt.handle)
			tr := newTransport(t, Options{MaxResponseHeaderBytes: tt.max})
			within(t, wait, "exchange", func() {
				resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL(), nil))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if tt.head && err == nil {
						t.Errorf("got %d and a complete body; want an error", resp.StatusCode)
					}
				} else if !tt.head {
					t.Errorf("RoundTrip: %v; want the error from the body", err)
				}
				if err == nil {
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v; want it to mention %q", err, tt.want)
				}
			})
			if n := tr.idleCount(); n != 0 {
				t.Errorf("idle pool holds %d; want 0", n)
			}
		})
	}
}

// Test1xx: informational responses go to httptrace's Got1xxResponse (as
// httputil.ReverseProxy needs for 103 Early Hints) and the final response
// follows.
func Test1xx(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 7 { // more than max1xx: allowed when delivered
			w.Header().Set("Link", fmt.Sprintf("</style%d.css>; rel=preload", i))
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	tr := newTransport(t, Options{})
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	resp, body := do(t, tr, mustRequest(t, ctx, "GET", s.URL, nil))
	if resp.StatusCode != 200 || body != "final" {
		t.Errorf("final response %d %q; want 200 final", resp.StatusCode, body)
	}
	if len(got) != 7 || got[0] != "103 </style0.css>; rel=preload" {
		t.Errorf("1xx seen = %q; want 7 103s with their Link", got)
	}
	// A hook's error fails the exchange.
	trace.Got1xxResponse = func(int, textproto.MIMEHeader) error { return errors.New("no hints please") }
	if _, err := tr.RoundTrip(mustRequest(t, ctx, "GET", s.URL, nil)); err == nil || !strings.Contains(err.Error(), "no hints") {
		t.Errorf("err = %v; want the hook's", err)
	}
	// Without a hook, up to five are skipped.
	s2 := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for range 2 {
		if resp, body := get(t, tr, s2.URL()); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("got %d %q; want 200 ok", resp.StatusCode, body)
		}
	}
	if n := s2.conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
	_ = conns
}

// TestUpgrade: a 101 response's body is the connection, readable and
// writable, as httputil.ReverseProxy needs for WebSocket; it is never
// pooled.
func TestUpgrade(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		// The greeting comes with the head, so that it sits in the
		// client's buffer.
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhi;")
		brw.Flush()
		io.Copy(c, brw)
	})
	tr := newTransport(t, Options{})
	req := mustRequest(t, context.Background(), "GET", s.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not an io.ReadWriteCloser", resp.Body)
	}
	defer rwc.Close()
	if _, err := io.WriteString(rwc, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "hi;ping" {
		t.Errorf("read %q, %v; want %q", buf, err, "hi;ping")
	}
	if err := rwc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("idle pool holds %d; want 0", n)
	}
}

// TestRequestBodies: bodies of known and unknown length arrive intact, and
// a body that fails to read fails the exchange with its own error.
func TestRequestBodies(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d %v %d", len(b), r.TransferEncoding, r.ContentLength)
	})
	tr := newTransport(t, Options{})
	big := strings.Repeat("b", 3<<20)
	for _, tt := range []struct {
		name string
		body io.Reader
		want string
	}{
		{"content-length", strings.NewReader(big), fmt.Sprintf("%d [] %d", len(big), len(big))},
		{"chunked", io.MultiReader(strings.NewReader("abc"), strings.NewReader("de")), "5 [chunked] -1"},
		{"empty", http.NoBody, "0 [] 0"},
	} {
		req := mustRequest(t, context.Background(), "POST", s.URL, tt.body)
		if _, body := do(t, tr, req); body != tt.want {
			t.Errorf("%s: upstream saw %q; want %q", tt.name, body, tt.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}

	// A failing body: the error is the body's, unwrappable.
	rec := httptest.NewRecorder()
	limited := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(big)), 1000)
	req := mustRequest(t, context.Background(), "POST", s.URL, limited)
	req.ContentLength = -1
	_, err := tr.RoundTrip(req)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Errorf("err = %v (%T); want an *http.MaxBytesError", err, err)
	}
}

// TestEarlyResponse: a server that answers without reading a large body
// and closes: its answer reaches the caller, as with net/http.
func TestEarlyResponse(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	tr := newTransport(t, Options{})
	body := bytes.Repeat([]byte("x"), 32<<20)
	var resp *http.Response
	var err error
	within(t, wait, "exchange", func() {
		resp, err = tr.RoundTrip(mustRequest(t, context.Background(), "POST", s.URL, bytes.NewReader(body)))
	})
	if err != nil {
		t.Fatalf("got %v; want the 413", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "too large") {
		t.Errorf("got %d %q; want 413", resp.StatusCode, b)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("idle pool holds %d; want 0", n)
	}
}

// TestRequestWriteSemantics: the request is written by Request.Write: an
// explicitly empty User-Agent is left out, Host comes from req.Host.
func TestRequestWriteSemantics(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, hasUA := r.Header["User-Agent"]
		fmt.Fprintf(w, "%v|%s|%s|%s", hasUA, r.UserAgent(), r.Host, r.RequestURI)
	})
	tr := newTransport(t, Options{})
	req := mustRequest(t, context.Background(), "GET", s.URL+"/p?q=1", nil)
	req.Header.Set("User-Agent", "")
	req.Host = "example.test"
	if _, body := do(t, tr, req); body != "false||example.test|/p?q=1" {
		t.Errorf("upstream saw %q", body)
	}
	req = mustRequest(t, context.Background(), "GET", s.URL+"/", nil)
	if _, body := do(t, tr, req); !strings.HasPrefix(body, "true|Go-http-client/1.1|") {
		t.Errorf("upstream saw %q", body)
	}
}

// TestBadRequests: requests net/http's Transport refuses are refused, and
// their bodies closed.
func TestBadRequests(t *testing.T) {
	tr := newTransport(t, Options{})
	for _, tt := range []struct {
		name string
		mod  func(r *http.Request)
	}{
		{"scheme", func(r *http.Request) { r.URL.Scheme = "ftp" }},
		{"no host", func(r *http.Request) { r.URL.Host = "" }},
		{"header name", func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} }},
		{"header value", func(r *http.Request) { r.Header["X"] = []string{"a\r\nInjected: 1"} }},
		{"trailer", func(r *http.Request) { r.Trailer = http.Header{"X": {"\n"}} }},
		{"method", func(r *http.Request) { r.Method = "GE T" }},
		{"nil header", func(r *http.Request) { r.Header = nil }},
	} {
		b := &closeRecorder{Reader: strings.NewReader("x")}
		req := mustRequest(t, context.Background(), "POST", "http://127.0.0.1:1/", b)
		tt.mod(req)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		if !b.closed.Load() {
			t.Errorf("%s: body not closed", tt.name)
		}
	}
}

// TestWriteRefused: a request Request.Write refuses fails at once, and is
// not retried.
func TestWriteRefused(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	tr := newTransport(t, Options{})
	get(t, tr, s.URL) // a reused connection: retries would be allowed
	req := mustRequest(t, context.Background(), "PUT", s.URL, strings.NewReader("abc"))
	req.ContentLength = 10
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }
	var err error
	within(t, 500*time.Millisecond, "refused request", func() { _, err = tr.RoundTrip(req) })
	if err == nil || !strings.Contains(err.Error(), "ContentLength=10 with Body length 3") {
		t.Errorf("err = %v; want Request.Write's", err)
	}
}

// TestDialError: an unreachable upstream fails fast with the dial error.
func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := newTransport(t, Options{})
	_, err = tr.RoundTrip(mustRequest(t, context.Background(), "GET", "http://"+addr, nil))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("err = %v; want a dial *net.OpError", err)
	}
}

// TestConcurrent: many goroutines share the pool (run with -race).
func TestConcurrent(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, r.URL.Query().Get("v"))
	})
	tr := newTransport(t, Options{MaxIdlePerHost: 4})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				v := fmt.Sprintf("%d-%d", g, i)
				u := s.URL + "/?v=" + v
				if i%3 == 0 {
					u += "&chunked"
				}
				req, _ := http.NewRequest("GET", u, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 { // close early now and then
					resp.Body.Close()
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != v {
					t.Errorf("got %q, %v; want %q", b, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := tr.idleCount(); n > 4 {
		t.Errorf("idle pool holds %d; want at most MaxIdlePerHost 4", n)
	}
	t.Logf("%d connections for 800 requests from 8 goroutines", conns.Load())
}

// TestIdleTimeout: idle connections expire, by the sweeper when nobody
// asks and at checkout otherwise.
func TestIdleTimeout(t *testing.T) {
	closed := make(chan struct{}, 10)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	var conns atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closed <- struct{}{}
		}
	}
	s.Start()
	defer s.Close()
	tr := newTransport(t, Options{IdleConnTimeout: 100 * time.Millisecond})
	get(t, tr, s.URL)
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("idle pool holds %d; want 1", n)
	}
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatal("the idle connection was not closed")
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("idle pool holds %d after the timeout; want 0", n)
	}
	get(t, tr, s.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2", n)
	}

	// Checkout: an expired connection is not used even if the sweeper has
	// not run yet.
	tr2 := newTransport(t, Options{IdleConnTimeout: time.Hour})
	get(t, tr2, s.URL)
	tr2.idleTimeout = time.Nanosecond // as if an hour went by
	get(t, tr2, s.URL)
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections; want 4", n)
	}
}

// TestMaxIdlePerHost: the pool keeps at most MaxIdlePerHost per host;
// negative disables pooling.
func TestMaxIdlePerHost(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t, Options{MaxIdlePerHost: 2})
	var resps []*http.Response
	for range 5 {
		resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, r := range resps {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if n := tr.idleCount(); n != 2 {
		t.Errorf("idle pool holds %d; want 2", n)
	}
	tr.CloseIdleConnections()
	if n := tr.idleCount(); n != 0 {
		t.Errorf("idle pool holds %d after CloseIdleConnections; want 0", n)
	}

	tr = newTransport(t, Options{MaxIdlePerHost: -1})
	before := conns.Load()
	get(t, tr, s.URL)
	get(t, tr, s.URL)
	if n := conns.Load() - before; n != 2 {
		t.Errorf("%d connections without pooling; want 2", n)
	}
}

// TestHTTPS: https URLs use TLS with ALPN http/1.1, and pool.
func TestHTTPS(t *testing.T) {
	var conns atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", r.Proto)
	}))
	s.EnableHTTP2 = true // offers h2 only: ALPN must not pick it
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.StartTLS()
	defer s.Close()
	cfg := &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	tr := newTransport(t, Options{TLSConfig: cfg})
	for range 3 {
		resp, body := get(t, tr, s.URL)
		if body != "HTTP/1.1" {
			t.Errorf("server saw %q; want HTTP/1.1", body)
		}
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
			t.Errorf("resp.TLS = %+v; want TLS, and no h2", resp.TLS)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
	// Without the test CA, verification fails.
	tr2 := newTransport(t, Options{})
	if _, err := tr2.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL, nil)); err == nil {
		t.Error("no certificate error")
	}
}

// TestTrace: the connection hooks fire.
func TestTrace(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t, Options{})
	var reused []bool
	var first, wrote int
	trace := &httptrace.ClientTrace{
		GotConn:              func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		GotFirstResponseByte: func() { first++ },
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote++ },
	}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	for range 2 {
		do(t, tr, mustRequest(t, ctx, "GET", s.URL, nil))
	}
	if fmt.Sprint(reused) != "[false true]" || first != 2 || wrote != 2 {
		t.Errorf("reused %v, first byte %d, wrote %d; want [false true], 2, 2", reused, first, wrote)
	}
}

// TestIdleCheck: the check at checkout keeps a live idle connection, and
// drops one the server closed, reset or wrote to while it was idle.
func TestIdleCheck(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name  string
		after func(c net.Conn) // what the server does once the first exchange is over
		conns int32
	}{
		{name: "live", after: func(c net.Conn) {}, conns: 1},
		{name: "closed", after: func(c net.Conn) { c.Close() }, conns: 2},
		{name: "reset", after: func(c net.Conn) { c.(*net.TCPConn).SetLinger(0); c.Close() }, conns: 2},
		{name: "unsolicited bytes", after: func(c net.Conn) { io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\n\r\n") }, conns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var accepted atomic.Int32
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				first := accepted.Add(1) == 1
				for i := 0; ; i++ {
					if _, ok := readRequest(br); !ok {
						return
					}
					io.WriteString(c, ok)
					if i == 0 && first {
						time.Sleep(10 * time.Millisecond)
						tt.after(c)
						close(done)
					}
				}
			})
			tr := newTransport(t, Options{})
			get(t, tr, s.URL())
			<-done
			time.Sleep(20 * time.Millisecond)
			// A POST without GetBody: not retried, so it must get a
			// usable connection at checkout.
			req := mustRequest(t, context.Background(), "POST", s.URL(), strings.NewReader("data"))
			req.GetBody = nil
			if _, body := do(t, tr, req); body != "ok" {
				t.Errorf("body = %q", body)
			}
			if n := s.conns.Load(); n != tt.conns {
				t.Errorf("%d connections; want %d", n, tt.conns)
			}
		})
	}
}

// TestStaleConnNotChecked: with the idle check out of the way, a reused
// connection that the server reset fails on write before a byte is sent,
// and any request without a body is retried (even POST: the server never
// saw it); after a close (FIN) the write succeeds and the failure comes on
// read, where only replayable requests are retried.
func TestStaleConnNotChecked(t *testing.T) {
	const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tt := range []struct {
		name    string
		reset   bool
		method  string
		retried bool
	}{
		{"reset, POST", true, "POST", true},
		{"close, GET", false, "GET", true},
		{"close, POST", false, "POST", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			closed := make(chan struct{})
			var n atomic.Int32
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				first := n.Add(1) == 1
				for {
					if _, ok := readRequest(br); !ok {
						return
					}
					io.WriteString(c, okResp)
					if first { // the first connection goes stale
						if tt.reset {
							c.(*net.TCPConn).SetLinger(0)
						}
						c.Close()
						close(closed)
						return
					}
				}
			})
			tr := newTransport(t, Options{})
			tr.checkAfter = time.Hour
			get(t, tr, s.URL())
			<-closed
			time.Sleep(20 * time.Millisecond) // the FIN or RST arrives
			var reused []bool
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
			})
			resp, err := tr.RoundTrip(mustRequest(t, ctx, tt.method, s.URL(), nil))
			if tt.retried {
				if err != nil {
					t.Fatalf("got %v; want a retry", err)
				}
				resp.Body.Close()
				if fmt.Sprint(reused) != "[true false]" {
					t.Errorf("connections used (reused?) %v; want [true false]", reused)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("no error; want one (no retry)")
			}
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("err = %v; want ErrServerClosed", err)
			}
		})
	}
}

// TestCancelDuringWrite: a request body the server does not read is
// abandoned when the context ends.
func TestCancelDuringWrite(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		http.ReadRequest(br) // the head only; never the body
		<-release
	})
	tr := newTransport(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var err error
	within(t, 2*time.Second, "cancelled upload", func() {
		_, err = tr.RoundTrip(mustRequest(t, ctx, "PUT", s.URL(), bytes.NewReader(make([]byte, 256<<20))))
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

// TestReadAfterEOF: the body keeps answering EOF, and Close after EOF is
// harmless.
func TestReadAfterEOF(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	tr := newTransport(t, Options{})
	for range 2 {
		resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		for range 2 {
			if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after EOF = %d, %v; want 0, EOF", n, err)
			}
		}
		resp.Body.Close()
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}

// TestExpectContinue: a request with Expect: 100-continue sends its body
// at once; the server's 100 Continue reaches the trace.
func TestExpectContinue(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	tr := newTransport(t, Options{})
	var got100 int
	var codes []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { got100++ },
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { codes = append(codes, code); return nil },
	})
	req := mustRequest(t, ctx, "PUT", s.URL, strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	if _, body := do(t, tr, req); body != "payload" {
		t.Errorf("body = %q", body)
	}
	if got100 != 1 || fmt.Sprint(codes) != "[100]" {
		t.Errorf("Got100Continue %d times, 1xx %v; want 1 and [100]", got100, codes)
	}
}
