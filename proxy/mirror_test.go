package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// TestMirrorAfterResponse: the copy starts only once the primary's
// response has been written to the app whole. The app holds the body (it
// reads the head and a little, then stops), so the proxy cannot finish
// writing a 64 MiB body; while it is held the shadow must have got
// nothing, and the copy must reach it after the primary upstream sent its
// last byte. Both framings (Content-Length, chunked) on both entry paths.
func TestMirrorAfterResponse(t *testing.T) {
	const size = 64 << 20
	chunk := make([]byte, 64<<10)
	bothPaths(t, func(t *testing.T, plain bool) {
		for _, chunked := range []bool{false, true} {
			t.Run(map[bool]string{false: "length", true: "chunked"}[chunked], func(t *testing.T) {
				var upstreamDone, shadowAt atomic.Int64
				shadow := newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, n int64) {
					shadowAt.Store(time.Now().UnixNano())
				})
				h := newHarness(t, harnessOptions{plainServer: plain, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Cache-Control", "no-store")
					if !chunked {
						w.Header().Set("Content-Length", strconv.Itoa(size))
					}
					for sent := 0; sent < size; sent += len(chunk) {
						if _, err := w.Write(chunk); err != nil {
							return
						}
						if chunked {
							http.NewResponseController(w).Flush()
						}
					}
					upstreamDone.Store(time.Now().UnixNano())
				}, config: func(c *config.Config) {
					c.Clusters = append(c.Clusters, cluster("shadow", shadow.URL))
					c.Routes[0].Mirror = &config.Mirror{Cluster: "shadow", Percent: 100, MaxConcurrent: 4, Timeout: 5 * time.Second}
				}})
				c, err := net.Dial("tcp", h.addr())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: api.local\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if chunked != (res.ContentLength < 0) {
					t.Fatalf("Content-Length %d; want chunked %v", res.ContentLength, chunked)
				}
				if _, err := io.ReadFull(res.Body, make([]byte, 1024)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond) // the proxy fills the buffers, and waits
				if n := shadow.hits.Load(); n != 0 || upstreamDone.Load() != 0 {
					t.Fatalf("while the app holds the body: shadow hits %d, upstream done %v; want 0, false", n, upstreamDone.Load() != 0)
				}
				n, err := io.Copy(io.Discard, res.Body)
				if err != nil || n+1024 != size {
					t.Fatalf("body: %d bytes, %v", n+1024, err)
				}
				if !eventually(func() bool { return shadow.hits.Load() == 1 }) {
					t.Fatalf("shadow hits %d; want 1", shadow.hits.Load())
				}
				if s, u := shadowAt.Load(), upstreamDone.Load(); u == 0 || s < u {
					t.Errorf("copy arrived %v before the primary upstream's last byte", time.Duration(u-s))
				}
			})
		}
	})
}

// TestMirrorCopyHead: the copy is the app's request with hop-by-hop
// fields (named ones and those Connection lists) removed, "-shadow"
// appended to the host before its port, and no User-Agent of the proxy's
// own; a HEAD is copied as a HEAD.
func TestMirrorCopyHead(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		var mu sync.Mutex
		var got []*http.Request
		shadow := newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, n int64) {
			mu.Lock()
			got = append(got, r.Clone(r.Context()))
			mu.Unlock()
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "dropped")
		})
		h := mirrorHarness(t, plain, shadow.URL, config.Mirror{})
		h.do("GET", "/a/b%2Fc?x=1&y", hdr("Host", "api.local:8080", "Connection", "X-Hop", "X-Hop", "1",
			"Keep-Alive", "timeout=5", "X-App", "v", "Cache-Control", "no-cache", "User-Agent", ""), nil)
		h.do("HEAD", "/h", hdr("Host", "api.local", "User-Agent", "app/1", "Cache-Control", "no-cache"), nil)
		// got, not hits: the upstream counts a hit before the handler runs.
		if !eventually(func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 }) {
			t.Fatalf("shadow hits %d; want 2", shadow.hits.Load())
		}
		mu.Lock()
		defer mu.Unlock()
		byMethod := map[string]*http.Request{}
		for _, r := range got {
			byMethod[r.Method] = r
		}
		g, hd := byMethod["GET"], byMethod["HEAD"]
		if g == nil || hd == nil {
			t.Fatalf("shadow got %d requests, not a GET and a HEAD", len(got))
		}
		if g.RequestURI != "/a/b%2Fc?x=1&y" || g.Host != "api.local-shadow:8080" || g.Header.Get("X-App") != "v" {
			t.Errorf("GET copy %s Host %q X-App %q", g.RequestURI, g.Host, g.Header.Get("X-App"))
		}
		for _, f := range []string{"X-Hop", "Keep-Alive", "Connection", "User-Agent"} {
			if v, ok := g.Header[f]; ok {
				t.Errorf("GET copy has %s %q", f, v)
			}
		}
		if hd.Host != "api.local-shadow" || hd.UserAgent() != "app/1" {
			t.Errorf("HEAD copy Host %q User-Agent %q", hd.Host, hd.UserAgent())
		}
	})
}
