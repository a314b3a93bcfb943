package proxy_test

import (
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy"
)

// TestTimelineBothPaths records a miss and then a fresh hit behind the
// fast path and behind net/http alone: the same phases on both (filters
// and cache on each; upstream, transfer and store on the miss only), the
// request id and traceparent the app sent, and the hit written by the
// fast path itself where it runs.
func TestTimelineBothPaths(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain})
		views := &proxy.Trace{}
		proxy.AddFilter(h.p, "main", &proxy.TestFilter{Label: "A", Views: views, Trace: &proxy.Trace{}})
		for _, id := range []string{"tl-miss", "tl-hit"} {
			if r := h.do("GET", "/tl", hdr("X-Request-Id", id, "Host", "app.local", "Traceparent", tp), nil); r.StatusCode != 200 {
				t.Fatalf("plain=%v %s: %d", plain, id, r.StatusCode)
			}
		}
		// A response reaches the client just before its request is
		// recorded: wait for the second.
		var recs []proxy.RequestRecord
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if recs = h.p.Requests(proxy.RequestFilter{Route: "main"}); len(recs) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if len(recs) != 2 {
			t.Fatalf("plain=%v: %d timelines, want 2: %+v", plain, len(recs), recs)
		}
		hit, miss := recs[0], recs[1] // newest first
		if hit.RequestID != "tl-hit" || miss.RequestID != "tl-miss" || hit.Cache != "hit" || miss.Cache == "hit" ||
			hit.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || miss.Status != 200 || miss.Target != "/tl" {
			t.Errorf("plain=%v: hit %+v miss %+v", plain, hit, miss)
		}
		names := func(r proxy.RequestRecord) map[string]bool {
			m := map[string]bool{}
			for _, p := range r.Phases {
				m[p.Name] = true
			}
			return m
		}
		mp, hp := names(miss), names(hit)
		for _, n := range []string{"filters", "cache", "upstream", "transfer", "store"} {
			if !mp[n] {
				t.Errorf("plain=%v: the miss lacks phase %s: %+v", plain, n, miss.Phases)
			}
		}
		if !hp["filters"] || !hp["cache"] || hp["upstream"] || hp["store"] {
			t.Errorf("plain=%v: the hit's phases %+v", plain, hit.Phases)
		}
		v := views.Take()
		fastHit := len(v) > 0 && v[len(v)-1] == "response:fast"
		if fastHit == plain {
			t.Errorf("plain=%v: the hit was written by the fast path: %v", plain, fastHit)
		}
		if r := h.p.Requests(proxy.RequestFilter{Cache: "hit", StatusClass: 2, Limit: 5}); len(r) != 1 || r[0].RequestID != "tl-hit" {
			t.Errorf("plain=%v: cache=hit status=2xx: %+v", plain, r)
		}
	}
}
