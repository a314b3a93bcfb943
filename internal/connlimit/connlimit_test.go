package connlimit_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/connlimit"
)

const wait = 5 * time.Second

type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[reason]++
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// serve runs net/http behind a capped listener on 127.0.0.1.
func serve(t *testing.T, o connlimit.Options) (*connlimit.Listener, *refusals) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &refusals{n: map[string]int{}}
	o.Refused = r.add
	cl := connlimit.NewListener(ln, o)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return cl, r
}

// dialFrom connects to addr from the loopback address src ("" for any).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: wait}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether a request on c is answered; false when the
// server closed the connection instead.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("neither answered nor closed within %v", wait)
		}
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func waitOpen(t *testing.T, cl *connlimit.Listener, want int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for cl.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open; want %d", cl.Open(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListenerCap(t *testing.T) {
	cl, r := serve(t, connlimit.Options{Max: 3})
	addr := cl.Addr().String()
	var conns []net.Conn
	for i := range 3 {
		c := dialFrom(t, "", addr)
		if !served(t, c) {
			t.Fatalf("connection %d of 3 refused", i+1)
		}
		conns = append(conns, c)
	}
	for i := range 2 {
		if served(t, dialFrom(t, "", addr)) {
			t.Fatalf("connection %d over the cap of 3 served", i+1)
		}
	}
	if got := r.get(connlimit.ReasonListener); got != 2 {
		t.Fatalf("%d refusals counted; want 2", got)
	}
	waitOpen(t, cl, 3)
	// A slot frees when a connection closes.
	conns[0].Close()
	waitOpen(t, cl, 2)
	if !served(t, dialFrom(t, "", addr)) {
		t.Fatal("refused after a connection closed")
	}
	if got := r.get(connlimit.ReasonClient); got != 0 {
		t.Fatalf("%d client_limit refusals without a per-client cap", got)
	}
}

func TestPerClientCap(t *testing.T) {
	cl, r := serve(t, connlimit.Options{Max: 10, PerClient: 2})
	addr := cl.Addr().String()
	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	if !served(t, a1) || !served(t, a2) {
		t.Fatal("a client's first two connections refused")
	}
	if served(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Fatal("a client's third connection served (per-client cap 2)")
	}
	if got := r.get(connlimit.ReasonClient); got != 1 {
		t.Fatalf("%d client_limit refusals; want 1", got)
	}
	// Another address has its own allowance (all of 127/8 is loopback on
	// Linux).
	if !served(t, dialFrom(t, "127.0.0.2", addr)) {
		t.Skip("127.0.0.2 not usable here") // the cap itself was checked above
	}
	a1.Close()
	waitOpen(t, cl, 2)
	if !served(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Fatal("refused after one of the client's connections closed")
	}
}

// TestCloseTwice: a connection closed twice frees one slot, and one
// wrapped again (Rewrap, as the fast path does) still frees it.
func TestCloseTwice(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := connlimit.NewListener(ln, connlimit.Options{Max: 2, PerClient: 2})
	defer cl.Close()
	accept := func() net.Conn {
		dialFrom(t, "", ln.Addr().String())
		c, err := cl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := accept(), accept()
	b.(*connlimit.Conn).Rewrap(func(c net.Conn) net.Conn { return struct{ net.Conn }{c} })
	if n := cl.Open(); n != 2 {
		t.Fatalf("%d open; want 2", n)
	}
	a.Close()
	a.Close()
	if n := cl.Open(); n != 1 {
		t.Fatalf("%d open after closing one twice; want 1", n)
	}
	b.Close()
	if n := cl.Open(); n != 0 {
		t.Fatalf("%d open after closing both; want 0", n)
	}
	// Both slots, and the client's, are free again.
	accept().Close()
	accept().Close()
}
