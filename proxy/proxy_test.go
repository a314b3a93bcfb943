package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

var modes = []config.ListenerMode{config.ModeReverse, config.ModeForward}

// echo is what echoHandler reports about the request it got.
type echo struct {
	Method string
	URI    string
	Host   string
	Header http.Header
	Body   string
	TE     []string
}

// echoHandler answers with a description of the request, never cacheable.
func echoHandler(w http.ResponseWriter, r *http.Request, _ int64) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(echo{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(body), TE: r.TransferEncoding})
}

// rawHead is the request line and Host field of a request for path in the
// harness's mode: origin-form to the proxy in reverse mode, absolute-form
// for the upstream in forward mode.
func (h *harness) rawHead(method, path string) (head, host string) {
	if h.lis.Mode == config.ModeForward {
		host = strings.TrimPrefix(h.origin, "http://")
		return method + " " + h.origin + path + " HTTP/1.1\r\nHost: " + host + "\r\n", host
	}
	return method + " " + path + " HTTP/1.1\r\nHost: " + h.addr() + "\r\n", h.addr()
}

// rawDo sends a hand-written request (head lines, then body) and parses
// the response.
func (h *harness) rawDo(method, path string, lines []string, body string) (*http.Response, string, error) {
	h.t.Helper()
	head, _ := h.rawHead(method, path)
	var b strings.Builder
	b.WriteString(head)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	_, raw := rawRequest(h.t, h.addr(), b.String(), wait)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		return nil, raw, err
	}
	rb, _ := io.ReadAll(resp.Body)
	return resp, string(rb), nil
}

