package proxy_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// BenchmarkHit measures a fresh hit served by the sidecar itself (the
// fast path, or net/http behind it for a request the fast path hands
// over): one keep-alive connection, one GET at a time, 1 KiB stored, the
// access log as JSON to io.Discard, as BenchmarkMiss does.
func BenchmarkHit(b *testing.B) {
	for _, bb := range []struct {
		name string
		mode config.ListenerMode
		req  func(origin string) string
	}{
		{"reverse", config.ModeReverse, func(string) string {
			return "GET /item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"
		}},
		{"forward", config.ModeForward, func(o string) string {
			return "GET " + o + "/item HTTP/1.1\r\nHost: " + o[len("http://"):] + "\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			origin := newMissOrigin(b, "max-age=31536000")
			h := newHarness(b, harnessOptions{mode: bb.mode, origin: origin,
				accessLog: slog.NewJSONHandler(io.Discard, nil)})
			c := newMissClient(b, h.addr(), bb.req(origin))
			c.run(b)
		})
	}
}
