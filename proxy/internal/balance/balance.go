// Package balance chooses an upstream endpoint for each request: smooth
// weighted round robin (nginx), weighted least-request with two random
// choices, Maglev consistent hashing, and weighted random. It also keeps
// each endpoint's availability (active health checks mark it down,
// outlier detection ejects it) and skips unavailable endpoints, unless
// too few are available (the panic threshold), when it balances across
// all of them, as Envoy does.
//
// Picking is lock-free and allocation-free: a Balancer keeps an immutable
// view of the endpoints it may choose from, rebuilt (under a mutex) only
// when an endpoint's availability changes, which is rare.
package balance

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy names an algorithm.
type Policy int

// Policies.
const (
	// Random picks in proportion to weight (the default).
	Random Policy = iota
	// RoundRobin is nginx's smooth weighted round robin: with weights 5,
	// 1, 1 the order is a a b a c a a, repeating.
	RoundRobin
	// LeastRequest draws two endpoints at random (by weight) and takes
	// the one with fewer requests in flight.
	LeastRequest
	// Maglev is consistent hashing with Maglev's lookup table: adding or
	// removing one of N endpoints moves about 1/N of the keys.
	Maglev
)

// ErrBadWeights is returned by New when no endpoint has a positive weight
// or a weight is negative.
var ErrBadWeights = errors.New("balance: weights must be >= 0, and one > 0")

// Host is one endpoint's state. It outlives a Balancer: a reload that
// keeps an endpoint hands the same Host to the new Balancer, so health
// and ejections survive it.
type Host struct {
	// Name identifies the endpoint to Maglev (its permutation), so that
	// the same endpoint keeps the same slots whatever its index.
	Name string

	active  atomic.Int64 // requests in flight (LeastRequest)
	down    atomic.Bool  // failed active health checks
	ejected atomic.Bool  // ejected by outlier detection
	owner   atomic.Pointer[Balancer]

	od outlierState // outlier detection's counters (outlier.go)
	hc healthState  // active health checks' counters (health.go)
}

// NewHost returns a host, available, named name.
func NewHost(name string) *Host { return &Host{Name: name} }

// Available reports whether h may be picked outside panic mode.
func (h *Host) Available() bool { return !h.down.Load() && !h.ejected.Load() }

// Down reports whether active health checks marked h down.
func (h *Host) Down() bool { return h.down.Load() }

// Ejected reports whether outlier detection ejected h.
func (h *Host) Ejected() bool { return h.ejected.Load() }

// SetDown marks h down (true) or up, and reports whether that changed.
func (h *Host) SetDown(down bool) bool {
	if h.down.Swap(down) == down {
		return false
	}
	h.changed()
	return true
}

// changed rebuilds the view of the Balancer h currently belongs to.
func (h *Host) changed() {
	if b := h.owner.Load(); b != nil {
		b.Rebuild()
	}
}

// Active is the number of requests in flight to h (Acquire - Release).
func (h *Host) Active() int64 { return h.active.Load() }

// Release ends a request Pick counted for LeastRequest.
func (h *Host) Release() { h.active.Add(-1) }

// Options configure a Balancer.
type Options struct {
	// Policy is the algorithm. Default Random.
	Policy Policy
	// PanicThreshold is the percentage (0 to 100) of endpoints, counted
	// by weight-bearing endpoints, that must be available for unavailable
	// ones to be skipped; below it the Balancer picks among all. 0: never
	// panic. Whatever the threshold, when no endpoint is available all
	// are used: a request still has somewhere to go.
	PanicThreshold int
	// TableSize is Maglev's lookup table size, a prime. Default 65537.
	TableSize int
}

// Balancer picks among a fixed list of hosts with fixed weights.
type Balancer struct {
	opts    Options
	hosts   []*Host
	weights []int
	mu      sync.Mutex // serialises Rebuild
	v       atomic.Pointer[view]
	rr      atomic.Uint64 // round robin position
	swrr    swrrState     // round robin beyond a precomputed sequence
	maglev  *maglevPerms  // endpoints' permutations, computed once
}

// view is what Pick reads: the hosts it may choose among.
type view struct {
	idx   []int32  // host indices, weight > 0
	cum   []uint64 // cumulative weights of idx, for Random and LeastRequest
	total uint64
	alias *aliasTable // weighted draws in constant time, for many hosts
	seq   []int32     // RoundRobin's sequence of indices into idx; nil: swrr
	table []int32     // Maglev's lookup table of host indices
	panic bool        // picking among all hosts
}

