package balance

import "sync"

// maxSequence bounds the precomputed round-robin sequence: one entry per
// unit of weight (after dividing by the weights' common divisor). Beyond
// it, round robin runs nginx's algorithm step by step under a mutex.
const maxSequence = 1 << 16

// swrrSequence is one period of nginx's smooth weighted round robin over
// idx, as indices into idx, or nil if the period is longer than
// maxSequence. Picking then is one atomic add, whatever the number of
// endpoints.
func swrrSequence(idx []int32, weights []int) []int32 {
	g := 0
	for _, i := range idx {
		g = gcd(g, weights[i])
	}
	total := 0
	for _, i := range idx {
		total += weights[i] / g
		if total > maxSequence {
			return nil
		}
	}
	seq := make([]int32, total)
	cur := make([]int, len(idx))
	for n := range seq {
		best := 0
		for k, i := range idx {
			cur[k] += weights[i] / g
			if cur[k] > cur[best] {
				best = k
			}
		}
		cur[best] -= total
		seq[n] = int32(best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// swrrState is nginx's algorithm run live, for periods too long to
// precompute.
type swrrState struct {
	mu    sync.Mutex
	idx   []int32
	cur   []int
	total int
}

func (s *swrrState) reset(idx []int32, weights []int) {
	s.mu.Lock()
	s.idx = idx
	s.cur = make([]int, len(idx))
	s.total = 0
	for _, i := range idx {
		s.total += weights[i]
	}
	s.mu.Unlock()
}

func (s *swrrState) next(weights []int) int {
	s.mu.Lock()
	best := 0
	for k, i := range s.idx {
		s.cur[k] += weights[i]
		if s.cur[k] > s.cur[best] {
			best = k
		}
	}
	s.cur[best] -= s.total
	i := s.idx[best]
	s.mu.Unlock()
	return int(i)
}
