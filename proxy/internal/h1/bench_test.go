package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/cputime"
)

// The benchmarks compare this Transport ("h1") with net/http's ("std"),
// configured alike (as proxy/cluster.go configures upstream pools), on
// GETs of a 512-byte response from one in-process HTTP/1.1 server over
// loopback. Each request has a cancelable context and a 30s head timeout,
// as in the proxy. cpu-ns/op is the process's user+system CPU time per
// request, server included: the hand-offs between goroutines that h1
// avoids cost CPU on other threads, which ns/op alone does not show.
//
// The upstream is a net/http server, except in BenchmarkRoundTripRawServer,
// where a minimal one (a goroutine per connection that skips the request
// head and writes a fixed response) leaves mostly the client's cost. The
// net/http server starts a goroutine per request; one request at a time
// with GOMAXPROCS > 1, that start wakes an idle thread (a futex call) for
// the P the parked h1 caller left idle, where net/http's read and write
// loops keep it busy: in BenchmarkRoundTrip h1 then spends in the
// server's scheduling about what it saves in its own work. With requests
// in flight (BenchmarkRoundTripParallel) or GOMAXPROCS 1 that does not
// happen.

const benchPayload = 512

var benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n" +
	"Content-Length: 512\r\n\r\n" + strings.Repeat("x", benchPayload)

func benchTransports(b *testing.B, raw bool) (url string, rts []namedRT) {
	if raw {
		s := newRawServer(b, func(c net.Conn, br *bufio.Reader) {
			for {
				for { // the request head, to its empty line
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						break
					}
				}
				if _, err := io.WriteString(c, benchResponse); err != nil {
					return
				}
			}
		})
		url = s.URL()
	} else {
		payload := strings.Repeat("x", benchPayload)
		s, _ := newServer(b, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, payload)
		})
		url = s.URL
	}
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
	return url + "/bench", []namedRT{{"h1", h1}, {"std", std}}
}

type namedRT struct {
	name string
	rt   http.RoundTripper
}

// exchange does one GET and reads the body to EOF.
func exchange(rt http.RoundTripper, req *http.Request, buf []byte) error {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n := 0
	for {
		m, err := resp.Body.Read(buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != benchPayload {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func benchRequest(b *testing.B, url string) *http.Request {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "")
	req.Header.Set("Accept", "*/*")
	return req
}

// BenchmarkRoundTrip: one request at a time.
func BenchmarkRoundTrip(b *testing.B) { benchSequential(b, false) }

// BenchmarkRoundTripRawServer: one request at a time to a minimal server.
func BenchmarkRoundTripRawServer(b *testing.B) { benchSequential(b, true) }

func benchSequential(b *testing.B, raw bool) {
	url, rts := benchTransports(b, raw)
	for _, bb := range rts {
		b.Run(bb.name, func(b *testing.B) {
			req := benchRequest(b, url)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if err := exchange(bb.rt, req, buf); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkRoundTripParallel: 4×GOMAXPROCS requests in flight, as in a
// sidecar under load.
func BenchmarkRoundTripParallel(b *testing.B) {
	url, rts := benchTransports(b, false)
	for _, bb := range rts {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			cpu0 := cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				req := benchRequest(b, url)
				buf := make([]byte, 4096)
				for pb.Next() {
					if err := exchange(bb.rt, req, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportCPU(b, cpu0)
		})
	}
}

func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := cputime.Process() - cpu0; cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