// New returns a Balancer over hosts with the given weights (0 drains a
// host). The hosts are owned by the Balancer from now on: their changes
// of availability rebuild its view.
func New(hosts []*Host, weights []int, o Options) (*Balancer, error) {
	if len(hosts) != len(weights) || len(hosts) == 0 {
		return nil, ErrBadWeights
	}
	positive := false
	for _, w := range weights {
		if w < 0 {
			return nil, ErrBadWeights
		}
		positive = positive || w > 0
	}
	if !positive {
		return nil, ErrBadWeights
	}
	if o.TableSize <= 0 {
		o.TableSize = DefaultTableSize
	}
	b := &Balancer{opts: o, hosts: hosts, weights: weights}
	if o.Policy == Maglev {
		b.maglev = newMaglevPerms(hosts, o.TableSize)
	}
	for _, h := range hosts {
		h.owner.Store(b)
	}
	b.Rebuild()
	return b, nil
}

// Adopt makes b the owner of its hosts again, after a Balancer built for
// a reload that was abandoned took them, and rebuilds its view.
func (b *Balancer) Adopt() {
	for _, h := range b.hosts {
		h.owner.Store(b)
	}
	b.Rebuild()
}

// Hosts returns the hosts, in the order given to New.
func (b *Balancer) Hosts() []*Host { return b.hosts }

// Panicking reports whether too few hosts are available, so that Pick
// uses them all.
func (b *Balancer) Panicking() bool { return b.v.Load().panic }

// Rebuild recomputes the view from the hosts' availability. Hosts call it
// when they change; it is exported for tests.
func (b *Balancer) Rebuild() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hosts[0].owner.Load() != b {
		return // replaced by a reload: nobody picks from b any more
	}
	v := &view{}
	n, avail := 0, 0
	for i, h := range b.hosts {
		if b.weights[i] == 0 {
			continue
		}
		n++
		if h.Available() {
			avail++
			v.idx = append(v.idx, int32(i))
		}
	}
	if avail == 0 || avail*100 < b.opts.PanicThreshold*n {
		v.panic = true
		v.idx = v.idx[:0]
		for i := range b.hosts {
			if b.weights[i] > 0 {
				v.idx = append(v.idx, int32(i))
			}
		}
	}
	for _, i := range v.idx {
		v.total += uint64(b.weights[i])
		v.cum = append(v.cum, v.total)
	}
	if len(v.idx) > aliasMin {
		v.alias = newAliasTable(v.idx, b.weights, v.total)
	}
	switch b.opts.Policy {
	case RoundRobin:
		v.seq = swrrSequence(v.idx, b.weights)
		b.swrr.reset(v.idx, b.weights)
	case Maglev:
		v.table = b.maglev.table(v.idx, b.weights)
	}
	b.v.Store(v)
}

// Pick returns the index of the host for a request. key is the request's
// hash (Maglev); hasKey false means the request has none, and Maglev
// then picks at random by weight. With LeastRequest the pick is counted
// in flight until the caller calls Release on the host.
func (b *Balancer) Pick(key uint64, hasKey bool) int {
	v := b.v.Load()
	if len(v.idx) == 1 {
		i := int(v.idx[0])
		if b.opts.Policy == LeastRequest {
			b.hosts[i].active.Add(1)
		}
		return i
	}
	switch b.opts.Policy {
	case RoundRobin:
		if v.seq != nil {
			n := b.rr.Add(1) - 1
			return int(v.idx[v.seq[n%uint64(len(v.seq))]])
		}
		return b.swrr.next(b.weights)
	case LeastRequest:
		i, j := v.random(), v.random()
		hi, hj := b.hosts[i], b.hosts[j]
		// The draws follow the weights; the comparison is of requests
		// in flight alone (weighing it too would favour heavy endpoints
		// twice). A tie goes to the first draw.
		if hj.active.Load() < hi.active.Load() {
			i, hi = j, hj
		}
		hi.active.Add(1)
		return i
	case Maglev:
		if hasKey {
			return int(v.table[key%uint64(len(v.table))])
		}
	}
	return v.random()
}

// random picks a host of v in proportion to weight.
func (v *view) random() int {
	if v.alias != nil {
		return int(v.idx[v.alias.draw()])
	}
	r := rand.Uint64N(v.total)
	// Linear: clusters have a handful of endpoints, and a scan of a few
	// words beats a binary search's branches.
	for k, c := range v.cum {
		if r < c {
			return int(v.idx[k])
		}
	}
	return int(v.idx[len(v.idx)-1])
}
