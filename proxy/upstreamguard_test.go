package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// refusals reads zerohop_upstream_refusals_total{reason} from h's proxy.
func refusals(t *testing.T, h *harness, reason string) float64 {
	t.Helper()
	mfs, err := h.p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "zerohop_upstream_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// guardVariants are the ways a request reaches an upstream: either
// client, either entry path (fast path or net/http), and for h1 the
// direct forwarder or ReverseProxy.
func guardVariants() []struct {
	name   string
	client config.ClusterClient
	fast   bool
	direct bool
} {
	type v = struct {
		name   string
		client config.ClusterClient
		fast   bool
		direct bool
	}
	var vs []v
	for _, client := range []config.ClusterClient{config.ClientH1, config.ClientStd} {
		for _, fast := range []bool{true, false} {
			for _, direct := range []bool{true, false} {
				if client == config.ClientStd && !direct {
					continue // std always goes through ReverseProxy
				}
				vs = append(vs, v{fmt.Sprintf("client=%s/fast=%v/direct=%v", client, fast, direct), client, fast, direct})
			}
		}
	}
	return vs
}

// TestStalledUpstreamBody: an upstream that sends the head and 10 of 100
// body bytes and then goes silent. The app gets the 10 bytes at once
// (nothing withholds a partial response), then, once the cluster's
// body_idle_timeout passes, its connection is aborted: a body visibly
// short of its Content-Length, never one that looks complete. The upstream
// connection is closed, nothing is stored, and the abort is counted.
func TestStalledUpstreamBody(t *testing.T) {
	const idle = time.Second
	for _, v := range guardVariants() {
		t.Run(v.name, func(t *testing.T) {
			upClosed := make(chan struct{}, 1)
			origin := newRawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\nCache-Control: max-age=600\r\n\r\n0123456789")
				io.Copy(io.Discard, br) // silent until the proxy gives up
				upClosed <- struct{}{}
			})
			h := newHarness(t, harnessOptions{origin: origin, plainServer: !v.fast, config: func(cfg *config.Config) {
				cfg.Clusters[0].BodyIdleTimeout = idle
				cfg.Clusters[0].Client = v.client
			}})
			if !v.direct {
				proxy.DisableDirect(h.p)
			}
			c, br := h.dial()
			c.SetDeadline(time.Now().Add(idle + 2*wait))
			start := time.Now()
			fmt.Fprintf(c, "GET /stall HTTP/1.1\r\nHost: %s\r\n\r\n", h.addr())
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response head: %v", err)
			}
			first := make([]byte, 10)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("after %v: the 10 bytes the upstream sent did not arrive: %v", time.Since(start).Round(time.Millisecond), err)
			}
			gotFirst := time.Since(start)
			if gotFirst >= idle {
				t.Errorf("the 10 bytes came after %v; want them before the %v idle timeout", gotFirst, idle)
			}
			rest, err := io.ReadAll(resp.Body)
			aborted := time.Since(start)
			if err == nil || len(rest) != 0 {
				t.Errorf("after the stall: %q, %v; want the connection aborted short of Content-Length", rest, err)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the app's connection was still open after %v; want it aborted after %v", aborted, idle)
			}
			if aborted < idle/2 {
				t.Errorf("aborted after %v; want after the %v idle timeout", aborted, idle)
			}
			select {
			case <-upClosed:
			case <-time.After(wait):
				t.Error("the upstream connection was not closed")
			}
			if _, _, ok := h.w.GetStale(nil, h.key("/stall")); ok {
				t.Error("the truncated response was stored")
			}
			if n := refusals(t, h, "body_idle_timeout"); n != 1 {
				t.Errorf("body_idle_timeout refusals = %v; want 1", n)
			}
			t.Logf("10 bytes after %v, aborted after %v", gotFirst.Round(time.Millisecond), aborted.Round(time.Millisecond))
		})
	}
}

// TestUpstreamEndlessEarlyHints: an upstream that sends 1000 103 Early
// Hints before its answer gets at most a few relayed, then a 502; the
// refusal is counted.
func TestUpstreamEndlessEarlyHints(t *testing.T) {
	const hints = 1000
	hint := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	for _, v := range guardVariants() {
		t.Run(v.name, func(t *testing.T) {
			origin := newRawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, strings.Repeat(hint, hints)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=600\r\n\r\nok")
				io.Copy(io.Discard, br)
			})
			h := newHarness(t, harnessOptions{origin: origin, plainServer: !v.fast, config: func(cfg *config.Config) {
				cfg.Clusters[0].Client = v.client
			}})
			if !v.direct {
				proxy.DisableDirect(h.p)
			}
			c, br := h.dial()
			fmt.Fprintf(c, "GET /hints HTTP/1.1\r\nHost: %s\r\n\r\n", h.addr())
			relayed := 0
			var resp *http.Response
			for {
				r, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("after %d interim responses: %v", relayed, err)
				}
				if r.StatusCode >= 200 {
					resp = r
					break
				}
				relayed++
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadGateway || relayed > 10 {
				t.Errorf("%d interim responses relayed, then %d %q; want at most 10, then 502", relayed, resp.StatusCode, body)
			}
			if n := refusals(t, h, "too_many_interim"); n != 1 {
				t.Errorf("too_many_interim refusals = %v; want 1", n)
			}
			t.Logf("%d of %d hints relayed, then %d", relayed, hints, resp.StatusCode)
		})
	}
}

// TestUpgradeOutlivesBodyIdle: a protocol switch (101) hands the
// connection over, on either client: body_idle_timeout does not apply to
// it, and net/http's client keeps giving ReverseProxy the connection it
// needs to tunnel.
func TestUpgradeOutlivesBodyIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, client := range []config.ClusterClient{config.ClientH1, config.ClientStd} {
		t.Run(string(client), func(t *testing.T) {
			origin := newRawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, "echo:"+line)
				}
			})
			h := newHarness(t, harnessOptions{origin: origin, config: func(cfg *config.Config) {
				cfg.Clusters[0].BodyIdleTimeout = idle
				cfg.Clusters[0].Client = client
			}})
			c, br := h.dial()
			fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", h.addr())
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("got %v, %v; want 101", resp, err)
			}
			for _, msg := range []string{"one\n", "two\n"} {
				time.Sleep(2 * idle) // quiet for longer than body_idle_timeout
				io.WriteString(c, msg)
				if got, err := br.ReadString('\n'); err != nil || got != "echo:"+msg {
					t.Fatalf("echo = %q, %v; want %q", got, err, "echo:"+msg)
				}
			}
		})
	}
}
