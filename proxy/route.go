package proxy

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/zerohop/zerohop/config"
)

// route is a compiled config.Route.
type route struct {
	name    string
	cluster *cluster
	cfg     config.Route

	host       string // lower-case exact host, or suffix ".example.com" for "*.example.com"
	wildcard   bool
	pathPrefix string
	pathExact  string
	methods    []string
	headers    [][2]string // canonical name, exact value
	conds      routeConds  // path_regex, header_rules, query (routematch.go)

	cache       bool
	bypass      []string // canonical header names
	ttlOverride int64    // ms; 0 = none

	filters chain      // built here, once per configuration (filter.go)
	conc    *concLimit // concurrency caps; nil = none (concurrency.go)

	split   *split       // weighted_clusters (split.go); nil: cluster
	mirror  *mirror      // shadow traffic (mirror.go); nil: none
	retry   *retryPolicy // replaces the cluster's (retry.go); nil: the cluster's
	rewrite *pathRewrite // upstream path and Host (routeaction.go); nil = none
	pol     cachePolicy  // key parts, default_ttl (cachepolicy.go)
}

func compileRoute(rc config.Route, clusters map[string]*cluster, limits chain) (*route, error) {
	r := &route{name: rc.Name, cluster: clusters[rc.Cluster], cfg: rc, cache: true}
	h := strings.ToLower(rc.Match.Host)
	if strings.HasPrefix(h, "*.") {
		r.wildcard, r.host = true, h[1:]
	} else {
		r.host = h
	}
	r.pathPrefix, r.pathExact = rc.Match.PathPrefix, rc.Match.PathExact
	r.methods = rc.Match.Methods
	for k, v := range rc.Match.Headers {
		r.headers = append(r.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	r.compileConds(rc.Match)
	if rc.Cache != nil {
		r.cache = rc.Cache.Enabled
		for _, b := range rc.Cache.Bypass {
			r.bypass = append(r.bypass, http.CanonicalHeaderKey(b))
		}
		r.ttlOverride = rc.Cache.TTLOverride.Milliseconds()
	}
	r.pol = compileCachePolicy(rc.Cache)
	// The route's filter chain, in the order docs/architecture.md gives.
	if len(rc.ResponseHeaders) > 0 {
		r.filters = append(r.filters, newSetFieldsFilter(rc.ResponseHeaders))
	}
	if err := r.compileTraffic(rc, clusters); err != nil {
		return r, err
	}
	r.filters = append(r.filters, credentialFilters(r.cluster)...)
	// The route's rate limits, then its header ops and, last, its own
	// answer (direct_response, redirect): limits hold for those too.
	r.filters = append(r.filters, limits...)
	r.filters = appendRouteFilters(r.filters, rc)
	r.rewrite = compileRewrite(rc)
	return r, nil
}

// routeFor returns the first route of st, in configuration order, that
// the request matches (host lower-cased, without port; path as received,
// percent-decoded; query raw), or nil. Both entry paths route with it.
func (st *state) routeFor(method string, f routeFields, host, path, query string) *route {
	return st.index.find(method, f, host, path, query)
}

// cachesFor reports whether a GET or HEAD routed to rt (nil: forward
// mode without a route) may use the cache, and if not because of a
// bypass field, the Cache-Status detail. Both entry paths decide with it.
func (p *Proxy) cachesFor(rt *route, f routeFields) (ok bool, detail string) {
	if !p.caching() {
		return false, ""
	}
	if rt == nil {
		return true, ""
	}
	if !rt.cache {
		return false, ""
	}
	for _, b := range rt.bypass {
		if f.FieldSet(b) {
			return false, "route-bypass"
		}
	}
	return true, ""
}

// caching reports whether the proxy has a cache to serve from and fill.
func (p *Proxy) caching() bool { return p.cache != nil && p.ops != nil }

// routeFields is a request's header, as the route conditions read it:
// the net/http request's (requestFields) or the fast path's parsed head.
type routeFields interface {
	FieldIs(name, value string) bool
	// FieldSet reports whether the field's first value is not empty.
	FieldSet(name string) bool
	// FieldValue returns the field's first value, or "".
	FieldValue(name string) string
}

type requestFields http.Header

func (f requestFields) FieldIs(name, value string) bool { return http.Header(f).Get(name) == value }
func (f requestFields) FieldSet(name string) bool       { return http.Header(f).Get(name) != "" }

// match reports whether a request (host already lower-cased, no port)
// satisfies every condition of the route.
func (r *route) match(method string, fields routeFields, host, path, query string) bool {
	if r.host != "" {
		if r.wildcard {
			if !strings.HasSuffix(host, r.host) || len(host) == len(r.host) {
				return false
			}
		} else if host != r.host {
			return false
		}
	}
	if r.pathExact != "" && path != r.pathExact {
		return false
	}
	if r.pathPrefix != "" && !strings.HasPrefix(path, r.pathPrefix) {
		return false
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	for _, h := range r.headers {
		if !fields.FieldIs(h[0], h[1]) {
			return false
		}
	}
	return r.matchConds(fields, path, query)
}

// hostOnly lower-cases a Host value and strips its port.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
