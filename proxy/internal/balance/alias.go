package balance

import "math/rand/v2"

// aliasMin is the number of hosts above which weighted draws use an
// alias table rather than a scan of cumulative weights.
const aliasMin = 8

// aliasTable is Walker's alias method (Vose's construction, in integers):
// a weighted draw is one uniform slot and one uniform threshold test,
// whatever the number of hosts.
type aliasTable struct {
	total  uint64   // sum of weights
	thresh []uint64 // slot k keeps k when the draw is below thresh[k] (of total)
	alias  []int32  // else it gives alias[k]
}

// newAliasTable builds the table for the hosts idx (their weights, summing
// to total); draws return positions in idx.
func newAliasTable(idx []int32, weights []int, total uint64) *aliasTable {
	n := len(idx)
	t := &aliasTable{total: total, thresh: make([]uint64, n), alias: make([]int32, n)}
	scaled := make([]uint64, n) // weight × n: the average slot holds total
	var small, large []int32
	for k, i := range idx {
		scaled[k] = uint64(weights[i]) * uint64(n)
		if scaled[k] < total {
			small = append(small, int32(k))
		} else {
			large = append(large, int32(k))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		l, g := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.thresh[l], t.alias[l] = scaled[l], g
		scaled[g] -= total - scaled[l] // g gave l's slot what it lacked
		if scaled[g] < total {
			large = large[:len(large)-1]
			small = append(small, g)
		}
	}
	for _, k := range append(small, large...) {
		t.thresh[k], t.alias[k] = total, k // rounding leftovers keep their slot
	}
	return t
}

func (t *aliasTable) draw() int {
	k := rand.IntN(len(t.thresh))
	if rand.Uint64N(t.total) < t.thresh[k] {
		return k
	}
	return int(t.alias[k])
}
