// Purging from the proxy: what an unsafe request invalidates (RFC 9111
// §4.4) and invalidateURL. The purge model itself lives with the cache
// (shm, store, invalidate).

package proxy

import (
	"net/http"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/proxy/httpcache"
)

// invalidateAfterUnsafe removes what an unsafe request may have changed
// (RFC 9111 §4.4): the target URI and same-origin Location and
// Content-Location, on a non-error response.
func (p *Proxy) invalidateAfterUnsafe(x *exchange, resp *http.Response) {
	if p.cache == nil || resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return
	}
	for _, u := range httpcache.InvalidationURIs(x.in, resp.StatusCode, resp.Header) {
		t, scheme := u.RequestURI(), routeKeyScheme(x.route, u.Scheme) // same origin: x's partition
		p.invalidateURL(scheme, u.Host, t)
		if kt := x.route.keyTarget(t); kt != t { // the entry a route's key.query made of it
			p.invalidateURL(scheme, u.Host, kt)
		}
	}
}

// invalidateURL removes the stored responses for a URL, every Vary variant
// included: a key purge, as an invalidation-log record makes, through the
// cache's invalidate.Purger (a store.Tier reaches both tiers in order). It
// reports whether anything was removed from shared memory.
func (p *Proxy) invalidateURL(scheme, host, target string) bool {
	if p.cache == nil {
		return false
	}
	to, ok := p.ops.(invalidate.Purger)
	if !ok {
		to = invalidate.NewShmPurger(p.cache)
	}
	n, err := to.Purge(invalidate.KeyPurge(scheme, host, target, invalidate.Hard))
	if err != nil {
		p.log.Debug("invalidation after an unsafe method refused", "scheme", scheme, "host", host, "err", err)
	}
	return n > 0
}
