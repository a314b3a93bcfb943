package proxy_test

// lb_policy ring_hash against real upstream servers on loopback, through
// both entry paths (fast path and net/http) and both forwarders.

import (
	"fmt"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// TestRingHashSticky: a key keeps its endpoint on both paths (the same
// endpoint for the same key on each), keys spread over the endpoints, a
// request without the key goes anywhere, and one client address keeps
// its endpoint under source_address.
func TestRingHashSticky(t *testing.T) {
	stickyByKey(t, config.LBRingHash)
	t.Run("source_address", func(t *testing.T) {
		p := newPool(t, "a", "b", "c")
		for _, plain := range []bool{false, true} {
			h := lbHarness(t, plain, func(c *config.Cluster) {
				c.Endpoints = p.endpoints()
				c.LBPolicy, c.HashPolicy = config.LBRingHash, &config.HashPolicy{SourceAddress: true}
				c.RingHash = &config.RingHash{PointsPerEndpoint: 64, MaximumRingSize: 1024}
			})
			one := served(t, h, "/s/0", false)
			for i := range 20 {
				if got := served(t, h, fmt.Sprintf("/s/%d", i), i%2 == 0); got != one {
					t.Fatalf("plain=%v: one client address went to %s and %s", plain, one, got)
				}
			}
		}
	})
}

// TestRingHashEndpointDown: when health checks mark an endpoint down, its
// keys go to the others and the others' keys stay where they were; when
// it is marked up again every key is back where it was. On both paths.
func TestRingHashEndpointDown(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprint("plain=", plain), func(t *testing.T) {
			p := newPool(t, "a", "b", "c")
			h := lbHarness(t, plain, func(c *config.Cluster) {
				c.Endpoints = p.endpoints()
				c.LBPolicy, c.HashPolicy = config.LBRingHash, &config.HashPolicy{Header: "X-User"}
				c.HealthCheck = &config.HealthCheck{Path: "/health", Interval: 30 * time.Millisecond, Timeout: time.Second,
					HealthyThreshold: 1, UnhealthyThreshold: 1, ExpectedStatuses: []int{200}}
			})
			const keys = 40
			route := func(tag string) []string {
				out := make([]string, keys)
				for k := range out {
					out[k] = served(t, h, fmt.Sprintf("/%s/%d", tag, k), k%3 == 0, "X-User", fmt.Sprint("u", k))
				}
				return out
			}
			before := route("before")
			down := before[0] // an endpoint that owns keys
			i := p.index(down)
			healthy := func(want float64) func() bool {
				return func() bool {
					return metricValue(t, h, "zerohop_endpoint_healthy", "cluster", "lb", "endpoint", p.ups[i].hostport()) == want
				}
			}
			p.sick[i].Store(true)
			awaitLB(t, down+" marked down", healthy(0))
			during := route("down")
			for k := range keys {
				switch {
				case during[k] == down:
					t.Fatalf("key %d went to %s, marked down", k, down)
				case before[k] != down && during[k] != before[k]:
					t.Errorf("key %d moved from %s to %s, both in rotation", k, before[k], during[k])
				}
			}
			p.sick[i].Store(false)
			awaitLB(t, down+" marked up", healthy(1))
			after := route("up")
			for k := range keys {
				if after[k] != before[k] {
					t.Errorf("key %d: %s before, %s after %s came back", k, before[k], after[k], down)
				}
			}
		})
	}
}
