package proxy

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/httpcache"
)

// Per-route cache policy beyond enabled, bypass and ttl_override:
// default_ttl, and the key's extra parts (docs/format.md, "Canonical key").
//
//   - key.headers are added to the names of every vary block stored for the
//     route, as if each response listed them in Vary. Every reader (the
//     sidecar's two paths, the app's clients) builds a secondary key from
//     the block it finds under the primary key, so they all select by these
//     fields without knowing the route.
//   - key.query normalises the target of the primary key. A client builds
//     the key from the target as sent: for a target the route would change
//     its lookup misses, and the request goes to the sidecar, which
//     normalises and hits. For a target already normal (normalising is
//     idempotent) both build the same key, so a client never serves an
//     entry the sidecar would not.
//
// Targeted cache control (RFC 9213, httpcache.SelectTargeted) is global:
// cache.targeted_fields.

// cachePolicy is a route's compiled key parts and default TTL.
type cachePolicy struct {
	keyHeaders []string // lower-case, sorted, distinct
	query      *config.QueryKey
	defaultTTL time.Duration
}

func compileCachePolicy(rc *config.RouteCache) cachePolicy {
	var cp cachePolicy
	if rc == nil {
		return cp
	}
	cp.defaultTTL = rc.DefaultTTL
	if k := rc.Key; k != nil {
		for _, h := range k.Headers {
			cp.keyHeaders = append(cp.keyHeaders, strings.ToLower(h))
		}
		slices.Sort(cp.keyHeaders)
		cp.keyHeaders = slices.Compact(cp.keyHeaders)
		cp.query = k.Query
	}
	return cp
}

// keyTarget is the target that goes into rt's primary keys for target.
func (rt *route) keyTarget(target string) string {
	if rt == nil || rt.pol.query == nil {
		return target
	}
	return normalizeQuery(target, rt.pol.query)
}

// normalizeQuery applies a query key policy to a target (path and query).
// Kept parameters stay byte for byte as sent; a query left empty goes with
// its '?'. It is idempotent: normalising a normal target gives it back.
func normalizeQuery(target string, q *config.QueryKey) string {
	path, query, ok := strings.Cut(target, "?")
	if !ok {
		return target
	}
	var keep []string
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" {
			continue
		}
		name, _, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(name, "%+") {
			name = string(unescapeQuery(nil, name))
		}
		switch {
		case len(q.Keep) > 0 && !slices.Contains(q.Keep, name):
			continue
		case slices.Contains(q.Drop, name):
			continue
		}
		keep = append(keep, pair)
	}
	if q.Sort {
		slices.SortStableFunc(keep, strings.Compare)
	}
	if len(keep) == 0 {
		return path
	}
	return path + "?" + strings.Join(keep, "&")
}

// keyNames merges rt's key headers into the names of a response's Vary
// (lower-case, sorted, distinct; either may be empty).
func (rt *route) keyNames(vary []string) []string {
	if rt == nil || len(rt.pol.keyHeaders) == 0 {
		return vary
	}
	names := append(slices.Clone(vary), rt.pol.keyHeaders...)
	slices.Sort(names)
	return slices.Compact(names)
}

// defaultTTL is the lifetime given to a response of x without explicit
// freshness: the route's default_ttl, else cache.default_ttl; 0 = none.
func (x *exchange) defaultTTL() time.Duration {
	if x.route != nil && x.route.pol.defaultTTL > 0 {
		return x.route.pol.defaultTTL
	}
	return x.st.cfg.Cache.DefaultTTL
}

// targetResponse applies targeted cache control to an upstream response
// before anything reads it: it picks the targeted field x's decisions use,
// if any, and removes every targeted field, so that neither the app nor
// the cache (and so no hit) ever sees one.
func (x *exchange) targetResponse(h http.Header) {
	x.targeted = ""
	if len(x.st.targeted) == 0 {
		return
	}
	if v, ok := httpcache.SelectTargeted(h, x.st.targeted); ok {
		x.targeted = v
	}
	for _, n := range x.st.targeted {
		delete(h, n)
	}
}

// policy is the header the cache's storing and freshness decisions read
// for a response of x with header h: h itself, or with the targeted
// field's directives in place of Cache-Control and Expires.
func (x *exchange) policy(h http.Header) http.Header {
	if x.targeted == "" {
		return h
	}
	return httpcache.TargetedPolicy(h, x.targeted)
}

func canonicalNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}
