package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/cputime"
)

// The miss benchmarks measure what the sidecar adds to a request it
// forwards: one client connection sends GETs (one at a time) through the
// proxy, with its fast path, to a minimal origin answering 1 KiB with
// Cache-Control: no-store, as the bench suite's sidecar-miss scenario
// does. The access log is JSON to io.Discard, as in production minus the
// write. cpu-ns/op is the process's CPU per request, client and origin
// included (both are small and the same in every variant).

var missBody = strings.Repeat("x", 1024)

// newMissOrigin answers every request head on a connection with a fixed
// uncacheable response.
func newMissOrigin(b *testing.B, cacheControl string) string {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nCache-Control: " + cacheControl +
		"\r\nDate: Sun, 22 Nov 2026 18:00:00 GMT\r\nContent-Length: 1024\r\n\r\n" + missBody
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() { l.Close(); wg.Wait() })
	return "http://" + l.Addr().String()
}

// missClient is one keep-alive connection to the proxy doing one request
// at a time and reading each response whole.
type missClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

// run sends c's request once (a hit's first request stores it), then b.N
// times, and reports the process's CPU per request beside the time.
func (c *missClient) run(b *testing.B) {
	b.Helper()
	if err := c.do(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		if err := c.do(); err != nil {
			b.Fatal(err)
		}
	}
	if cpu := cputime.Process() - cpu0; b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func newMissClient(b *testing.B, addr, req string) *missClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &missClient{c: c, br: bufio.NewReaderSize(c, 8192), req: []byte(req)}
}

func (m *missClient) do() error {
	if _, err := m.c.Write(m.req); err != nil {
		return err
	}
	cl := -1
	status := ""
	for {
		line, err := m.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if status == "" {
			status = string(line)
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && strings.EqualFold(string(line[:15]), "Content-Length:") {
			fmt.Sscanf(string(line[15:]), "%d", &cl)
		}
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") || cl != len(missBody) {
		return fmt.Errorf("response %q, Content-Length %d", status, cl)
	}
	_, err := m.br.Discard(cl)
	return err
}

func BenchmarkMiss(b *testing.B) {
	for _, bb := range []struct {
		name string
		mode config.ListenerMode
		cc   string
		req  func(origin string) string
	}{
		{"forward/no-store", config.ModeForward, "no-store", func(o string) string {
			return "GET " + o + "/nocache/item HTTP/1.1\r\nHost: " + strings.TrimPrefix(o, "http://") +
				"\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
		}},
		{"reverse/no-store", config.ModeReverse, "no-store", func(string) string {
			return "GET /nocache/item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
		}},
		// A response that is stored but never fresh: the store path too.
		{"reverse/no-cache", config.ModeReverse, "no-cache", func(string) string {
			return "GET /item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			origin := newMissOrigin(b, bb.cc)
			h := newHarness(b, harnessOptions{mode: bb.mode, origin: origin,
				accessLog: slog.NewJSONHandler(io.Discard, nil)})
			c := newMissClient(b, h.addr(), bb.req(origin))
			c.run(b)
		})
	}
}
