package balance

import "github.com/cespare/xxhash/v2"

// DefaultTableSize is Maglev's lookup table size: a prime, and large
// enough (over 100 slots per endpoint up to 650 endpoints) that the
// endpoints' shares stay within about 1% of their weights.
const DefaultTableSize = 65537

// maglevPerms are the endpoints' preference lists (Maglev, NSDI 2016,
// §3.4): endpoint i prefers slots offset, offset+skip, offset+2·skip, …
// modulo the table size. Both come from the endpoint's name, so an
// endpoint keeps its preferences when others come and go.
type maglevPerms struct {
	m            uint64
	offset, skip []uint64
}

func newMaglevPerms(hosts []*Host, m int) *maglevPerms {
	p := &maglevPerms{m: uint64(m), offset: make([]uint64, len(hosts)), skip: make([]uint64, len(hosts))}
	for i, h := range hosts {
		x := xxhash.Sum64String(h.Name)
		p.offset[i] = x % p.m
		p.skip[i] = Mix(x^0x9e3779b97f4a7c15)%(p.m-1) + 1
	}
	return p
}

// table fills a lookup table with the hosts idx, each taking turns in
// proportion to its weight: a host of the largest weight takes a slot on
// every round, one of half that weight every other round (Envoy's
// weighted Maglev).
func (p *maglevPerms) table(idx []int32, weights []int) []int32 {
	t := make([]int32, p.m)
	for k := range t {
		t[k] = -1
	}
	maxW := 0
	for _, i := range idx {
		maxW = max(maxW, weights[i])
	}
	next := make([]uint64, len(idx))
	credit := make([]int, len(idx))
	filled := uint64(0)
	for {
		for k, i := range idx {
			credit[k] += weights[i]
			if credit[k] < maxW {
				continue
			}
			credit[k] -= maxW
			c := (p.offset[i] + next[k]*p.skip[i]) % p.m
			for t[c] >= 0 {
				next[k]++
				c = (p.offset[i] + next[k]*p.skip[i]) % p.m
			}
			t[c] = i
			next[k]++
			if filled++; filled == p.m {
				return t
			}
		}
	}
}

// Mix is a 64-bit finaliser (splitmix64): hashes of similar keys land
// far apart in the table.
func Mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// HashString is the hash of a request's key (a header value, a cookie,
// the client's address) that Pick takes.
func HashString(s string) uint64 { return xxhash.Sum64String(s) }