// TestRequestForwarding checks what reaches the upstream: hop-by-hop
// fields removed, forwarding fields set by the proxy, request ids and
// trace context.
func TestRequestForwarding(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name   string
		method string
		lines  []string
		body   string
		check  func(t *testing.T, up echo, resp *http.Response, host string)
	}{
		{
			name:  "RFC 9110 §7.6.1: fields named by Connection are removed",
			lines: []string{"Connection: X-Secret, close", "X-Secret: s", "X-End: e"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if v := up.Header.Get("X-Secret"); v != "" {
					t.Errorf("upstream X-Secret = %q; want removed", v)
				}
				if v := up.Header.Get("Connection"); v != "" {
					t.Errorf("upstream Connection = %q; want removed", v)
				}
				if v := up.Header.Get("X-End"); v != "e" {
					t.Errorf("upstream X-End = %q; want %q", v, "e")
				}
			},
		},
		{
			name:  "RFC 9110 §7.6.1: Keep-Alive, Proxy-Connection and Upgrade (not upgrading) are removed",
			lines: []string{"Connection: close", "Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Upgrade: websocket"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				for _, f := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade"} {
					if v := up.Header.Get(f); v != "" {
						t.Errorf("upstream %s = %q; want removed", f, v)
					}
				}
			},
		},
		{
			name:  "RFC 9110 §10.1.4: TE is removed",
			lines: []string{"Connection: close", "TE: gzip"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if v := up.Header.Get("Te"); v != "" {
					t.Errorf("upstream TE = %q; want removed", v)
				}
			},
		},
		{
			name:  "RFC 9110 §10.1.4: TE: trailers is kept",
			lines: []string{"Connection: close, TE", "TE: trailers"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if v := up.Header.Get("Te"); v != "trailers" {
					t.Errorf("upstream TE = %q; want %q", v, "trailers")
				}
			},
		},
		{
			name:   "RFC 9112 §7.1: a chunked request body is re-framed, Transfer-Encoding not copied",
			method: http.MethodPost,
			lines:  []string{"Connection: close", "Transfer-Encoding: chunked", "Content-Type: text/plain"},
			body:   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if up.Body != "hello world" {
					t.Errorf("upstream body = %q; want %q", up.Body, "hello world")
				}
				if v := up.Header.Get("Transfer-Encoding"); v != "" {
					t.Errorf("upstream Transfer-Encoding field = %q; want none", v)
				}
			},
		},
		{
			name:  "RFC 7239: client-supplied forwarding fields are replaced by the proxy's",
			lines: []string{"Connection: close", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https", "Forwarded: for=6.6.6.6"},
			check: func(t *testing.T, up echo, _ *http.Response, host string) {
				want := map[string]string{
					"X-Forwarded-For":   "127.0.0.1",
					"X-Forwarded-Host":  host,
					"X-Forwarded-Proto": "http",
					"Forwarded":         `for=127.0.0.1;proto=http;host="` + host + `"`,
				}
				for k, v := range want {
					if got := strings.Join(up.Header.Values(k), ", "); got != v {
						t.Errorf("upstream %s = %q; want %q", k, got, v)
					}
				}
			},
		},
		{
			name:  "X-Request-Id is generated (32 hex) and sent both ways",
			lines: []string{"Connection: close"},
			check: func(t *testing.T, up echo, resp *http.Response, _ string) {
				id := resp.Header.Values("X-Request-Id")
				if len(id) != 1 || !hex32.MatchString(id[0]) {
					t.Fatalf("response X-Request-Id = %q; want one 32-hex id", id)
				}
				if got := up.Header.Get("X-Request-Id"); got != id[0] {
					t.Errorf("upstream X-Request-Id = %q; want %q", got, id[0])
				}
			},
		},
		{
			name:  "X-Request-Id is propagated",
			lines: []string{"Connection: close", "X-Request-Id: req-42"},
			check: func(t *testing.T, up echo, resp *http.Response, _ string) {
				if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "req-42" {
					t.Errorf("response X-Request-Id = %q; want [req-42]", got)
				}
				if got := up.Header.Get("X-Request-Id"); got != "req-42" {
					t.Errorf("upstream X-Request-Id = %q; want %q", got, "req-42")
				}
			},
		},
		{
			name:  "W3C trace context passes through unchanged",
			lines: []string{"Connection: close", "Traceparent: " + tp, "Tracestate: vendor=opaque"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if got := up.Header.Get("Traceparent"); got != tp {
					t.Errorf("upstream traceparent = %q; want %q", got, tp)
				}
				if got := up.Header.Get("Tracestate"); got != "vendor=opaque" {
					t.Errorf("upstream tracestate = %q; want %q", got, "vendor=opaque")
				}
			},
		},
		{
			name:  "end-to-end fields and the target pass through",
			lines: []string{"Connection: close", "Accept: text/plain", "X-Custom: a", "X-Custom: b"},
			check: func(t *testing.T, up echo, _ *http.Response, _ string) {
				if got := up.Header.Values("X-Custom"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
					t.Errorf("upstream X-Custom = %q; want [a b]", got)
				}
				if up.URI != "/echo?q=1" {
					t.Errorf("upstream target = %q; want %q", up.URI, "/echo?q=1")
				}
			},
		},
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: echoHandler})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					method := tt.method
					if method == "" {
						method = http.MethodGet
					}
					resp, body, err := h.rawDo(method, "/echo?q=1", tt.lines, tt.body)
					if err != nil {
						t.Fatalf("response: %v (%q)", err, body)
					}
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status = %d; want 200 (%s)", resp.StatusCode, body)
					}
					var up echo
					if err := json.Unmarshal([]byte(body), &up); err != nil {
						t.Fatalf("upstream echo: %v (%q)", err, body)
					}
					_, host := h.rawHead(method, "/")
					tt.check(t, up, resp, host)
				})
			}
		})
	}
}

// TestRequestIDNotDuplicated: an upstream that echoes X-Request-Id (most
// frameworks do) must not make the response carry the field twice.
func TestRequestIDNotDuplicated(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
				io.WriteString(w, "ok")
			}})
			for _, id := range []string{"", "given-id"} {
				r := h.get("/", "X-Request-Id", id)
				got := r.Header.Values("X-Request-Id")
				if len(got) != 1 || (id != "" && got[0] != id) {
					t.Errorf("sent %q: response X-Request-Id = %q; want exactly one value", id, got)
				}
			}
		})
	}
}

