package proxy_test

import (
	"bufio"
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

// desyncPoison is what a misbehaving upstream sends after a complete
// response: bytes that parse as a response of their own, which a pooled
// connection must never hand to the next request.
const desyncPoison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: max-age=600\r\n\r\nPOISON"

// desyncUpstream is a raw origin on 127.0.0.1 that answers /victim* as it
// should and, on the attack paths, sends the poison after the response:
// as a second, unsolicited response (/second), as a body after the head
// of a HEAD response (/head) or of a 304 (/nm). The poison goes out 3 ms
// after the response, in its own write, and sent is signalled once it is
// on the wire.
func desyncUpstream(t *testing.T, sent chan<- string) string {
	return newRawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			path := req.URL.Path
			var head, body string
			poison := true
			switch {
			case strings.HasPrefix(path, "/second"):
				body = "origin:" + path
				head = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: max-age=600\r\n\r\n", len(body))
			case strings.HasPrefix(path, "/head") && req.Method == http.MethodHead:
				head = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: no-store\r\n\r\n", len(desyncPoison))
			case strings.HasPrefix(path, "/nm"):
				head = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nCache-Control: max-age=600\r\n\r\n"
			default:
				body = "origin:" + path
				head = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: max-age=600\r\n\r\n", len(body))
				poison = false
			}
			if _, err := io.WriteString(c, head+body); err != nil {
				return
			}
			if !poison {
				continue
			}
			time.Sleep(3 * time.Millisecond)
			if _, err := io.WriteString(c, desyncPoison); err != nil {
				return
			}
			sent <- path
		}
	})
}

// TestUpstreamDesyncDoesNotPoison: an upstream that sends bytes after a
// complete response (a second response, a body after HEAD or 304) must
// not have them read as the answer to the next request that would reuse
// the connection: the victim URL gets its own origin response, and the
// cache never holds the poison. In reverse and forward mode, with the
// fast path on and off, through the direct forwarder and ReverseProxy.
func TestUpstreamDesyncDoesNotPoison(t *testing.T) {
	const rounds = 5
	attacks := []struct {
		name, method, path string
		hdr                []string
	}{
		{"second response", http.MethodGet, "/second", nil},
		{"body after HEAD", http.MethodHead, "/head", nil},
		{"body after 304", http.MethodGet, "/nm", []string{"If-None-Match", `"x"`}},
	}
	for _, mode := range []config.ListenerMode{config.ModeReverse, config.ModeForward} {
		for _, fast := range []bool{true, false} {
			for _, direct := range []bool{true, false} {
				name := fmt.Sprintf("%s/fast=%v/direct=%v", mode, fast, direct)
				t.Run(name, func(t *testing.T) {
					poisoned, total := 0, 0
					for _, a := range attacks {
						for i := range rounds {
							// A fresh origin and proxy each round: one desync
							// must not carry over into the next round's count.
							sent := make(chan string, 16)
							h := newHarness(t, harnessOptions{mode: mode, origin: desyncUpstream(t, sent), plainServer: !fast})
							if !direct {
								proxy.DisableDirect(h.p)
							}
							suffix := fmt.Sprintf("-%s-%d", strings.ReplaceAll(a.name, " ", "_"), i)
							h.do(a.method, a.path+suffix, hdr(a.hdr...), nil)
							select {
							case <-sent:
							case <-time.After(wait):
								t.Fatalf("%s: the upstream never sent its poison", a.name)
							}
							time.Sleep(2 * time.Millisecond) // the poison is in the socket
							victim := "/victim" + suffix
							want := "origin:" + victim
							total++
							r := h.get(victim)
							again := h.get(victim)
							if r.body != want || again.body != want {
								poisoned++
								t.Errorf("%s round %d: %s got %d %q, then %d %q (cache-status %q); want %q",
									a.name, i, victim, r.StatusCode, r.body, again.StatusCode, again.body, again.cacheStatus(), want)
							}
							if n := refusals(t, h, "unsolicited_bytes"); n != 1 {
								t.Errorf("%s round %d: unsolicited_bytes refusals = %v; want 1", a.name, i, n)
							}
							h.close()
						}
					}
					t.Logf("%s: %d of %d victim URLs poisoned", name, poisoned, total)
				})
			}
		}
	}
}
