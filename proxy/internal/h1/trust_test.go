package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// events counts the Events a Transport reports.
type events struct{ n [3]atomic.Int64 }

func (e *events) on(ev Event)            { e.n[ev].Add(1) }
func (e *events) get(ev Event) int64     { return e.n[ev].Load() }
func (e *events) opts(o Options) Options { o.OnEvent = e.on; return o }

// TestUnsolicitedBytesNeverReused: bytes a server sends after a complete
// response, in a later segment (3 ms on), make its connection unusable:
// the next request goes out on a fresh connection and gets its own
// answer, however soon it comes, and the refusal is counted.
func TestUnsolicitedBytesNeverReused(t *testing.T) {
	const poison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"
	for _, tt := range []struct {
		name, method, head string
	}{
		{"second response", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"body after HEAD", "HEAD", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(poison))},
		{"body after 304", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"},
		{"body after 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"excess in the same segment", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + poison},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sent := make(chan struct{}, 1)
			var first atomic.Bool
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, ok := readRequest(br)
					if !ok {
						return
					}
					if !first.Swap(true) {
						io.WriteString(c, tt.head)
						if !strings.Contains(tt.head, "POISON") {
							time.Sleep(3 * time.Millisecond)
							io.WriteString(c, poison)
						}
						sent <- struct{}{}
						continue
					}
					body := "origin:" + req.URL.Path
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			})
			var ev events
			tr := newTransport(t, ev.opts(Options{}))
			do(t, tr, mustRequest(t, context.Background(), tt.method, s.URL()+"/attack", nil))
			<-sent
			time.Sleep(2 * time.Millisecond)
			if _, body := get(t, tr, s.URL()+"/victim"); body != "origin:/victim" {
				t.Errorf("victim body = %q; want its own", body)
			}
			if n := s.conns.Load(); n != 2 {
				t.Errorf("%d connections; want 2 (the poisoned one closed)", n)
			}
			if n := ev.get(EventUnsolicitedBytes); n != 1 {
				t.Errorf("EventUnsolicitedBytes = %d; want 1", n)
			}
		})
	}
}

// TestBodyIdleTimeout: a body that stalls after 10 of 100 bytes fails
// its Read with ErrBodyIdleTimeout once BodyIdleTimeout passes without a
// byte, having delivered the 10; the connection is closed and the event
// counted. A body that keeps trickling within the timeout is not cut.
func TestBodyIdleTimeout(t *testing.T) {
	const idle = 600 * time.Millisecond
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, ok := readRequest(br)
		if !ok {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		if req.URL.Path == "/trickle" {
			for range 9 { // 90 more bytes, 10 every sixth of the timeout
				time.Sleep(idle / 6)
				io.WriteString(c, "abcdefghij")
			}
		}
		io.Copy(io.Discard, br) // stall until the client goes
	})
	var ev events
	tr := newTransport(t, ev.opts(Options{BodyIdleTimeout: idle}))

	resp, err := tr.RoundTrip(mustRequest(t, context.Background(), "GET", s.URL()+"/stall", nil))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := io.ReadAll(resp.Body)
	el := time.Since(start)
	resp.Body.Close()
	if string(b) != "0123456789" || !errors.Is(err, ErrBodyIdleTimeout) {
		t.Errorf("read %q, %v; want the 10 bytes, then ErrBodyIdleTimeout", b, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err %v is not a net.Error timeout", err)
	}
	if el < idle || el > idle+wait {
		t.Errorf("timed out after %v; want about %v", el, idle)
	}
	if n := ev.get(EventBodyIdleTimeout); n != 1 {
		t.Errorf("EventBodyIdleTimeout = %d; want 1", n)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections; want the stalled one closed", n)
	}

	resp, body := get(t, tr, s.URL()+"/trickle")
	if resp.StatusCode != 200 || len(body) != 100 {
		t.Errorf("trickling body: %d bytes; want all 100", len(body))
	}
}

// TestInterimCap: 1000 103 Early Hints fail the round trip with
// ErrTooManyInterim after MaxInterimResponses, even when a hook takes
// them, and so do interim heads over the byte budget; a few pass.
func TestInterimCap(t *testing.T) {
	hint := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	big := "HTTP/1.1 103 Early Hints\r\nLink: <" + strings.Repeat("a", 3000) + ">\r\n\r\n"
	final := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tt := range []struct {
		name      string
		interim   string
		n         int
		o         Options
		wantError bool
	}{
		{"1000 hints", hint, 1000, Options{}, true},
		{"11 hints", hint, 11, Options{}, true},
		{"10 hints", hint, 10, Options{}, false},
		{"heads over the byte budget", big, 4, Options{MaxResponseHeaderBytes: 8 << 10}, true},
		{"configured cap", hint, 3, Options{MaxInterimResponses: 2}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, ok := readRequest(br); ok {
					io.WriteString(c, strings.Repeat(tt.interim, tt.n)+final)
				}
			})
			var ev events
			tr := newTransport(t, ev.opts(tt.o))
			got := 0
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(int, textproto.MIMEHeader) error { got++; return nil },
			})
			resp, err := tr.RoundTrip(mustRequest(t, ctx, "GET", s.URL(), nil))
			if !tt.wantError {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got != tt.n || ev.get(EventTooManyInterim) != 0 {
					t.Errorf("relayed %d of %d, events %d", got, tt.n, ev.get(EventTooManyInterim))
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("no error after %d interim responses relayed; want ErrTooManyInterim", got)
			}
			if !errors.Is(err, ErrTooManyInterim) {
				t.Errorf("err = %v; want ErrTooManyInterim", err)
			}
			if max := tr.maxInterim; got > max {
				t.Errorf("relayed %d interim responses; want at most %d", got, max)
			}
			if n := ev.get(EventTooManyInterim); n != 1 {
				t.Errorf("EventTooManyInterim = %d; want 1", n)
			}
		})
	}
}