// TestResponseHopByHop: hop-by-hop fields of the upstream's response are
// not forwarded (RFC 9110 §7.6.1); end-to-end ones are.
func TestResponseHopByHop(t *testing.T) {
	origin := newRawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
				"Connection: X-Hop\r\n"+
				"X-Hop: secret\r\n"+
				"Keep-Alive: timeout=5\r\n"+
				"Upgrade: h2c\r\n"+
				"Proxy-Connection: keep-alive\r\n"+
				"X-End-To-End: kept\r\n"+
				"Content-Type: application/octet-stream\r\n"+
				"Cache-Control: no-store\r\n"+
				"Transfer-Encoding: chunked\r\n\r\n"+
				"5\r\nhello\r\n0\r\n\r\n")
		}
	})
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, origin: origin})
			r := h.get("/hop")
			if r.StatusCode != http.StatusOK || r.body != "hello" {
				t.Fatalf("got %d %q; want 200 %q", r.StatusCode, r.body, "hello")
			}
			for _, f := range []string{"X-Hop", "Keep-Alive", "Upgrade", "Proxy-Connection"} {
				if v := r.Header.Get(f); v != "" {
					t.Errorf("response %s = %q; want removed", f, v)
				}
			}
			if c := r.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "x-hop") {
				t.Errorf("response Connection = %q; want the upstream's list removed", c)
			}
			if v := r.Header.Get("X-End-To-End"); v != "kept" {
				t.Errorf("response X-End-To-End = %q; want %q", v, "kept")
			}
		})
	}
}

// TestStreamedResponse: a large body that is not stored streams through:
// the first bytes reach the client while the upstream is still writing.
func TestStreamedResponse(t *testing.T) {
	const size = 5 << 20
	const first = 64 << 10
	tests := []struct {
		name         string
		cacheControl string
		length       bool
	}{
		{"RFC 9111 §5.2.2.5: no-store", "no-store", true},
		{"RFC 9111 §4.2.2: no freshness information and no validator", "", false},
		{"cacheable but over max_object_size", "max-age=60", true},
		{"cacheable, unknown length, grows over max_object_size", "max-age=60", false},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				release := make(chan struct{})
				var finished atomic.Bool
				h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
					w.Header().Set("Content-Type", "application/octet-stream")
					if tt.cacheControl != "" {
						w.Header().Set("Cache-Control", tt.cacheControl)
					}
					if tt.length {
						w.Header().Set("Content-Length", fmt.Sprint(size))
					}
					chunk := bytes.Repeat([]byte("z"), first)
					w.Write(chunk)
					http.NewResponseController(w).Flush()
					select {
					case <-release:
					case <-time.After(wait):
					case <-r.Context().Done():
						return
					}
					for n := first; n < size; n += first {
						w.Write(chunk)
					}
					finished.Store(true)
				}})
				resp, err := h.client.Get(h.url("/big"))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				buf := make([]byte, first)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("first bytes: %v", err)
				}
				if finished.Load() {
					t.Fatal("first bytes arrived only after the upstream finished; want them streamed")
				}
				close(release)
				n, err := io.Copy(io.Discard, resp.Body)
				if err != nil || int(n)+first != size {
					t.Fatalf("body: %d bytes, %v; want %d", int(n)+first, err, size)
				}
				// Not stored: the next request goes upstream again.
				if r := h.get("/big"); !strings.Contains(r.cacheStatus(), "fwd=") {
					t.Errorf("second request Cache-Status = %q; want a forwarded request", r.cacheStatus())
				}
				if got := h.up.hits.Load(); got != 2 {
					t.Errorf("upstream requests = %d; want 2", got)
				}
			})
		}
	}
}

// TestStreamedRequestBody: the request body reaches the upstream while
// the client is still sending it.
func TestStreamedRequestBody(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			gotFirst := make(chan struct{})
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				first := make([]byte, 5)
				if _, err := io.ReadFull(r.Body, first); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				close(gotFirst)
				rest, _ := io.ReadAll(r.Body)
				io.WriteString(w, string(first)+"|"+string(rest))
			}})
			pr, pw := io.Pipe()
			streamed := make(chan bool, 1)
			go func() {
				pw.Write([]byte("first"))
				select {
				case <-gotFirst:
					streamed <- true
					pw.Write([]byte("second"))
					pw.Close()
				case <-time.After(wait):
					streamed <- false
					pw.CloseWithError(fmt.Errorf("upstream never saw the first bytes"))
				}
			}()
			req, _ := http.NewRequest(http.MethodPost, h.url("/upload"), pr)
			r := h.send(req)
			if !<-streamed {
				t.Fatal("upstream did not get the first bytes before the client finished; want the body streamed")
			}
			if r.StatusCode != 200 || r.body != "first|second" {
				t.Errorf("got %d %q; want 200 %q", r.StatusCode, r.body, "first|second")
			}
		})
	}
}

