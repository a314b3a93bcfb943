package balance

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// ringKeys are the hashes of the keys the ring tests route.
func ringKeys(n int) []uint64 {
	k := make([]uint64, n)
	for i := range k {
		k[i] = HashString("k" + strconv.Itoa(i))
	}
	return k
}

// owners routes keys through b, by host name.
func owners(b *Balancer, keys []uint64) []string {
	out := make([]string, len(keys))
	for k, h := range keys {
		out[k] = b.hosts[b.Pick(h, true)].Name
	}
	return out
}

func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// TestRingHashMoves: with the default 1,024 points per endpoint, adding
// an endpoint to N moves at most 1.2/(N+1) of the keys, for N up to 100
// (Maglev's 65,537 slots hold that only to about 30); the keys that move
// all go to the new endpoint.
func TestRingHashMoves(t *testing.T) {
	keys := ringKeys(200_000)
	for _, n := range []int{3, 10, 30, 100} {
		before := mustNew(t, hosts(n), ones(n), Options{Policy: RingHash})
		after := mustNew(t, hosts(n+1), ones(n+1), Options{Policy: RingHash}) // the same names, fresh hosts
		a, c := owners(before, keys), owners(after, keys)
		moved, elsewhere := 0, 0
		added := after.hosts[n].Name
		for k := range a {
			if a[k] != c[k] {
				moved++
				if c[k] != added {
					elsewhere++
				}
			}
		}
		frac, bound := float64(moved)/float64(len(keys)), 1.2/float64(n+1)
		t.Logf("N=%d -> %d: %.4f of keys moved = %.2f/(N+1) (bound 1.2/(N+1) = %.4f)", n, n+1, frac, frac*float64(n+1), bound)
		if frac > bound {
			t.Errorf("N=%d: %.4f of keys moved, bound %.4f", n, frac, bound)
		}
		if elsewhere != 0 {
			t.Errorf("N=%d: %d keys moved between endpoints that stayed", n, elsewhere)
		}
	}
}

