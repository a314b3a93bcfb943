package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The listener's defences against clients that hold connections: the
// header timeout is one deadline per request head (slowloris), and caps on
// open connections per listener and per client address, each refusal
// counted. Tested on the real binary, with and without the fast path.

// reverseDaemon runs zerohop with one reverse listener "app" (listener
// keys in extra, YAML flow-mapping entries) in front of an origin that
// answers "ok".
func reverseDaemon(t *testing.T, extra string) *daemon {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf("listeners:\n  - {name: app, mode: reverse, %s}\nclusters:\n  - name: o\n    endpoints: [{url: %q}]\nroutes:\n  - {name: all, cluster: o}\n",
		extra, origin.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, "ZEROHOP_CONFIG="+cfg)
}

// metric returns the value of the series name{labels} (labels as
// Prometheus prints them) on d's /metrics, or -1 when it is absent or the
// daemon does not answer (it may be stopped) within 5 s.
func (d *daemon) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + d.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether a request on c is answered 200; false when the
// sidecar closed the connection instead.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("neither answered nor closed within 5s")
		}
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

var paths = []struct {
	name string
	fast bool
}{{"fast path", true}, {"net/http", false}}

// TestConnectionCaps: with max_connections: 4 the fifth and sixth
// connections are closed at once and counted, and a slot frees when a
// connection closes. Without the cap, all six were served.
func TestConnectionCaps(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			d := reverseDaemon(t, fmt.Sprintf("fast_path: %v, max_connections: 4", p.fast))
			var conns []net.Conn
			for i := range 4 {
				c := dialFrom(t, "127.0.0.1", d.listen)
				if !served(t, c) {
					t.Fatalf("connection %d of 4 refused", i+1)
				}
				conns = append(conns, c)
			}
			over := 0
			for range 2 {
				if served(t, dialFrom(t, "127.0.0.1", d.listen)) {
					over++
				}
			}
			if over > 0 {
				t.Fatalf("%d of 2 connections over max_connections: 4 served", over)
			}
			// The refusal is counted after the connection is closed: the
			// client can see the close first.
			waitFor(t, func() bool {
				return d.metric(t, `zerohop_connections_refused_total{listener="app",reason="listener_limit"}`) == 2
			}, "two listener_limit refusals counted")
			if got := d.metric(t, `zerohop_connections_open{listener="app"}`); got != 4 {
				t.Fatalf("open connections = %v; want 4", got)
			}
			conns[0].Close()
			conns[1].Close()
			waitFor(t, func() bool { return d.metric(t, `zerohop_connections_open{listener="app"}`) == 2 }, "two slots to free")
			for i := range 2 {
				if !served(t, dialFrom(t, "127.0.0.1", d.listen)) {
					t.Fatalf("connection %d refused after two closed", i+1)
				}
			}
			if got := d.metric(t, `zerohop_connections_refused_total{listener="app",reason="client_limit"}`); got != 0 {
				t.Fatalf("client_limit refusals = %v without a per-client cap", got)
			}
		})
	}
}

// TestPerClientConnectionCap: max_connections_per_client: 2 refuses a
// client's third connection, counted as client_limit, while another
// address still gets in.
func TestPerClientConnectionCap(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			d := reverseDaemon(t, fmt.Sprintf("fast_path: %v, max_connections_per_client: 2", p.fast))
			a := dialFrom(t, "127.0.0.1", d.listen)
			if !served(t, a) || !served(t, dialFrom(t, "127.0.0.1", d.listen)) {
				t.Fatal("a client's first two connections refused")
			}
			if served(t, dialFrom(t, "127.0.0.1", d.listen)) {
				t.Fatal("a client's third connection served (max_connections_per_client: 2)")
			}
			waitFor(t, func() bool {
				return d.metric(t, `zerohop_connections_refused_total{listener="app",reason="client_limit"}`) == 1
			}, "one client_limit refusal counted")
			if !served(t, dialFrom(t, "127.0.0.2", d.listen)) {
				t.Fatal("another client address refused")
			}
			a.Close()
			waitFor(t, func() bool { return d.metric(t, `zerohop_connections_open{listener="app"}`) == 2 }, "the client's slot to free")
			if !served(t, dialFrom(t, "127.0.0.1", d.listen)) {
				t.Fatal("refused after one of the client's connections closed")
			}
		})
	}
}

// TestSlowlorisClosedAtHeaderTimeout: 50 clients trickling request heads,
// a byte every 300 ms, are all closed about read_header_timeout (1s) after
// they connect. Before the fix, on the fast path, 50 of 50 were still open
// after 8 s; net/http closed them at 1 s.
func TestSlowlorisClosedAtHeaderTimeout(t *testing.T) {
	const (
		n      = 50
		gap    = 300 * time.Millisecond
		within = 3 * time.Second
		limit  = 8 * time.Second
	)
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			d := reverseDaemon(t, fmt.Sprintf("fast_path: %v, read_header_timeout: 1s", p.fast))
			head := "GET /x HTTP/1.1\r\nHost: app\r\nX-Slow: " + strings.Repeat("a", 1000)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				late    int
				longest time.Duration
			)
			for range n {
				c := dialFrom(t, "127.0.0.1", d.listen)
				wg.Go(func() {
					open := trickle(c, head, gap, limit)
					mu.Lock()
					longest = max(longest, open)
					if open > within {
						late++
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			if late > 0 {
				t.Fatalf("%d of %d trickling connections still open after %v (read_header_timeout 1s; longest %v)", late, n, within, longest)
			}
			t.Logf("%d of %d closed within %v; longest open %v", n, n, within, longest.Round(time.Millisecond))
		})
	}
}

// trickle writes head to c a byte every gap until the server closes the
// connection, or limit has passed, and returns how long c was open.
func trickle(c net.Conn, head string, gap, limit time.Duration) time.Duration {
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		c.SetReadDeadline(start.Add(limit))
		io.Copy(io.Discard, c) // ends when the server closes (or at limit)
		close(closed)
	}()
	defer c.Close()
	for i := 0; time.Since(start) < limit; i++ {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(gap):
		}
		if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
			<-closed
			return time.Since(start)
		}
	}
	return limit
}