// TestTrailers: trailer fields pass through (RFC 9110 §6.5).
func TestTrailers(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.Header().Set("Trailer", "X-Checksum")
				w.Header().Set("Content-Type", "application/octet-stream")
				io.WriteString(w, "payload")
				w.Header().Set("X-Checksum", "c0ffee")
			}})
			r := h.get("/t")
			if r.body != "payload" {
				t.Fatalf("body = %q; want %q", r.body, "payload")
			}
			if got := r.Trailer.Get("X-Checksum"); got != "c0ffee" {
				t.Errorf("trailer X-Checksum = %q; want %q", got, "c0ffee")
			}
		})
	}
}

// TestEarlyHints: a 103 (RFC 8297) reaches the client before the final
// response, and the final response still has its own fields.
func TestEarlyHints(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.Header().Set("Link", "</app.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "final")
			}})
			var mu sync.Mutex
			var got []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
				mu.Lock()
				got = append(got, fmt.Sprintf("%d %s", code, hdr.Get("Link")))
				mu.Unlock()
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, h.url("/hints"), nil)
			r := h.send(req)
			mu.Lock()
			defer mu.Unlock()
			if want := "103 </app.css>; rel=preload; as=style"; len(got) != 1 || got[0] != want {
				t.Errorf("1xx responses = %q; want [%q]", got, want)
			}
			if r.StatusCode != 200 || r.body != "final" {
				t.Errorf("final = %d %q; want 200 %q", r.StatusCode, r.body, "final")
			}
			if ids := r.Header.Values("X-Request-Id"); len(ids) != 1 {
				t.Errorf("final X-Request-Id = %q; want one value", ids)
			}
			if cs := r.cacheStatus(); cs == "" {
				t.Error("final response has no Cache-Status")
			}
		})
	}
}

// TestWebSocketUpgrade: an Upgrade exchange (RFC 9110 §7.8) becomes a
// two-way byte stream between client and upstream.
func TestWebSocketUpgrade(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
					http.Error(w, "want an upgrade", http.StatusBadRequest)
					return
				}
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(wait))
				io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				for {
					line, err := brw.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(conn, "echo:"+line)
				}
			}})
			c, err := net.DialTimeout("tcp", h.addr(), wait)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(wait))
			head, _ := h.rawHead(http.MethodGet, "/ws")
			io.WriteString(c, head+"Connection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: ws-1\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status = %d; want 101", resp.StatusCode)
			}
			if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "zerohop;") {
				t.Errorf("101 Cache-Status = %q; want a zerohop member", cs)
			}
			for _, msg := range []string{"one\n", "two\n"} {
				io.WriteString(c, msg)
				got, err := br.ReadString('\n')
				if err != nil || got != "echo:"+msg {
					t.Fatalf("echo = %q, %v; want %q", got, err, "echo:"+msg)
				}
			}
			c.Close()
			if st, ok := h.logs.statusLogged("ws-1"); !ok || st != 101 {
				t.Errorf("access log status = %d (logged %v); want 101", st, ok)
			}
		})
	}
}

