package config

import (
	"fmt"
	"strings"
)

// CacheKey adds to and normalises a route's cache key (docs/format.md,
// "Canonical key"). Default nil = the key is the request's method, scheme,
// host and target as sent, and the response's Vary.
type CacheKey struct {
	// Headers are request header fields that select a stored response as
	// if every response of the route listed them in Vary: requests that
	// differ in them get different entries. The app's client computes the
	// same key without knowing the route (the names are in the entry's
	// vary block). Default empty.
	Headers []string `yaml:"headers"`
	// Query normalises the query part of the key. Default nil = the query
	// exactly as sent.
	Query *QueryKey `yaml:"query,omitempty"`
}

// QueryKey says which query parameters a route's cache key keeps, and in
// what order. The upstream still gets the query as the app sent it.
// Parameter names are compared percent-decoded, case-sensitively; kept
// parameters stay byte for byte as sent.
type QueryKey struct {
	// Keep lists the only parameters that are part of the key; the others
	// are dropped. Default empty = keep all. Excludes Drop.
	Keep []string `yaml:"keep"`
	// Drop lists parameters that are not part of the key (tracking
	// parameters such as utm_source). Default empty.
	Drop []string `yaml:"drop"`
	// Sort orders the kept parameters (bytewise, stable), so that "?b=2&a=1"
	// and "?a=1&b=2" share an entry. Default false.
	Sort bool `yaml:"sort"`
}

func (v *validator) cacheKey(p string, k *CacheKey) {
	if k == nil {
		return
	}
	v.headerNames(p+".headers", k.Headers)
	for i, h := range k.Headers {
		if strings.EqualFold(h, "Host") || strings.EqualFold(h, "Cache-Control") || strings.EqualFold(h, "Pragma") {
			v.errorf(fmt.Sprintf("%s.headers[%d]", p, i), "%q cannot be a key part (the key has the host; cache directives are not selecting fields)", h)
		}
	}
	q := k.Query
	if q == nil {
		return
	}
	if len(q.Keep) > 0 && len(q.Drop) > 0 {
		v.errorf(v.first(p+".query.drop", p+".query.keep"), "set keep or drop, not both")
	}
	for _, l := range []struct {
		key   string
		names []string
	}{{"keep", q.Keep}, {"drop", q.Drop}} {
		seen := map[string]bool{}
		for i, n := range l.names {
			switch {
			case n == "":
				v.errorf(fmt.Sprintf("%s.query.%s[%d]", p, l.key, i), "empty parameter name")
			case seen[n]:
				v.errorf(fmt.Sprintf("%s.query.%s[%d]", p, l.key, i), "parameter %q is listed twice", n)
			}
			seen[n] = true
		}
	}
	if len(q.Keep) == 0 && len(q.Drop) == 0 && !q.Sort {
		v.errorf(p+".query", "set keep, drop or sort")
	}
}
