package proxy_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestUnknownTransferCodingRelayedNotStored: an upstream (raw, on
// loopback) answers a cacheable GET with a transfer coding net/http's
// client refuses. The proxy relays it, read until the upstream closes
// (RFC 9112 §6.3) or decoded where the coding is known, instead of a
// 502, and never stores it: the next request goes upstream again. Both
// entry paths.
func TestUnknownTransferCodingRelayedNotStored(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("decoded content"))
	zw.Close()
	for _, tt := range []struct {
		te   string
		body []byte
		want string
	}{
		{"foo", []byte("opaque bytes until close"), "opaque bytes until close"},
		{"gzip", gz.Bytes(), "decoded content"},
	} {
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/plain=%v", tt.te, plain), func(t *testing.T) {
				var hits atomic.Int32
				origin := newRawUpstream(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					hits.Add(1)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nTransfer-Encoding: %s\r\n\r\n", tt.te)
					c.Write(tt.body)
				})
				h := newHarness(t, harnessOptions{origin: origin, plainServer: plain})
				for i := range 2 {
					r := h.get("/coded")
					if r.StatusCode != 200 || r.body != tt.want || r.err != nil {
						t.Fatalf("#%d: %d %q (%v), want 200 %q", i, r.StatusCode, r.body, r.err, tt.want)
					}
					if cs := r.cacheStatus(); strings.Contains(cs, "stored") || strings.Contains(cs, "hit") || !strings.Contains(cs, "detail=transfer-coding") {
						t.Errorf("#%d: Cache-Status %q, want a miss not stored, detail=transfer-coding", i, cs)
					}
					if te := r.Header.Get("Transfer-Encoding"); te != "" {
						t.Errorf("#%d: Transfer-Encoding %q reached the app", i, te)
					}
				}
				if n := hits.Load(); n != 2 {
					t.Errorf("upstream asked %d times; want 2 (nothing stored)", n)
				}
				if n := counter(t, h.p, "zerohop_cache_not_stored_total", "reason", "transfer-coding"); n != 2 {
					t.Errorf("zerohop_cache_not_stored_total{reason=transfer-coding} = %v, want 2", n)
				}
			})
		}
	}
}
