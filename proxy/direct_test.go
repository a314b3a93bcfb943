package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// directUpstream answers with what it received, so that comparing
// responses compares the upstream requests too, and with the response
// shapes the direct forwarder must copy as ReverseProxy does.
func directUpstream(w http.ResponseWriter, r *http.Request, n int64) {
	h := w.Header()
	echo := func() {
		var lines []string
		for k, vv := range r.Header {
			lines = append(lines, k+": "+strings.Join(vv, " | "))
		}
		slices.Sort(lines)
		fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.URL.RequestURI(), r.Host, strings.Join(lines, "\n"))
	}
	switch r.URL.Path {
	case "/echo":
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/plain")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Request-Id", "upstream-echo")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		echo()
	case "/cache":
		h.Set("Cache-Control", "max-age=60")
		h.Set("Etag", `"v1"`)
		h.Set("Content-Type", "text/plain")
		echo()
	case "/trailers":
		h.Set("Trailer", "X-Announced")
		io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		h.Set("X-Announced", "1")
		h.Set(http.TrailerPrefix+"X-Surprise", "2")
	case "/hints":
		h.Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "after hints")
	case "/sse":
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
		}
	case "/chunked":
		for i := range 3 {
			fmt.Fprintf(w, "chunk %d\n", i)
			http.NewResponseController(w).Flush()
		}
	case "/switch":
		// A 101 nobody asked for.
		c, brw, _ := http.NewResponseController(w).Hijack()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		brw.Flush()
		c.Close()
	case "/short":
		// A body shorter than its Content-Length: the app's response is
		// aborted.
		c, brw, _ := http.NewResponseController(w).Hijack()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nCache-Control: no-store\r\n\r\nonly this")
		brw.Flush()
		c.Close()
	case "/204":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// TestDirectMatchesReverseProxy sends the same requests through a proxy
// using the direct forwarder and one using httputil.ReverseProxy for
// everything, and compares the answers, including what the upstream
// received (echoed in the bodies).
func TestDirectMatchesReverseProxy(t *testing.T) {
	for _, mode := range []config.ListenerMode{config.ModeReverse, config.ModeForward} {
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/plainServer=%v", mode, plain), func(t *testing.T) {
				clk := newClock()
				direct := newHarness(t, harnessOptions{mode: mode, handler: directUpstream, clock: clk, plainServer: plain})
				rp := newHarness(t, harnessOptions{mode: mode, handler: directUpstream, clock: clk, plainServer: plain})
				proxy.DisableDirect(rp.p)
				reqs := []struct {
					path string
					kv   []string
				}{
					{"/echo", nil},
					{"/echo?a=1;b=2", nil},
					{"/echo?a=%zz&b=1", nil},
					{"/echo", []string{"Connection", "X-Conn-Listed, keep-alive", "X-Conn-Listed", "gone", "Keep-Alive", "300",
						"Proxy-Authorization", "Basic eA==", "Proxy-Connection", "keep-alive", "X-Kept", "yes"}},
					{"/echo", []string{"Te", "trailers, deflate"}},
					{"/echo", []string{"Te", "deflate"}},
					{"/echo", []string{"X-Forwarded-For", "10.0.0.1", "X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https",
						"Forwarded", "for=10.0.0.1"}},
					{"/echo", []string{"Via", "1.1 app-side"}},
					{"/echo", []string{"User-Agent", ""}},
					{"/echo", []string{"User-Agent", "curl/8"}},
					{"/echo", []string{"X-Request-Id", "mine-1"}},
					{"/echo", []string{"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
					{"/echo", []string{"Accept-Encoding", "gzip"}},
					{"/cache", nil},
					{"/cache", nil},
					{"/cache", []string{"Cache-Control", "no-cache"}},
					{"/cache", []string{"If-None-Match", `"v1"`, "Cache-Control", "max-age=0"}},
					{"/trailers", nil},
					{"/hints", nil},
					{"/sse", nil},
					{"/chunked", nil},
					{"/switch", nil},
					{"/204", nil},
					{"/missing", nil},
				}
				norm := func(h *harness, s string) string {
					s = strings.ReplaceAll(s, h.addr(), "PROXY")
					s = strings.ReplaceAll(s, strings.TrimPrefix(h.origin, "http://"), "UPSTREAM")
					return regexp.MustCompile(`X-Request-Id: [0-9a-f]{32}`).ReplaceAllString(s, "X-Request-Id: ID")
				}
				for i, rq := range reqs {
					a := direct.do("GET", rq.path, hdr(rq.kv...), nil)
					b := rp.do("GET", rq.path, hdr(rq.kv...), nil)
					name := fmt.Sprintf("#%d %s %v", i, rq.path, rq.kv)
					sameAnswer(t, name, "direct", "ReverseProxy", a, b, norm(direct, a.body), norm(rp, b.body))
				}
			})
		}
	}
}

