package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares this Transport with net/http's, configured
// alike (as proxy/cluster.go configures upstream pools), on sequential GETs
// of a small response from one in-process HTTP/1.1 server over loopback.
// Each request has a cancelable context and a 30s head timeout, as in the
// proxy. cpu-ns/op is the process's user+system CPU time per request,
// server included: the hand-offs between goroutines that h1 avoids cost
// CPU on other threads, which ns/op alone does not show.
func BenchmarkRoundTrip(b *testing.B) {
	payload := strings.Repeat("x", 512)
	s, _ := newServer(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, payload)
	})
	std := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	b.Cleanup(std.CloseIdleConnections)
	h1 := newTransport(b, Options{DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 30 * time.Second})
	for _, bb := range []struct {
		name string
		rt   http.RoundTripper
	}{{"h1", h1}, {"std", std}} {
		b.Run(bb.name, func(b *testing.B) {
			buf := make([]byte, 4096)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("User-Agent", "")
			req.Header.Set("Accept", "*/*")
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				resp, err := bb.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					m, err := resp.Body.Read(buf)
					n += m
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				resp.Body.Close()
				if n != len(payload) {
					b.Fatalf("read %d bytes", n)
				}
			}
			b.StopTimer()
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
