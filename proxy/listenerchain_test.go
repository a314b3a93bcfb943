package proxy_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// TestListenerChain: a listener's filters run on every request it
// accepts, before the route's filters, and on requests with no route
// (forward mode); a consumer a filter sets reaches later filters, the
// access log and the hand-over from the fast path, the same on both
// entry paths, on a miss and on a hit.
func TestListenerChain(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain})
			tr := &proxy.Trace{}
			proxy.AddFilter(h.p, "main", &proxy.TestFilter{Label: "R", Consumer: "X-None", Trace: tr})
			proxy.AddListenerFilter(h.p, h.lis.Name, &proxy.TestFilter{Label: "L", Consumer: "X-Who", Require: "X-Who", Trace: tr})

			// Refused by the listener's filter: the route's never runs.
			if r := h.do("GET", "/f", hdr("X-Request-Id", "lc-0", "Host", "app.local"), nil); r.StatusCode != 401 {
				t.Fatalf("without X-Who: status %d; want the listener filter's 401", r.StatusCode)
			}
			if got, want := tr.Take(), []string{"L.request GET /f route=main", "R.response 401", "L.response 401"}; !slices.Equal(got, want) {
				t.Errorf("refused: ran %q; want %q", got, want)
			}
			// A miss, then a hit: the listener's filter first, the consumer
			// it set seen by the route's filter and logged.
			for i, want := range [][]string{
				{"L.request GET /f route=main", "L.consumer=alice", "R.request GET /f route=main", "R.consumer=alice",
					"L.upstream", "R.upstream", "R.response 200", "L.response 200"},
				{"L.request GET /f route=main", "L.consumer=alice", "R.request GET /f route=main", "R.consumer=alice",
					"R.response 200", "L.response 200"},
			} {
				id := fmt.Sprintf("lc-%d", i+1)
				if r := h.do("GET", "/f", hdr("X-Request-Id", id, "Host", "app.local", "X-Who", "alice"), nil); r.StatusCode != 200 {
					t.Fatalf("#%d: status %d", i, r.StatusCode)
				}
				if got := tr.Take(); !slices.Equal(got, want) {
					t.Errorf("#%d: ran %q; want %q", i, got, want)
				}
				// The line is written after the response: wait for it.
				if consumer := logged(h, id, "consumer"); consumer != "alice" {
					t.Errorf("#%d: access log consumer %v; want alice", i, consumer)
				}
			}
			if c := h.up.hits.Load(); c != 1 {
				t.Errorf("upstream hits %d; want 1 (the second was a hit)", c)
			}
		})
	}
}

// TestListenerChainUnrouted: in forward mode a request without a route
// runs the listener's filters too.
func TestListenerChainUnrouted(t *testing.T) {
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: filterUpstream, plainServer: plain})
		tr := &proxy.Trace{}
		proxy.AddListenerFilter(h.p, h.lis.Name, &proxy.TestFilter{Label: "L", Require: "X-Who", Trace: tr})
		if r := h.get("/f"); r.StatusCode != 401 {
			t.Errorf("plain=%v: unrouted request without X-Who: status %d; want 401", plain, r.StatusCode)
		}
		if r := h.get("/f", "X-Who", "bob"); r.StatusCode != 200 {
			t.Errorf("plain=%v: unrouted request with X-Who: status %d; want 200", plain, r.StatusCode)
		}
		if got := tr.Take(); len(got) == 0 || got[0] != "L.request GET /f route=" {
			t.Errorf("plain=%v: ran %q; want the listener filter first, with no route", plain, got)
		}
	}
}
