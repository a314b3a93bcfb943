package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/zerohop/zerohop/config"
)

// split is a compiled routes[].weighted_clusters: the sides with their
// cumulative weights, and what makes the choice sticky.
type split struct {
	sides  []splitSide
	total  uint64
	header string // canonical; "" = not sticky by header
	cookie string // "" = not sticky by cookie
}

type splitSide struct {
	c    *cluster
	upto uint64 // cumulative weight, exclusive upper bound
}

// compileTraffic builds r's split, mirror and retry policy. A split
// route's cluster is its first side, so that code reading route.cluster
// (the default) still finds one.
func (r *route) compileTraffic(rc config.Route, clusters map[string]*cluster) error {
	if len(rc.WeightedClusters) > 0 {
		s := &split{}
		for _, w := range rc.WeightedClusters {
			c := clusters[w.Cluster]
			if c == nil {
				return fmt.Errorf("proxy: route %q: unknown cluster %q", rc.Name, w.Cluster)
			}
			if w.Weight <= 0 {
				return fmt.Errorf("proxy: route %q: cluster %q: weight %d", rc.Name, w.Cluster, w.Weight)
			}
			s.total += uint64(w.Weight)
			s.sides = append(s.sides, splitSide{c: c, upto: s.total})
		}
		if st := rc.SplitSticky; st != nil {
			s.header, s.cookie = http.CanonicalHeaderKey(st.Header), st.Cookie
		}
		r.split, r.cluster = s, s.sides[0].c
	}
	if m := rc.Mirror; m != nil {
		c := clusters[m.Cluster]
		if c == nil {
			return fmt.Errorf("proxy: route %q: mirror: unknown cluster %q", rc.Name, m.Cluster)
		}
		r.mirror = newMirror(c, m)
	}
	if rc.Retries != nil {
		r.retry = compileRetry(rc.Retries)
	}
	return nil
}

// clusterFor is the cluster a request of r goes to: the route's, or a
// side of its split.
func (r *route) clusterFor(h http.Header) *cluster {
	if r.split == nil {
		return r.cluster
	}
	return r.split.pick(h)
}

// pick chooses a side: by the hash of the sticky value when the request
// has one, else at random, in proportion to the weights.
func (s *split) pick(h http.Header) *cluster {
	var n uint64
	if v, ok := s.stickyValue(h); ok {
		n = fnv1a(v) % s.total
	} else {
		n = rand.Uint64N(s.total)
	}
	return s.side(n)
}

// side is the side whose share holds n, in [0, total).
func (s *split) side(n uint64) *cluster {
	for i := range s.sides {
		if n < s.sides[i].upto {
			return s.sides[i].c
		}
	}
	return s.sides[len(s.sides)-1].c
}

func (s *split) stickyValue(h http.Header) (string, bool) {
	switch {
	case s.header != "":
		if vv := h[s.header]; len(vv) > 0 && vv[0] != "" {
			return vv[0], true
		}
	case s.cookie != "":
		for _, line := range h["Cookie"] {
			if v, ok := cookieValue(line, s.cookie); ok && v != "" {
				return v, true
			}
		}
	}
	return "", false
}

// fnv1a is 64-bit FNV-1a: fixed, so a value picks the same side in every
// replica and after a restart.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