// TestDirectShortBody: an upstream body that ends before its
// Content-Length aborts the app's response, as through ReverseProxy.
func TestDirectShortBody(t *testing.T) {
	for _, noDirect := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: directUpstream})
		if noDirect {
			proxy.DisableDirect(h.p)
		}
		_, raw := rawRequest(t, h.addr(), "GET /short HTTP/1.1\r\nHost: app\r\n\r\n", wait)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
		}
		if err == nil {
			t.Errorf("noDirect=%v: a complete response from a truncated upstream body:\n%s", noDirect, raw)
		}
	}
}

// TestDirectForwardsEarlyHints: the 103 reaches the app before the final
// response, as through ReverseProxy.
func TestDirectForwardsEarlyHints(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: directUpstream})
	status, raw := rawRequest(t, h.addr(), "GET /hints HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", wait)
	if status != http.StatusEarlyHints {
		t.Fatalf("first status %d; want 103\n%s", status, raw)
	}
	br := bufio.NewReader(strings.NewReader(raw))
	hints, err := http.ReadResponse(br, nil)
	if err != nil || hints.Header.Get("Link") != "</s.css>; rel=preload" {
		t.Fatalf("103: %v %v", hints, err)
	}
	final, err := http.ReadResponse(br, nil)
	if err != nil || final.StatusCode != 200 || final.Header.Get("X-Request-Id") == "" {
		t.Fatalf("final response: %v %v", final, err)
	}
	if b, _ := io.ReadAll(final.Body); string(b) != "after hints" {
		t.Fatalf("body %q", b)
	}
}

// TestUpstreamViaAndCacheStatusKept checks that a forwarded response
// keeps the upstream's own Via and Cache-Status entries and gets the
// proxy's after them (RFC 9110 §7.6.3, RFC 9211 §2), through the direct
// forwarder and ReverseProxy, in both listener modes; that a hit carries
// the proxy's entry alone (the upstream's described the fetch, and is not
// stored); and that a response without them gets exactly one of each.
func TestUpstreamViaAndCacheStatusKept(t *testing.T) {
	for _, mode := range []config.ListenerMode{config.ModeReverse, config.ModeForward} {
		for _, direct := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/direct=%v", mode, direct), func(t *testing.T) {
				h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
					if r.URL.Path == "/plain" {
						w.Header().Set("Cache-Control", "no-store")
						return
					}
					w.Header().Set("Cache-Control", "max-age=60")
					w.Header().Add("Via", "1.1 cdn")
					w.Header().Add("Cache-Status", "OriginCache; hit")
				}})
				if !direct {
					proxy.DisableDirect(h.p)
				}
				r := h.get("/kept")
				if via := strings.Join(r.Header.Values("Via"), ", "); via != "1.1 cdn, 1.1 zerohop" {
					t.Errorf("miss: Via = %q; want the upstream's, then the proxy's", via)
				}
				if cs := r.Header.Values("Cache-Status"); len(cs) != 1 || !strings.HasPrefix(cs[0], "OriginCache; hit, zerohop; fwd=uri-miss") {
					t.Errorf("miss: Cache-Status = %q; want the upstream's entry, then the proxy's", cs)
				}
				r = h.get("/kept")
				if cs := r.Header.Values("Cache-Status"); len(cs) != 1 || !strings.HasPrefix(cs[0], "zerohop; hit") {
					t.Errorf("hit: Cache-Status = %q; want the proxy's entry alone", cs)
				}
				r = h.get("/plain")
				if via := r.Header.Values("Via"); len(via) != 1 || via[0] != "1.1 zerohop" {
					t.Errorf("Via = %q; want one, the proxy's", via)
				}
				if cs := r.Header.Values("Cache-Status"); len(cs) != 1 || strings.Contains(cs[0], ",") {
					t.Errorf("Cache-Status = %q; want one entry", cs)
				}
			})
		}
	}
}
