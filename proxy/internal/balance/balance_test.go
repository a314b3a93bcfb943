package balance

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hosts(n int) []*Host {
	hs := make([]*Host, n)
	for i := range hs {
		hs[i] = NewHost(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
	}
	return hs
}

func mustNew(t testing.TB, hs []*Host, w []int, o Options) *Balancer {
	t.Helper()
	b, err := New(hs, w, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewRejectsBadWeights(t *testing.T) {
	for _, w := range [][]int{{0, 0}, {1, -1}, {}} {
		if _, err := New(hosts(len(w)), w, Options{}); err == nil {
			t.Errorf("weights %v accepted", w)
		}
	}
}

// TestRoundRobinOrder: nginx's smooth weighted round robin, exactly.
func TestRoundRobinOrder(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		down    []int
		want    string // one period, hosts named a, b, c...
	}{
		{[]int{1, 1, 1}, nil, "abc"},
		{[]int{5, 1, 1}, nil, "aabacaa"},
		{[]int{10, 2, 2}, nil, "aabacaa"}, // the common divisor does not change the order
		{[]int{2, 1}, nil, "aba"},
		{[]int{5, 1, 1}, []int{0}, "bc"},
		{[]int{5, 0, 1}, nil, "aaacaa"}, // weight 0 drains
		{[]int{3, 2}, nil, "ababa"},
	} {
		t.Run(fmt.Sprint(tc.weights, tc.down), func(t *testing.T) {
			hs := hosts(len(tc.weights))
			b := mustNew(t, hs, tc.weights, Options{Policy: RoundRobin})
			for _, i := range tc.down {
				hs[i].SetDown(true)
			}
			var got strings.Builder
			for range 3 * len(tc.want) {
				got.WriteByte(byte('a' + b.Pick(0, false)))
			}
			if want := strings.Repeat(tc.want, 3); got.String() != want {
				t.Errorf("order %s, want %s", got.String(), want)
			}
		})
	}
}

// TestRoundRobinLive: weights whose period is too long to precompute run
// nginx's algorithm live, with the same result.
func TestRoundRobinLive(t *testing.T) {
	w := []int{maxSequence, 3, 1}
	b := mustNew(t, hosts(3), w, Options{Policy: RoundRobin})
	if b.v.Load().seq != nil {
		t.Fatal("sequence precomputed")
	}
	counts := make([]int, 3)
	for range maxSequence + 4 {
		counts[b.Pick(0, false)]++
	}
	if counts[0] != maxSequence || counts[1] != 3 || counts[2] != 1 {
		t.Errorf("one period: %v", counts)
	}
}

func shares(b *Balancer, n, picks int, key func(k int) (uint64, bool)) []float64 {
	c := make([]float64, n)
	for k := range picks {
		h, ok := key(k)
		i := b.Pick(h, ok)
		c[i]++
		if b.opts.Policy == LeastRequest {
			b.hosts[i].Release()
		}
	}
	for i := range c {
		c[i] /= float64(picks)
	}
	return c
}

// TestWeightedShares: every policy sends traffic in proportion to weight.
func TestWeightedShares(t *testing.T) {
	w := []int{6, 3, 1}
	want := []float64{.6, .3, .1}
	for _, p := range []Policy{Random, RoundRobin, LeastRequest, Maglev} {
		b := mustNew(t, hosts(3), w, Options{Policy: p})
		got := shares(b, 3, 100_000, func(k int) (uint64, bool) { return Mix(uint64(k)), true })
		for i := range want {
			if math.Abs(got[i]-want[i]) > 0.02 {
				t.Errorf("policy %d: shares %.3f, want %v", p, got, want)
				break
			}
		}
	}
}

// TestManyHostsShares: with more hosts than a scan suits (the alias
// table), draws still follow the weights.
func TestManyHostsShares(t *testing.T) {
	const n, picks = 40, 400_000
	w := make([]int, n)
	total := 0
	for i := range w {
		w[i] = 1 + i%7*3 // 1 to 19
		total += w[i]
	}
	for _, p := range []Policy{Random, Maglev} {
		b := mustNew(t, hosts(n), w, Options{Policy: p})
		if b.v.Load().alias == nil {
			t.Fatal("no alias table")
		}
		got := shares(b, n, picks, func(int) (uint64, bool) { return 0, false })
		for i := range w {
			want := float64(w[i]) / float64(total)
			if math.Abs(got[i]-want) > 0.15*want+0.001 {
				t.Errorf("policy %d host %d: share %.4f, want %.4f", p, i, got[i], want)
			}
		}
	}
}

// TestLeastRequestPrefersIdle: with requests in flight at two of three
// endpoints, the idle one gets most new requests.
func TestLeastRequestPrefersIdle(t *testing.T) {
	hs := hosts(3)
	b := mustNew(t, hs, []int{1, 1, 1}, Options{Policy: LeastRequest})
	hs[0].active.Store(10)
	hs[1].active.Store(10)
	got := shares(b, 3, 30_000, func(int) (uint64, bool) { return 0, false })
	// Two draws both busy: 4/9; otherwise the idle one.
	if got[2] < 0.5 {
		t.Errorf("idle endpoint got %.3f of picks, want about 5/9", got[2])
	}
	// Requests in flight are counted until released.
	i := b.Pick(0, false)
	if hs[i].Active() != 11 && hs[i].Active() != 1 {
		t.Errorf("in flight at the endpoint picked: %d", hs[i].Active())
	}
}

// TestMaglevSticky: a key always goes to the same endpoint; a key-less
// request goes anywhere.
func TestMaglevSticky(t *testing.T) {
	b := mustNew(t, hosts(5), []int{1, 1, 1, 1, 1}, Options{Policy: Maglev})
	for k := range 1000 {
		h := HashString("user-" + strconv.Itoa(k))
		first := b.Pick(h, true)
		for range 3 {
			if got := b.Pick(h, true); got != first {
				t.Fatalf("key %d: %d then %d", k, first, got)
			}
		}
	}
	seen := map[int]bool{}
	for range 200 {
		seen[b.Pick(0, false)] = true
	}
	if len(seen) != 5 {
		t.Errorf("key-less picks reached %d of 5 endpoints", len(seen))
	}
}

// TestMaglevMoves: adding an endpoint to N moves at most 1.2/(N+1) of the
// keys; taking one out of rotation moves little more than its own keys.
func TestMaglevMoves(t *testing.T) {
	const keys = 100_000
	for _, n := range []int{3, 10, 30} {
		hs := hosts(n + 1)
		w := make([]int, n+1)
		for i := range w {
			w[i] = 1
		}
		before := mustNew(t, hs[:n], w[:n], Options{Policy: Maglev})
		pick := func(b *Balancer) []string {
			out := make([]string, keys)
			for k := range out {
				out[k] = b.hosts[b.Pick(HashString("k"+strconv.Itoa(k)), true)].Name
			}
			return out
		}
		a := pick(before)
		after := mustNew(t, hosts(n+1), w, Options{Policy: Maglev}) // the same names, fresh hosts
		c := pick(after)
		moved := 0
		for k := range a {
			if a[k] != c[k] {
				moved++
			}
		}
		frac, bound := float64(moved)/keys, 1.2/float64(n+1)
		t.Logf("N=%d -> %d: %.4f of keys moved (ideal %.4f, bound %.4f)", n, n+1, frac, 1/float64(n+1), bound)
		if frac > bound {
			t.Errorf("N=%d: %.4f of keys moved, bound %.4f", n, frac, bound)
		}
		// Marking one endpoint down moves its keys and few others.
		after.hosts[0].SetDown(true)
		d := pick(after)
		moved = 0
		for k := range c {
			if c[k] != d[k] && c[k] != after.hosts[0].Name {
				moved++
			}
		}
		if frac := float64(moved) / keys; frac > 0.2/float64(n) {
			t.Errorf("N=%d: endpoint down moved %.4f of other endpoints' keys", n+1, frac)
		}
	}
}

// TestPanicThreshold: below the threshold, every endpoint is used.
func TestPanicThreshold(t *testing.T) {
	for _, tc := range []struct {
		threshold, down int
		panic           bool
	}{
		{50, 1, false}, {50, 2, false}, {50, 3, true}, {0, 3, false}, {0, 4, true}, {100, 1, true},
	} {
		hs := hosts(4)
		b := mustNew(t, hs, []int{1, 1, 1, 1}, Options{Policy: RoundRobin, PanicThreshold: tc.threshold})
		for i := range tc.down {
			hs[i].SetDown(true)
		}
		if b.Panicking() != tc.panic {
			t.Errorf("threshold %d, %d of 4 down: panic %v", tc.threshold, tc.down, b.Panicking())
		}
		seen := map[int]bool{}
		for range 8 {
			seen[b.Pick(0, false)] = true
		}
		for i := range 4 {
			if seen[i] != (tc.panic || i >= tc.down) {
				t.Errorf("threshold %d, %d down: picked %v", tc.threshold, tc.down, seen)
				break
			}
		}
	}
}

// TestOutlierEjection: consecutive failures eject, each ejection lasts
// longer, successes reset the count, and the cap on the ejected share
// holds.
func TestOutlierEjection(t *testing.T) {
	hs := hosts(4)
	b := mustNew(t, hs, []int{1, 1, 1, 1}, Options{Policy: RoundRobin})
	var ejections []time.Duration
	d := NewDetector(b, OutlierOptions{
		Consecutive5xx: 3, ConsecutiveGatewayFailure: 2,
		BaseEjectionTime: 50 * time.Millisecond, MaxEjectionTime: 120 * time.Millisecond,
		MaxEjectionPercent: 25,
		OnEject:            func(h *Host, dur time.Duration) { ejections = append(ejections, dur) },
	})
	d.Observe(hs[0], Status5xx)
	d.Observe(hs[0], Status5xx)
	d.Observe(hs[0], Success) // resets
	d.Observe(hs[0], Status5xx)
	d.Observe(hs[0], Status5xx)
	if hs[0].Ejected() {
		t.Fatal("ejected after a success broke the run")
	}
	d.Observe(hs[0], Status5xx)
	if !hs[0].Ejected() {
		t.Fatal("not ejected after 3 consecutive 5xx")
	}
	// 25% of 4: a second ejection would exceed the cap.
	d.Observe(hs[1], GatewayFailure)
	d.Observe(hs[1], GatewayFailure)
	if hs[1].Ejected() {
		t.Error("a second host ejected beyond max_ejection_percent")
	}
	for range 8 {
		if b.Pick(0, false) == 0 {
			t.Fatal("ejected host picked")
		}
	}
	waitFor(t, func() bool { return !hs[0].Ejected() })
	d.Observe(hs[0], GatewayFailure)
	d.Observe(hs[0], Local) // says nothing
	d.Observe(hs[0], GatewayFailure)
	if !hs[0].Ejected() {
		t.Fatal("not ejected after 2 gateway failures")
	}
	waitFor(t, func() bool { return !hs[0].Ejected() })
	for range 3 {
		d.Observe(hs[0], Status5xx)
	}
	if len(ejections) != 3 || ejections[0] != 50*time.Millisecond || ejections[1] != 100*time.Millisecond || ejections[2] != 120*time.Millisecond {
		t.Errorf("ejection times %v, want 50ms 100ms 120ms (capped)", ejections)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestPickAllocs: picking allocates nothing, under every policy.
func TestPickAllocs(t *testing.T) {
	for _, p := range []Policy{Random, RoundRobin, LeastRequest, Maglev} {
		b := mustNew(t, hosts(8), []int{1, 2, 3, 4, 1, 2, 3, 4}, Options{Policy: p})
		d := NewDetector(b, OutlierOptions{Consecutive5xx: 5, BaseEjectionTime: time.Second, MaxEjectionPercent: 10})
		if n := testing.AllocsPerRun(1000, func() {
			i := b.Pick(12345, true)
			d.Observe(b.hosts[i], Success)
			if p == LeastRequest {
				b.hosts[i].Release()
			}
		}); n != 0 {
			t.Errorf("policy %d: %v allocs per pick", p, n)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 100} {
		for _, tc := range []struct {
			name string
			p    Policy
		}{{"random", Random}, {"round_robin", RoundRobin}, {"least_request", LeastRequest}, {"maglev", Maglev}} {
			b.Run(fmt.Sprintf("%s/%d", tc.name, n), func(b *testing.B) {
				w := make([]int, n)
				for i := range w {
					w[i] = 1 + i%4
				}
				bal := mustNew(b, hosts(n), w, Options{Policy: tc.p, PanicThreshold: 50})
				d := NewDetector(bal, OutlierOptions{Consecutive5xx: 5, BaseEjectionTime: time.Second, MaxEjectionPercent: 10})
				key := HashString("user-42")
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := bal.Pick(key, true)
						h := bal.hosts[i]
						d.Observe(h, Success)
						if tc.p == LeastRequest {
							h.Release()
						}
					}
				})
			})
		}
	}
}
