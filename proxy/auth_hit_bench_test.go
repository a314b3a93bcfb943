package proxy_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// benchChain is the chain the bench suite measures the sidecar's hit
// behind (zerohop bench --sidecar-config, issue 15's speed goal), and
// benchChainKey the key its key file holds.
const (
	benchChain    = "../bench/chains/apikey-ratelimit.yaml"
	benchChainKey = "bench-4f7c2a9e1d6b8035"
)

// BenchmarkHitAPIKey is BenchmarkHit/forward behind the bench suite's
// chain, loaded from its file: a forward listener, a route matched by
// host, an API key from a salted-hash file and a per-client rate limit,
// and the request as Go's client sends it through a proxy (what
// `zerohop bench -H 'X-Api-Key: …'` sends). Compared with
// BenchmarkHit/forward (the suite's plain sidecar: no route, the egress
// check), it predicts what the chain costs the real process per hit.
func BenchmarkHitAPIKey(b *testing.B) {
	benchHitChain(b, benchChain, "X-Api-Key: "+benchChainKey+"\r\n")
}

// BenchmarkHitChain is BenchmarkHitAPIKey for each of the bench suite's
// chains that a hit goes through (bench/chains/*.yaml; mirror and mirror-10
// differ from route only on misses), so that the CPU a chain adds to a hit
// can be split by feature: route is the route match alone, headers-* add
// request and response header operations (a hit never reaches the
// balancer).
func BenchmarkHitChain(b *testing.B) {
	for _, tc := range []struct{ name, header string }{
		{"route", ""},
		{"headers-ringhash", ""},
		{"headers-maglev", ""},
		{"apikey-ratelimit", "X-Api-Key: " + benchChainKey + "\r\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchHitChain(b, "../bench/chains/"+tc.name+".yaml", tc.header)
		})
	}
}

// benchHitChain measures fast-path hits through the chain in file (a
// bench suite --sidecar-config file) with the request Go's client sends
// through a proxy, plus the header lines in extra.
func benchHitChain(b *testing.B, file, extra string) {
	origin := newMissOrigin(b, "public, max-age=31536000")
	originHost := strings.TrimPrefix(origin, "http://")
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	chain, err := config.Parse(file, []byte(strings.ReplaceAll(string(data), "${BENCH_ORIGIN}", originHost)))
	if err != nil {
		b.Fatal(err)
	}
	for i := range chain.Auth { // relative to the file's directory, as in `zerohop bench`
		if k := chain.Auth[i].APIKey; k != nil && !filepath.IsAbs(k.File) {
			k.File = filepath.Join(filepath.Dir(file), k.File)
		}
	}
	h := newHarness(b, harnessOptions{mode: config.ModeForward, origin: origin,
		accessLog: slog.NewJSONHandler(io.Discard, nil),
		config: func(c *config.Config) {
			c.Auth, c.Limits, c.Clusters, c.Routes = chain.Auth, chain.Limits, chain.Clusters, chain.Routes
		}})
	c := newMissClient(b, h.addr(), "GET "+origin+"/item HTTP/1.1\r\nHost: "+originHost+
		"\r\nUser-Agent: Go-http-client/1.1\r\n"+extra+"\r\n")
	c.run(b)
}
