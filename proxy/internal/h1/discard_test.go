package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDiscardFraming: Discard reads each framing a response can have to
// its end, returns the status, and pools the connection exactly when the
// next response on it would be found (the second request on the same
// connection answers).
func TestDiscardFraming(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	for _, tc := range []struct {
		name, method, resp string
		status             int
		reuse              bool
	}{
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, true},
		{"empty length", "GET", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, true},
		{"chunked with extension and trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, true},
		{"gzip then chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, true},
		{"chunked wins over length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, true},
		{"interim responses first", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 201, true},
		{"HEAD has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200, true},
		{"204 has no body", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, true},
		{"304 has no body", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n", 304, true},
		{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, true},
		{"connection close", "GET", "HTTP/1.1 500 Oops\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", 500, false},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, false},
		{"close-delimited", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil the end", 200, false},
		{"unknown coding", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: zstd\r\n\r\nuntil the end", 200, false},
		{"longer than the limit", "GET", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(long)) + "\r\n\r\n" + long, 200, false},
		{"101 unasked", "GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 101, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 4)
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, ok := readRequest(br)
					if !ok {
						return
					}
					got <- req.Method + " " + req.RequestURI + " " + req.Host + " " + req.Header.Get("X-A")
					if _, err := io.WriteString(c, tc.resp); err != nil {
						return
					}
				}
			})
			tr := newTransport(t, Options{})
			u, _ := url.Parse(srv.URL())
			head, ok := AppendHead(nil, tc.method, "/p", "q=1", "shadow.local", http.Header{"X-A": {"1"}}, nil)
			if !ok {
				t.Fatal("AppendHead refused")
			}
			for i := range 2 {
				status, err := tr.Discard(u, tc.method, head, time.Now().Add(wait), 64<<10)
				if err != nil || status != tc.status {
					t.Fatalf("#%d: %d %v; want %d", i, status, err, tc.status)
				}
				if r := <-got; r != tc.method+" /p?q=1 shadow.local 1" {
					t.Fatalf("#%d: server got %q", i, r)
				}
			}
			if n, want := srv.conns.Load(), map[bool]int32{true: 1, false: 2}[tc.reuse]; n != want {
				t.Errorf("connections %d; want %d (reuse %v)", n, want, tc.reuse)
			}
		})
	}
}

// TestDiscardFailures: what cannot be read is an error, a closed idle
// connection is retried once on a new one, and the deadline bounds a
// server that never answers.
func TestDiscardFailures(t *testing.T) {
	head, _ := AppendHead(nil, "GET", "/", "", "h", http.Header{}, nil)
	for _, tc := range []struct{ name, resp string }{
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"},
		{"nothing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, ok := readRequest(br); ok {
					io.WriteString(c, tc.resp)
				}
			})
			u, _ := url.Parse(srv.URL())
			if status, err := newTransport(t, Options{}).Discard(u, "GET", head, time.Now().Add(wait), 1<<20); err == nil {
				t.Errorf("status %d, no error", status)
			}
		})
	}

	t.Run("idle connection closed by the server", func(t *testing.T) {
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, ok := readRequest(br); ok {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
			// and close: the pooled connection is dead
		})
		tr := newTransport(t, Options{})
		tr.checkAfter = time.Hour // do not notice at checkout: the write or read must
		u, _ := url.Parse(srv.URL())
		for i := range 3 {
			if status, err := tr.Discard(u, "GET", head, time.Now().Add(wait), 0); err != nil || status != 200 {
				t.Fatalf("#%d: %d %v", i, status, err)
			}
		}
	})

	t.Run("deadline", func(t *testing.T) {
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			io.Copy(io.Discard, br) // never answers
		})
		u, _ := url.Parse(srv.URL())
		t0 := time.Now()
		if _, err := newTransport(t, Options{}).Discard(u, "GET", head, t0.Add(100*time.Millisecond), 0); err == nil {
			t.Fatal("no error from a server that never answers")
		}
		if d := time.Since(t0); d > wait {
			t.Errorf("took %v", d)
		}
	})
}

// TestAppendHead: the fields a copy leaves out, and what it refuses.
func TestAppendHead(t *testing.T) {
	h := http.Header{
		"Connection":        {"keep-alive, X-Hop"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Content-Length":    {"0"},
		"Transfer-Encoding": {"chunked"},
		"Host":              {"ignored"},
		"X-Kept":            {" a ", "b"},
	}
	b, ok := AppendHead(nil, "GET", "", "", "h-shadow:80", h, []string{"Connection", "Keep-Alive"})
	if !ok {
		t.Fatal("refused")
	}
	if want := "GET / HTTP/1.1\r\nHost: h-shadow:80\r\nX-Kept: a\r\nX-Kept: b\r\n\r\n"; string(b) != want {
		t.Errorf("head %q; want %q", b, want)
	}
	for _, bad := range []struct {
		method, path, query, host string
		h                         http.Header
	}{
		{"G ET", "/", "", "h", nil},
		{"GET", "/a b", "", "h", nil},
		{"GET", "/", "a\r\nb", "h", nil},
		{"GET", "/", "", "h\r\nX: 1", nil},
		{"GET", "/", "", "h", http.Header{"X": {"a\nb"}}},
		{"GET", "/", "", "h", http.Header{"X Y": {"a"}}},
	} {
		if b, ok := AppendHead(nil, bad.method, bad.path, bad.query, bad.host, bad.h, nil); ok {
			t.Errorf("%+v: accepted as %q", bad, b)
		}
	}
}
