package proxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// slowHeadClients opens n connections to addr and sends on each an endless
// request head, one byte every gap, until the server closes it or the
// test gives up after limit. It returns how long each connection stayed
// open (limit for those still open).
func slowHeadClients(t *testing.T, addr string, n int, gap, limit time.Duration) []time.Duration {
	t.Helper()
	head := "GET /cache HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 4096)
	open := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wg.Go(func() {
			defer c.Close()
			// The server's close shows as a read error (EOF or reset).
			closed := make(chan struct{})
			go func() {
				c.SetReadDeadline(start.Add(limit))
				io.Copy(io.Discard, c)
				close(closed)
			}()
			for j := 0; ; j++ {
				select {
				case <-closed:
					open[i] = time.Since(start)
					return
				case <-time.After(gap):
				}
				if time.Since(start) >= limit {
					open[i] = limit
					return
				}
				if _, err := c.Write([]byte{head[j%len(head)]}); err != nil {
					<-closed
					open[i] = time.Since(start)
					return
				}
			}
		})
	}
	wg.Wait()
	return open
}

// TestHeaderTimeoutIsAbsolute: a client that trickles a request head (one
// byte every 300 ms) is closed when read_header_timeout has passed since
// the head began, as net/http does, not held for as long as it keeps
// sending. Before the fix the fast path renewed the timeout on every read:
// 20 of 20 connections were still open after 6 s with a 1 s timeout.
func TestHeaderTimeoutIsAbsolute(t *testing.T) {
	const (
		n       = 20
		timeout = time.Second
		gap     = 300 * time.Millisecond
		limit   = 6 * time.Second // give up: held well past the timeout
		within  = 3 * time.Second // the timeout and a loaded machine's slack
	)
	for _, tc := range []struct {
		name  string
		plain bool
	}{{"fast path", false}, {"net/http", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: fastUpstream, plainServer: tc.plain, listener: func(l *config.Listener) {
				l.ReadHeaderTimeout = timeout
				l.IdleTimeout = 30 * time.Second
			}})
			var late int
			var longest time.Duration
			for _, d := range slowHeadClients(t, h.addr(), n, gap, limit) {
				longest = max(longest, d)
				if d > within {
					late++
				}
			}
			if late > 0 {
				t.Fatalf("%d of %d connections still open after %v (read_header_timeout %v; longest %v)", late, n, within, timeout, longest)
			}
			t.Logf("all %d closed; longest open %v", n, longest.Round(time.Millisecond))
		})
	}
}

// TestHeaderTimeoutAfterIdle: on a connection that served a request, the
// next head is due read_header_timeout after its first byte, however long
// the connection was idle before it (idle_timeout governs that).
func TestHeaderTimeoutAfterIdle(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: fastUpstream, listener: func(l *config.Listener) {
		l.ReadHeaderTimeout = time.Second
		l.IdleTimeout = 30 * time.Second
	}})
	c, br := h.dial()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /cache?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readResponses(t, br, 1); !strings.HasPrefix(got[0], "200 ") {
		t.Fatalf("first response %q", got)
	}
	time.Sleep(1500 * time.Millisecond) // idle: longer than the header timeout
	start := time.Now()
	head := "GET /cache?a=2 HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
	for i := 0; ; i++ {
		if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
			break // closed
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := br.ReadByte(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break // closed
		}
		if time.Since(start) > 8*time.Second {
			t.Fatal("connection still open 8 s into a trickled head (read_header_timeout 1s)")
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("closed %v into the head: before the header timeout", d)
	}
}

// TestBareLFAndHTTP09AnsweredAtOnce: a request whose lines end in a bare
// LF, which net/http accepts (RFC 9112 §2.2 allows it), and an HTTP/0.9
// request, which net/http refuses with a 400, get their answer at once on
// the fast path as without it, not after read_header_timeout. Before the
// fix the fast path waited for a CRLF CRLF that never came: 10 s with the
// default timeout, then closed without an answer.
func TestBareLFAndHTTP09AnsweredAtOnce(t *testing.T) {
	const timeout = 10 * time.Second
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"bare LF", "GET /cache?lf=1 HTTP/1.1\nHost: x\nConnection: close\n\n", 200},
		{"bare LF ending the head", "GET /cache?lf=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\n", 200},
		{"bare LF in one field", "GET /cache?lf=3 HTTP/1.1\r\nHost: x\nConnection: close\r\n\r\n", 200},
		{"HTTP/0.9", "GET /\n", 400},
		{"HTTP/0.9 with CRLF", "GET /cache\r\n", 400},
		{"no version, bare LF", "GET /cache x\n", 400},
	}
	for _, plain := range []bool{false, true} {
		name := "fast path"
		if plain {
			name = "net/http"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: fastUpstream, plainServer: plain, listener: func(l *config.Listener) {
				l.ReadHeaderTimeout = timeout
			}})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					start := time.Now()
					// The client keeps its side open: only the server's
					// answer (or close) ends the read.
					status, resp := rawRequest(t, h.addr(), tt.raw, timeout+2*time.Second)
					d := time.Since(start)
					if status != tt.status {
						t.Errorf("status %d; want %d (%q)", status, tt.status, trunc(resp))
					}
					if d > timeout/2 {
						t.Errorf("answered after %v; want at once (read_header_timeout %v)", d.Round(time.Millisecond), timeout)
					}
				})
			}
		})
	}
}
