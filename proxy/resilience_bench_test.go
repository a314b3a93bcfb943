package proxy_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// BenchmarkMissResilience is BenchmarkMiss's reverse/no-store miss with
// this features on the route: what retries and breakers (which
// never fire here), a split, or mirroring every request to a second
// origin add to the latency the app sees.
func BenchmarkMissResilience(b *testing.B) {
	for _, bb := range []struct {
		name string
		cfg  func(c *config.Config, second string)
	}{
		{"baseline", func(*config.Config, string) {}},
		{"retries+breakers", func(c *config.Config, _ string) {
			c.Clusters[0].Retries = &config.RetryPolicy{Attempts: 2, RetryOn: []string{"connect-failure", "reset", "503"},
				BackoffBase: 25 * time.Millisecond, BackoffMax: 250 * time.Millisecond}
			c.Clusters[0].CircuitBreakers = config.CircuitBreakers{MaxRequests: 1024, MaxConnections: 1024, MaxPendingRequests: 1024}
		}},
		{"split", func(c *config.Config, second string) {
			c.Clusters = append(c.Clusters, cluster("b", second))
			c.Routes[0].Cluster = ""
			c.Routes[0].WeightedClusters = []config.WeightedCluster{{Cluster: "main", Weight: 90}, {Cluster: "b", Weight: 10}}
		}},
		{"mirror", func(c *config.Config, second string) {
			c.Clusters = append(c.Clusters, cluster("shadow", second))
			c.Routes[0].Mirror = &config.Mirror{Cluster: "shadow", Percent: 100, MaxConcurrent: 64, Timeout: 5 * time.Second}
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			origin, second := newMissOrigin(b, "no-store"), newMissOrigin(b, "no-store")
			h := newHarness(b, harnessOptions{origin: origin, accessLog: slog.NewJSONHandler(io.Discard, nil),
				config: func(c *config.Config) { bb.cfg(c, second) }})
			c := newMissClient(b, h.addr(), "GET /nocache/item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n")
			c.run(b)
		})
	}
}
