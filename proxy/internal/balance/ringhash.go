package balance

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// RingHash's defaults.
const (
	// DefaultRingPoints is the number of points an endpoint of the
	// smallest weight gets on the ring. With 1,024 points an endpoint's
	// share is within about 3% (one standard deviation) of its weight's,
	// and adding an endpoint to N moves 0.95 to 1.03/(N+1) of the keys
	// for N = 3, 10, 30, 100 (TestRingHashMoves; 512 points moved
	// 1.14/(N+1) at N = 10, near the bound of 1.2). 100 endpoints make a
	// ring of 102,400 points: 1.2 MB, and a bucket index of 0.26 MB.
	DefaultRingPoints = 1024
	// DefaultMaxRingSize caps the ring at 2^20 points (about 16 MB).
	DefaultMaxRingSize = 1 << 20
)

// ring is a ketama ring (Karger et al., as Envoy's RING_HASH): each
// endpoint owns points hashed from its name and a counter, and a key
// belongs to the owner of the first point at or after its hash, wrapping
// around. An endpoint's points depend on its own name and weight alone,
// so adding one moves only the keys that now fall before its points.
type ring struct {
	hashes []uint64 // sorted
	owners []int32  // host index of each point
	// start[j] is the first point whose hash's top bits (hash>>shift)
	// are j or more: a key's point is among the few of its bucket (one
	// or two on average), found without a binary search's cache misses
	// and mispredicted branches over the whole ring.
	start []uint32
	shift uint
}

// newRing places the points of every host of positive weight. Host i
// gets points·weights[i]/(the smallest positive weight) of them, rounded,
// at least one; when that adds up to more than maxSize, every count is
// scaled down to fit (and adding an endpoint can then move more keys).
//
// Envoy instead divides minimum_ring_size among the endpoints by their
// share of the total weight, so every endpoint's count changes when one
// is added, and keys at the dropped points move too: that scheme moved
// 1.4 to 2.1/(N+1) of the keys from N = 3, 10 and 30 to N+1 endpoints
// with 1,024 or 8,192 as minimum_ring_size, where this one moves 0.95 to
// 1.03/(N+1).
func newRing(hosts []*Host, weights []int, points, maxSize int) *ring {
	minW := math.MaxInt
	for _, w := range weights {
		if w > 0 {
			minW = min(minW, w)
		}
	}
	counts := make([]int, len(hosts))
	total := 0.0
	for _, w := range weights {
		if w > 0 {
			total += math.Round(float64(points) * float64(w) / float64(minW))
		}
	}
	scale := 1.0
	if total > float64(maxSize) {
		scale = float64(maxSize) / total
	}
	n := 0
	for i, w := range weights {
		if w > 0 {
			c := math.Round(float64(points)*float64(w)/float64(minW)) * scale
			counts[i] = max(1, int(c))
			n += counts[i]
		}
	}
	type point struct {
		hash  uint64
		owner int32
	}
	pts := make([]point, 0, n)
	var buf []byte
	for i, h := range hosts {
		buf = append(buf[:0], h.Name...)
		buf = append(buf, '_')
		base := len(buf)
		for k := range counts[i] {
			buf = strconv.AppendInt(buf[:base], int64(k), 10)
			pts = append(pts, point{xxhash.Sum64(buf), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})
	r := &ring{hashes: make([]uint64, n), owners: make([]int32, n)}
	for k, p := range pts {
		r.hashes[k], r.owners[k] = p.hash, p.owner
	}
	r.index()
	return r
}

// index fills start and shift: one or two points a bucket on average.
func (r *ring) index() {
	b := max(0, bits.Len(uint(len(r.hashes)-1))-1)
	r.shift = uint(64 - b)
	r.start = make([]uint32, 1<<b+1)
	k := 0
	for j := range r.start {
		for k < len(r.hashes) && r.hashes[k]>>r.shift < uint64(j) {
			k++
		}
		r.start[j] = uint32(k)
	}
}

// only is the ring of the hosts in idx alone: the others' points are
// gone, so their keys fall to the next point clockwise of an available
// host, and no other key moves. r itself when idx has every host.
func (r *ring) only(idx []int32, nHosts int) *ring {
	keep := make([]bool, nHosts)
	for _, i := range idx {
		keep[i] = true
	}
	n := 0
	for _, o := range r.owners {
		if keep[o] {
			n++
		}
	}
	if n == len(r.owners) {
		return r
	}
	s := &ring{hashes: make([]uint64, 0, n), owners: make([]int32, 0, n)}
	for k, o := range r.owners {
		if keep[o] {
			s.hashes = append(s.hashes, r.hashes[k])
			s.owners = append(s.owners, o)
		}
	}
	s.index()
	return s
}

// find returns the owner of the first point at or after key, wrapping.
// The points before start[j] are below key's bucket j, those from
// start[j+1] above it, so the first at or after key lies between.
func (r *ring) find(key uint64) int {
	j := key >> r.shift
	k, end := r.start[j], r.start[j+1]
	for k < end && r.hashes[k] < key {
		k++
	}
	if int(k) == len(r.hashes) {
		k = 0
	}
	return int(r.owners[k])
}
