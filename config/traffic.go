package config

import (
	"fmt"
	"reflect"
	"time"
)

// DefaultMirrorTimeout is routes[].mirror.timeout.
const DefaultMirrorTimeout = 10 * time.Second

// WeightedCluster is one side of a route's traffic split
// (Route.WeightedClusters).
type WeightedCluster struct {
	// Cluster names the cluster. Required; must exist; listed once.
	Cluster string `yaml:"cluster"`
	// Weight is the side's share, relative to the other sides' weights.
	// Required: 1 to MaxWeight (a side that should get nothing is left
	// out of the list).
	Weight int `yaml:"weight"`
}

// SplitSticky keeps one user on one side of a traffic split: the side is
// chosen by a hash (64-bit FNV-1a, the same in every replica and across
// restarts) of a request field's or cookie's value instead of at random,
// so every request carrying the same value goes to the same cluster while
// the shares across users follow the weights. A request without the field
// or cookie is split at random. Exactly one of Header and Cookie is set.
type SplitSticky struct {
	// Header is the request field whose value is hashed. Default "".
	Header string `yaml:"header"`
	// Cookie is the cookie whose value is hashed. Default "".
	Cookie string `yaml:"cookie"`
}

// Mirror sends a copy of some of a route's requests to a second cluster
// (shadow traffic), fire-and-forget: the shadow's response is read and
// discarded, never cached, and never delays or changes the response the
// app gets. Only requests without a body are mirrored (a request with a
// body is not copied, and is counted as skipped): buffering a body for a
// copy would hold the primary back. Only requests that go upstream
// (cache misses, revalidations) are mirrored; cache hits never reach a
// cluster. The copy is the app's request as received, hop-by-hop fields
// removed, with "-shadow" appended to its Host (as Envoy does), so the
// shadow can tell it is one; it is sent once the primary's response has
// been written to the app, from a goroutine of its own (docs/resilience.md).
type Mirror struct {
	// Cluster receives the copies. Required; must exist.
	Cluster string `yaml:"cluster"`
	// Percent of the route's upstream requests copied, (0, 100]. Default
	// 100.
	Percent float64 `yaml:"percent"`
	// MaxConcurrent bounds the copies in flight at once; a copy over the
	// bound is dropped and counted in
	// zerohop_mirror_requests_total{outcome="dropped"}. Default 64; > 0.
	MaxConcurrent int `yaml:"max_concurrent"`
	// Timeout bounds each copy's whole exchange. Default 10s; > 0.
	Timeout time.Duration `yaml:"timeout"`
}

func (m *Mirror) setDefaults() {
	m.Percent = 100
	m.MaxConcurrent = 64
	m.Timeout = DefaultMirrorTimeout
}

// splitCredentials refuses a split whose sides carry different outbound
// credentials: a route's credential filter and its cache partition are
// its cluster's, decided when the route is built, not per request.
func (v *validator) splitCredentials(c *Config) {
	byName := map[string]*Credentials{}
	for i := range c.Clusters {
		byName[c.Clusters[i].Name] = c.Clusters[i].Credentials
	}
	for i, r := range c.Routes {
		if len(r.WeightedClusters) < 2 {
			continue
		}
		first := byName[r.WeightedClusters[0].Cluster]
		for j, w := range r.WeightedClusters[1:] {
			if !reflect.DeepEqual(byName[w.Cluster], first) {
				v.errorf(fmt.Sprintf("routes[%d].weighted_clusters[%d].cluster", i, j+1),
					"cluster %q has other outbound credentials than %q: the sides of a split must share them (or none); give each its own route",
					w.Cluster, r.WeightedClusters[0].Cluster)
			}
		}
	}
}

// routeTraffic validates a route's split and mirror settings, and its
// retry policy.
func (v *validator) routeTraffic(p string, r *Route, clusters map[string]string) {
	ref := func(path, name string) {
		switch _, ok := clusters[name]; {
		case name == "":
			v.errorf(path, "required: name a cluster")
		case !ok && !v.failedUnder("clusters"):
			v.errorf(path, "unknown cluster %q%s", name, suggestName(name, clusters))
		}
	}
	if len(r.WeightedClusters) > 0 && r.Cluster != "" {
		v.errorf(p+".weighted_clusters", "set either cluster or weighted_clusters, not both")
	}
	seen := map[string]string{}
	for i, w := range r.WeightedClusters {
		wp := fmt.Sprintf("%s.weighted_clusters[%d]", p, i)
		ref(wp+".cluster", w.Cluster)
		if first, dup := seen[w.Cluster]; dup && w.Cluster != "" {
			v.errorf(wp+".cluster", "cluster %q is already a side of this split%s", w.Cluster, v.lineNote(first))
		} else {
			seen[w.Cluster] = wp + ".cluster"
		}
		if w.Weight < 1 || w.Weight > MaxWeight {
			v.errorf(wp+".weight", "must be between 1 and %d, got %d", MaxWeight, w.Weight)
		}
	}
	if s := r.SplitSticky; s != nil {
		switch {
		case len(r.WeightedClusters) == 0:
			v.errorf(p+".split_sticky", "needs weighted_clusters")
		case (s.Header == "") == (s.Cookie == ""):
			v.errorf(p+".split_sticky", "set exactly one of header and cookie")
		case s.Header != "" && !isToken(s.Header):
			v.errorf(p+".split_sticky.header", "invalid field name %q", clip(s.Header))
		case s.Cookie != "" && !isToken(s.Cookie):
			v.errorf(p+".split_sticky.cookie", "invalid cookie name %q", clip(s.Cookie))
		}
	}
	if m := r.Mirror; m != nil {
		ref(p+".mirror.cluster", m.Cluster)
		if !(m.Percent > 0 && m.Percent <= 100) {
			v.errorf(p+".mirror.percent", "must be more than 0 and at most 100, got %v", m.Percent)
		}
		if m.MaxConcurrent <= 0 {
			v.errorf(p+".mirror.max_concurrent", "must be positive, got %d", m.MaxConcurrent)
		}
		v.positive(p+".mirror.timeout", m.Timeout)
	}
	if r.Retries != nil {
		v.retryPolicy(p+".retries", r.Retries)
	}
}
