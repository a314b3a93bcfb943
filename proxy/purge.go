// Purging from the proxy: what an unsafe request invalidates (RFC 9111
// §4.4) and InvalidateURL. The purge model itself lives with the cache
// (shm, store, invalidate).

package proxy

import (
	"net/http"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/shm"
)

// invalidateAfterUnsafe removes what an unsafe request may have changed
// (RFC 9111 §4.4): the target URI and same-origin Location and
// Content-Location, on a non-error response.
func (p *Proxy) invalidateAfterUnsafe(x *exchange, resp *http.Response) {
	if p.cache == nil || resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return
	}
	for _, u := range httpcache.InvalidationURIs(x.in, resp.StatusCode, resp.Header) {
		p.InvalidateURL(u.Scheme, u.Host, u.RequestURI())
	}
}

// InvalidateURL removes the stored responses for a URL, every Vary variant
// included. It reports whether anything was removed.
func (p *Proxy) InvalidateURL(scheme, host, target string) bool {
	if p.cache == nil {
		return false
	}
	key := shm.AppendKey(nil, http.MethodGet, scheme, host, target)
	n := 0
	if p.ops.Delete(key) {
		n++
	}
	n += p.ops.PurgeTag(shm.VariantTag(key), false)
	return n > 0
}
