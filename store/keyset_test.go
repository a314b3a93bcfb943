package store

import (
	"math/rand/v2"
	"testing"
)

// TestKeySet checks the open-addressing set against a map through random
// adds and deletes, with small hashes so that probe chains collide and
// wrap around.
func TestKeySet(t *testing.T) {
	for _, spread := range []uint64{1 << 62, 4096, 64} {
		r := rand.New(rand.NewPCG(spread, 7))
		var k keySet
		k.ready.Store(true)
		m := map[uint64]bool{}
		for i := 0; i < 50_000; i++ {
			h := (r.Uint64()%spread)<<1 | 1
			if r.IntN(3) == 0 {
				k.del(h)
				delete(m, h)
			} else {
				k.add(h)
				m[h] = true
			}
			if i%97 == 0 {
				for x := range m {
					if !k.has(x) {
						t.Fatalf("spread %d step %d: %x lost", spread, i, x)
					}
				}
			}
			probe := (r.Uint64()%spread)<<1 | 1
			if k.has(probe) != m[probe] {
				t.Fatalf("spread %d step %d: has(%x) = %v, want %v", spread, i, probe, k.has(probe), m[probe])
			}
		}
		if k.n != len(m) {
			t.Fatalf("spread %d: n = %d, want %d", spread, k.n, len(m))
		}
	}
	var k keySet
	if !k.has(5) {
		t.Fatal("a set not built yet must answer maybe")
	}
}
