package proxy_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/cputime"
	"github.com/zerohop/zerohop/proxy"
)

// BenchmarkHitAPIKey is BenchmarkHit/reverse behind an API key
// authenticator: what authentication adds to a fresh hit served by the
// fast path, end to end over a loopback connection.
func BenchmarkHitAPIKey(b *testing.B) {
	key := "key-0123456789abcdef0123456789abcdef"
	file := filepath.Join(b.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(proxy.APIKeyLine("svc", "salt", key)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	origin := newMissOrigin(b, "public, max-age=31536000")
	h := newHarness(b, harnessOptions{origin: origin, accessLog: slog.NewJSONHandler(io.Discard, nil),
		config: func(c *config.Config) {
			c.Auth = []config.Authenticator{{Name: "keys", APIKey: &config.APIKeyAuth{File: file, Header: "X-Api-Key", Realm: "zerohop"}}}
			c.Routes[0].Auth = []string{"keys"}
		}})
	c := newMissClient(b, h.addr(), "GET /item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\nX-Api-Key: "+key+"\r\n\r\n")
	if err := c.do(); err != nil { // the miss that stores it
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