// TestServerSentEvents: each event reaches the client as soon as the
// upstream flushes it; the upstream waits for the client to see an event
// before sending the next one.
func TestServerSentEvents(t *testing.T) {
	const events = 3
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			acks := make(chan struct{})
			var late atomic.Int32
			h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				for i := 1; i <= events; i++ {
					fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
					http.NewResponseController(w).Flush()
					select {
					case <-acks:
					case <-time.After(wait):
						late.Add(1)
					case <-r.Context().Done():
						return
					}
				}
			}})
			req, _ := http.NewRequest(http.MethodGet, h.url("/events"), nil)
			req.Header.Set("Accept-Encoding", "gzip, zstd")
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding = %q; want none for text/event-stream", ce)
			}
			br := bufio.NewReader(resp.Body)
			for i := 1; i <= events; i++ {
				var ev []string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					if line == "\n" {
						break
					}
					ev = append(ev, strings.TrimSuffix(line, "\n"))
				}
				if want := fmt.Sprintf("data: event %d", i); len(ev) != 2 || ev[1] != want {
					t.Fatalf("event %d = %q; want [id: %d, %s]", i, ev, i, want)
				}
				if late.Load() != 0 {
					t.Fatalf("event %d arrived only after the upstream gave up waiting; want it flushed at once", i)
				}
				acks <- struct{}{}
			}
		})
	}
}

// TestH2C: a client speaking HTTP/2 over cleartext (prior knowledge) is
// proxied and served from the cache like any other.
func TestH2C(t *testing.T) {
	h := newHarness(t, harnessOptions{
		handler: func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "over h2c")
		},
		server: func(s *http.Server) {
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			s.Protocols = &p
		},
	})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: wait}
	for i, want := range []string{"fwd=uri-miss", "hit"} {
		resp, err := c.Get(h.srv.URL + "/h2")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("request %d: protocol %s; want HTTP/2", i+1, resp.Proto)
		}
		if string(b) != "over h2c" {
			t.Errorf("request %d: body %q; want %q", i+1, b, "over h2c")
		}
		if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, want) {
			t.Errorf("request %d: Cache-Status %q; want %q", i+1, cs, want)
		}
	}
	if got := h.up.hits.Load(); got != 1 {
		t.Errorf("upstream requests = %d; want 1", got)
	}
}

// TestReload: a reload switches new requests to the new configuration
// while in-flight ones finish on the old one; a bad configuration is
// refused and the old one keeps serving.
func TestReload(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	clk := newClock()
	oldUp := newUpstream(t, clk, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(wait):
			}
		}
		io.WriteString(w, "old")
	})
	newUp := newUpstream(t, clk, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "new")
	})
	h := newHarness(t, harnessOptions{clock: clk, config: func(cfg *config.Config) {
		cfg.Clusters = []config.Cluster{cluster("old", oldUp.URL)}
		cfg.Routes = []config.Route{{Name: "r", Cluster: "old"}}
	}})

	inflight := make(chan *result, 1)
	go func() {
		resp, err := h.client.Get(h.url("/slow"))
		if err != nil {
			inflight <- &result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- &result{Response: resp, body: string(b), err: err}
	}()
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("the slow request never reached the old upstream")
	}

	cfg2 := *h.cfg
	cfg2.Clusters = []config.Cluster{cluster("new", newUp.URL)}
	cfg2.Routes = []config.Route{{Name: "r", Cluster: "new"}}
	if err := h.p.Reload(&cfg2); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	bad := cfg2
	bad.Routes = []config.Route{{Name: "r", Cluster: "missing"}}

	tests := []struct {
		name    string
		reload  *config.Config
		wantErr bool
	}{
		{"after a good reload new requests use the new cluster", nil, false},
		{"a reload naming an unknown cluster is refused", &bad, true},
		{"after a refused reload the previous configuration still serves", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reload != nil {
				err := h.p.Reload(tt.reload)
				if (err != nil) != tt.wantErr {
					t.Fatalf("Reload error = %v; want error %v", err, tt.wantErr)
				}
				if h.p.Config() != &cfg2 {
					t.Error("Config() changed after a refused reload")
				}
			}
			if r := h.get("/x"); r.StatusCode != 200 || r.body != "new" {
				t.Errorf("got %d %q; want 200 %q", r.StatusCode, r.body, "new")
			}
		})
	}

	close(release)
	select {
	case r := <-inflight:
		if r.err != nil || r.body != "old" {
			t.Errorf("in-flight request: %q, %v; want %q from the old cluster", r.body, r.err, "old")
		}
	case <-time.After(wait):
		t.Fatal("in-flight request never finished")
	}
}
