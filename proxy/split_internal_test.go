package proxy

import (
	"fmt"
	"math"
	"net/http"
	"testing"
)

func testSplit(header, cookie string, weights ...int) (*split, []*cluster) {
	s := &split{header: header, cookie: cookie}
	var cs []*cluster
	for i, w := range weights {
		c := &cluster{name: fmt.Sprintf("c%d", i)}
		cs = append(cs, c)
		s.total += uint64(w)
		s.sides = append(s.sides, splitSide{c: c, upto: s.total})
	}
	return s, cs
}

// TestSplitWeights: over 10k requests each side's share is within 2
// points of its weight's, at random and sticky by distinct users alike.
func TestSplitWeights(t *testing.T) {
	for _, tc := range []struct {
		weights        []int
		header, cookie string
	}{
		{[]int{90, 10}, "", ""},
		{[]int{1, 1}, "", ""},
		{[]int{70, 20, 10}, "", ""},
		{[]int{90, 10}, "X-User", ""},
		{[]int{50, 30, 20}, "", "uid"},
	} {
		s, cs := testSplit(tc.header, tc.cookie, tc.weights...)
		const n = 10_000
		got := map[*cluster]int{}
		for i := range n {
			h := http.Header{}
			switch {
			case tc.header != "":
				h.Set(tc.header, fmt.Sprintf("user-%d", i))
			case tc.cookie != "":
				h.Set("Cookie", fmt.Sprintf("a=b; uid=user-%d; c=d", i))
			}
			got[s.pick(h)]++
		}
		for i, c := range cs {
			want := float64(tc.weights[i]) / float64(s.total)
			share := float64(got[c]) / n
			if math.Abs(share-want) > 0.02 {
				t.Errorf("weights %v sticky %q%q: side %d got %.3f; want %.3f ± 0.02", tc.weights, tc.header, tc.cookie, i, share, want)
			}
		}
	}
}

// TestSplitSticky: one value always picks the same side; a request
// without it is split at random.
func TestSplitSticky(t *testing.T) {
	s, _ := testSplit("X-User", "", 50, 50)
	sc, _ := testSplit("", "session", 50, 50)
	for u := range 200 {
		v := fmt.Sprintf("u%d", u)
		first := s.pick(http.Header{"X-User": {v}})
		firstC := sc.pick(http.Header{"Cookie": {"session=" + v}})
		for range 20 {
			if s.pick(http.Header{"X-User": {v}}) != first {
				t.Fatalf("header %s moved between sides", v)
			}
			if sc.pick(http.Header{"Cookie": {"x=1; session=" + v}}) != firstC {
				t.Fatalf("cookie %s moved between sides", v)
			}
		}
	}
	seen := map[*cluster]bool{}
	for range 200 {
		seen[s.pick(http.Header{})] = true
	}
	if len(seen) != 2 {
		t.Errorf("requests without the field went to %d sides; want both", len(seen))
	}
}

func BenchmarkSplitPick(b *testing.B) {
	s, _ := testSplit("X-User", "", 90, 10)
	h := http.Header{"X-User": {"user-12345"}}
	b.Run("sticky", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.pick(h)
		}
	})
	b.Run("random", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.pick(nil)
		}
	})
}

func BenchmarkBreakerAdmit(b *testing.B) {
	l := &limits{maxRequests: 1 << 30, budgetPct: 20, minRetries: 3}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.admit() {
				l.done()
			}
		}
	})
}