// TestRingHashSticky: a key always goes to the same endpoint, whatever
// the order the endpoints are listed in; a key-less request goes
// anywhere.
func TestRingHashSticky(t *testing.T) {
	hs := hosts(5)
	b := mustNew(t, hs, ones(5), Options{Policy: RingHash})
	rev := make([]*Host, 5)
	for i := range rev {
		rev[i] = NewHost(hs[4-i].Name)
	}
	r := mustNew(t, rev, ones(5), Options{Policy: RingHash})
	keys := ringKeys(2000)
	first, again, reversed := owners(b, keys), owners(b, keys), owners(r, keys)
	for k := range keys {
		if first[k] != again[k] || first[k] != reversed[k] {
			t.Fatalf("key %d: %s, then %s, listed in reverse %s", k, first[k], again[k], reversed[k])
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

// TestRingHashShares: keys spread in proportion to weight, to within 10%
// of each share at the default ring size (1,024 points give a standard
// deviation of about 3%), for few and many endpoints.
func TestRingHashShares(t *testing.T) {
	keyed := func(k int) (uint64, bool) { return Mix(uint64(k)), true }
	for _, w := range [][]int{{6, 3, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {100, 200, 300}} {
		b := mustNew(t, hosts(len(w)), w, Options{Policy: RingHash})
		total := 0
		for _, x := range w {
			total += x
		}
		got := shares(b, len(w), 200_000, keyed)
		for i := range w {
			want := float64(w[i]) / float64(total)
			if math.Abs(got[i]-want) > 0.10*want {
				t.Errorf("weights %v: shares %.4f", w, got)
				break
			}
		}
	}
	// Weight 0 drains.
	b := mustNew(t, hosts(3), []int{1, 0, 1}, Options{Policy: RingHash})
	if got := shares(b, 3, 10_000, keyed); got[1] != 0 {
		t.Errorf("endpoint of weight 0 got %.4f", got[1])
	}
}

// TestRingHashSizes: each endpoint gets points in proportion to its
// weight, relative to the lightest, and a ring over maximum_ring_size is
// scaled down to it.
func TestRingHashSizes(t *testing.T) {
	for _, tc := range []struct {
		weights         []int
		points, maxSize int
		want            []int
	}{
		{[]int{1, 1, 1}, 1024, DefaultMaxRingSize, []int{1024, 1024, 1024}},
		{[]int{10, 30, 0}, 100, DefaultMaxRingSize, []int{100, 300, 0}},
		{[]int{1, 3}, 100, 200, []int{50, 150}},
		{[]int{1, 1_000_000}, 1024, 1000, []int{1, 999}}, // at least one point each
	} {
		r := newRing(hosts(len(tc.weights)), tc.weights, tc.points, tc.maxSize)
		got := make([]int, len(tc.weights))
		for _, o := range r.owners {
			got[o]++
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("weights %v, %d points, max %d: counts %v, want %v", tc.weights, tc.points, tc.maxSize, got, tc.want)
				break
			}
		}
		for k := 1; k < len(r.hashes); k++ {
			if r.hashes[k] < r.hashes[k-1] {
				t.Fatal("ring not sorted")
			}
		}
	}
}

// TestRingHashUnavailable: an endpoint marked down or ejected loses its
// keys to the others and no other key moves; when it is back, every key
// is where it was. In panic mode every endpoint has its own keys.
func TestRingHashUnavailable(t *testing.T) {
	hs := hosts(5)
	b := mustNew(t, hs, ones(5), Options{Policy: RingHash, PanicThreshold: 50})
	keys := ringKeys(50_000)
	before := owners(b, keys)
	hs[2].SetDown(true)
	down := owners(b, keys)
	lost := 0
	for k := range keys {
		switch {
		case down[k] == hs[2].Name:
			t.Fatalf("key %d went to the endpoint marked down", k)
		case before[k] == hs[2].Name:
			lost++
		case down[k] != before[k]:
			t.Fatalf("key %d moved from %s to %s, between endpoints in rotation", k, before[k], down[k])
		}
	}
	if lost == 0 {
		t.Fatal("the endpoint marked down had no keys")
	}
	hs[2].SetDown(false)
	for k, o := range owners(b, keys) {
		if o != before[k] {
			t.Fatalf("key %d: %s before, %s after the endpoint came back", k, before[k], o)
		}
	}
	// Three of five down is below 50%: all are used, as before.
	for i := range 3 {
		hs[i].SetDown(true)
	}
	if !b.Panicking() {
		t.Fatal("not panicking with 3 of 5 down")
	}
	for k, o := range owners(b, keys) {
		if o != before[k] {
			t.Fatalf("panic mode: key %d went to %s, not %s", k, o, before[k])
		}
	}
}

// BenchmarkHashKeys: consistent hashing with a different key on each
// pick (BenchmarkPick repeats one key, whose path stays in cache).
func BenchmarkHashKeys(b *testing.B) {
	keys := ringKeys(1 << 16)
	for _, n := range []int{3, 100} {
		for _, tc := range []struct {
			name string
			p    Policy
		}{{"maglev", Maglev}, {"ring_hash", RingHash}} {
			b.Run(tc.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				w := make([]int, n)
				for i := range w {
					w[i] = 1 + i%4
				}
				bal := mustNew(b, hosts(n), w, Options{Policy: tc.p})
				b.ReportAllocs()
				b.ResetTimer()
				sum := 0
				for i := range b.N {
					sum += bal.Pick(keys[i&(len(keys)-1)], true)
				}
				if sum < 0 {
					b.Fatal(sum)
				}
			})
		}
	}
}

// TestRingHashIndex: the bucket index finds what a binary search of the
// whole ring finds, at the points themselves, next to them, at the ends,
// for rings of one point to many, whole and with hosts left out.
func TestRingHashIndex(t *testing.T) {
	for _, tc := range []struct{ n, points int }{{1, 1}, {1, 2}, {2, 1}, {3, 5}, {7, 100}, {20, 1024}} {
		r := newRing(hosts(tc.n), ones(tc.n), tc.points, DefaultMaxRingSize)
		rings := []*ring{r}
		if tc.n > 1 {
			rings = append(rings, r.only([]int32{0}, tc.n))
		}
		for _, r := range rings {
			probe := []uint64{0, 1, math.MaxUint64, math.MaxUint64 - 1}
			for _, h := range r.hashes {
				probe = append(probe, h, h-1, h+1)
			}
			probe = append(probe, ringKeys(2000)...)
			for _, key := range probe {
				i, _ := slices.BinarySearch(r.hashes, key)
				if i == len(r.hashes) {
					i = 0
				}
				if got, want := r.find(key), int(r.owners[i]); got != want {
					t.Fatalf("%d hosts × %d points, key %#x: host %d, want %d", tc.n, tc.points, key, got, want)
				}
			}
		}
	}
}

// BenchmarkRingHashBuild: building the ring of 100 endpoints (New, at a
// reload) and filtering it when one is marked down (Rebuild).
func BenchmarkRingHashBuild(b *testing.B) {
	b.Run("new/100", func(b *testing.B) {
		hs := hosts(100)
		for range b.N {
			mustNew(b, hs, ones(100), Options{Policy: RingHash})
		}
	})
	b.Run("rebuild/100", func(b *testing.B) {
		hs := hosts(100)
		mustNew(b, hs, ones(100), Options{Policy: RingHash, PanicThreshold: 50})
		for i := range b.N {
			hs[0].SetDown(i%2 == 0)
		}
	})
}
