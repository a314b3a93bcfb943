package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// TestForwardRejects: what a forward-proxy listener refuses, and how.
func TestForwardRejects(t *testing.T) {
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler})
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"RFC 9112 §3.2.2 origin-form to a forward proxy: 400", "GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", 400},
		{"https URLs go through CONNECT, not absolute-form: 400", "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", 400},
		{"RFC 9110 §9.3.6 CONNECT without a port: 400", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", 400},
		{"RFC 9110 §9.3.6 CONNECT to a closed port: 502", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := rawRequest(t, h.addr(), strings.ReplaceAll(tt.raw, "{host}", h.addr()), wait)
			if status != tt.status {
				t.Errorf("status = %d; want %d (%q)", status, tt.status, resp)
			}
			if !strings.Contains(resp, "Cache-Status: zerohop;") {
				t.Errorf("response has no Cache-Status: %q", resp)
			}
		})
	}
	if n := h.up.hits.Load(); n != 0 {
		t.Errorf("upstream requests = %d; want 0", n)
	}
}

// TestConnectOnReverseListener: CONNECT is only for forward proxies.
func TestConnectOnReverseListener(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: echoHandler})
	status, resp := rawRequest(t, h.addr(), "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n", wait)
	if status != http.StatusMethodNotAllowed {
		t.Errorf("status = %d; want 405 (%q)", status, resp)
	}
}

// TestConnectTunnel: CONNECT opens a byte tunnel to the target (RFC 9110
// §9.3.6); bytes the client sends right behind its request head are not
// lost.
func TestConnectTunnel(t *testing.T) {
	target := newRawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, "echo:"+line)
		}
	})
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler})
	addr := strings.TrimPrefix(target, "http://")
	c, err := net.DialTimeout("tcp", h.addr(), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	// The first tunnelled line travels in the same write as the head.
	io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\nX-Request-Id: tunnel-1\r\n\r\nearly\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d; want 200", resp.StatusCode)
	}
	for _, msg := range []string{"early\n", "late\n"} {
		if msg == "late\n" {
			io.WriteString(c, msg)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != "echo:"+msg {
			t.Fatalf("tunnel echo = %q, %v; want %q", got, err, "echo:"+msg)
		}
	}
	c.Close()
	if st, ok := h.logs.statusLogged("tunnel-1"); !ok || st != 200 {
		t.Errorf("access log status = %d (logged %v); want 200", st, ok)
	}
}

// TestForwardRouteByHost: in forward mode a route matching the URL's host
// sends the request to its cluster (the host need not resolve), and the
// cache key is the URL the app asked for.
func TestForwardRouteByHost(t *testing.T) {
	clk := newClock()
	api := newUpstream(t, clk, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "api "+r.Header.Get("X-Forwarded-Host"))
	})
	h := newHarness(t, harnessOptions{mode: config.ModeForward, clock: clk, handler: echoHandler, config: func(c *config.Config) {
		c.Clusters = append(c.Clusters, cluster("api", api.URL))
		c.Routes = []config.Route{{Name: "api", Cluster: "api", Match: config.Match{Host: "api.internal"}}}
	}})
	tests := []struct {
		name string
		hits int64
		cs   string
	}{
		{"routed to the cluster and stored", 1, "stored"},
		{"a hit under the app's URL", 1, "hit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.client.Get("http://api.internal/v1/items")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "api api.internal" {
				t.Errorf("body = %q; want %q", b, "api api.internal")
			}
			if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, tt.cs) {
				t.Errorf("Cache-Status = %q; want %q", cs, tt.cs)
			}
			if got := api.hits.Load(); got != tt.hits {
				t.Errorf("cluster requests = %d; want %d", got, tt.hits)
			}
		})
	}
	if n := h.up.hits.Load(); n != 0 {
		t.Errorf("egress requests = %d; want 0", n)
	}
}

// TestForwardKeysByHost: in forward mode the URL's authority is part of
// the key, so two origins with the same path are separate entries.
func TestForwardKeysByHost(t *testing.T) {
	clk := newClock()
	other := newUpstream(t, clk, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "other")
	})
	h := newHarness(t, harnessOptions{mode: config.ModeForward, clock: clk, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "main")
	}})
	tests := []struct {
		name, url, body string
	}{
		{"first origin", h.up.URL + "/same", "main"},
		{"second origin, same path", other.URL + "/same", "other"},
		{"first origin again: its own hit", h.up.URL + "/same", "main"},
		{"second origin again: its own hit", other.URL + "/same", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			if r := h.send(req); r.body != tt.body {
				t.Errorf("body = %q; want %q", r.body, tt.body)
			}
		})
	}
	if a, b := h.up.hits.Load(), other.hits.Load(); a != 1 || b != 1 {
		t.Errorf("upstream requests = %d, %d; want 1, 1", a, b)
	}
}

// TestForwardIgnoresProxyEnvironment: the sidecar's own upstream requests
// never go through HTTP_PROXY (the app's container shares it and it would
// loop back into the sidecar).
func TestForwardIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	t.Setenv("NO_PROXY", "")
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler})
	if r := h.get("/env"); r.StatusCode != 200 {
		t.Errorf("status = %d; want 200 (%q)", r.StatusCode, r.body)
	}
}
