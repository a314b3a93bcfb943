// The cache lookup (RFC 9111 §4): finding the stored response a request
// selects, deciding whether it may be served, coalescing misses, and
// writing a stored response.

package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/flight"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
	"github.com/zerohop/zerohop/shm"
)

// varyIndexLife is how long a vary index entry stays fresh. It only names
// the request headers a URL's responses vary on; the variants carry their
// own freshness.
const varyIndexLife = 365 * 24 * time.Hour

// serveCached answers a GET or HEAD through the cache (RFC 9111 §4).
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, x *exchange) {
	t0 := x.since()
	x.reqDir = httpcache.ParseRequestCacheControl(r.Header)
	e, fwd := p.lookupStored(x)
	now := p.opts.Now()
	var he *httpcache.Entry
	if e != nil {
		h := toHTTPEntry(e)
		he = &h
	}
	decision := httpcache.Decide(x.reqDir, he, now)
	x.tl.Mark(timeline.Cache, t0, now.Sub(x.start))
	switch decision {
	case httpcache.ServeFresh:
		x.status.Hit = true
		p.serveEntry(w, r, x, e, "")
		return
	case httpcache.ServeStale:
		x.status.Hit = true
		p.serveEntry(w, r, x, e, "max-stale")
		return
	case httpcache.ServeStaleRevalidate:
		x.status.Hit = true
		// The refresh starts before the stale answer goes out: once a
		// client has its answer, its refresh must already hold the
		// flight, or a refresh that ended meanwhile is followed by a
		// second one.
		p.refreshInBackground(x, e)
		p.serveEntry(w, r, x, e, "stale-while-revalidate")
		return
	case httpcache.GatewayTimeout:
		x.status.Fwd, x.status.Detail = fwdOr(fwd, httpcache.FwdMiss), "only-if-cached"
		p.fail(w, x, http.StatusGatewayTimeout, "only-if-cached and nothing usable is stored")
		return
	case httpcache.Revalidate:
		x.stored, x.storedHdr = e, headerOf(e)
		x.revalidating = hasValidators(x.storedHdr)
		x.status.Fwd = httpcache.FwdStale
		if x.reqDir.NoCache || x.reqDir.MaxAge.Present || x.reqDir.MinFresh.Present {
			x.status.Fwd = httpcache.FwdRequest
		}
		p.serveUpstream(w, p.upstreamRequest(x, r), x)
		return
	}
	// Miss: concurrent misses for one URL make one upstream request; the
	// others wait for it (bounded) and then look again (RFC 9111 §4 allows
	// collapsing; nginx proxy_cache_lock, Varnish waiting list).
	x.status.Fwd = fwdOr(fwd, httpcache.FwdMiss)
	if x.st.coalesce > 0 && r.Method == http.MethodGet {
		f, leader := p.flights.Join(x.primary, &x.flight)
		if leader {
			defer p.flights.Finish(f)
		} else if p.waitAndServe(w, r, x, f) {
			return
		}
	}
	p.serveUpstream(w, p.upstreamRequest(x, r), x)
}

// waitAndServe waits for an in-flight fetch of the same URL and serves what
// it stored. It returns false when the caller must go upstream itself.
func (p *Proxy) waitAndServe(w http.ResponseWriter, r *http.Request, x *exchange, f *flight.Call) bool {
	p.m.coalesced.Inc()
	t := time.NewTimer(x.st.coalesce)
	defer t.Stop()
	t0 := x.since()
	select {
	case <-f.Wait():
		x.markFrom(timeline.Coalesce, t0)
	case <-t.C:
		x.markFrom(timeline.Coalesce, t0)
		x.status.Detail = "coalesce-timeout"
		return false
	case <-r.Context().Done():
		x.markFrom(timeline.Coalesce, t0)
		return true
	}
	e, _ := p.lookupStored(x)
	if e == nil {
		return false
	}
	he := toHTTPEntry(e)
	if httpcache.Decide(x.reqDir, &he, p.opts.Now()) != httpcache.ServeFresh {
		return false
	}
	x.status = httpcache.CacheStatus{Hit: true}
	p.serveEntry(w, r, x, e, "collapsed")
	return true
}

func fwdOr(f, def httpcache.Fwd) httpcache.Fwd {
	if f != "" {
		return f
	}
	return def
}

// lookupStored finds the stored response selected by x's request: the
// entry under the primary key, or, when that is a vary index, the variant
// under the key built from the request's selecting header fields (RFC 9111
// §4.1). It returns nil and the Cache-Status fwd reason on a miss.
func (p *Proxy) lookupStored(x *exchange) (*shm.Entry, httpcache.Fwd) {
	if x.primary == nil {
		x.primary = x.keyArr[:0]
	}
	x.primary = shm.AppendKey(x.primary[:0], http.MethodGet, x.keyScheme(), x.host, x.route.keyTarget(x.target))
	if x.buf == nil {
		x.buf = p.bufs.Get().(*[]byte)
	}
	e, out, ok := p.ops.GetStale(*x.buf, x.primary)
	*x.buf = out
	if !ok {
		return nil, httpcache.FwdURIMiss // without moving e to the heap
	}
	if e.Flags&shm.FlagVaryIndex == 0 {
		x.primaryIsIdx, x.primaryVary = false, nil
		found := new(shm.Entry)
		*found = e
		return found, ""
	}
	// The variant is copied into the same buffer: keep the names.
	x.primaryIsIdx, x.primaryVary = true, bytes.Clone(e.Vary)
	key := shm.AppendVaryFromHeader(bytes.Clone(x.primary), x.primaryVary, x.in.Header.Values)
	v, out, ok := p.ops.GetStale(*x.buf, key)
	*x.buf = out
	if !ok {
		return nil, httpcache.FwdVaryMiss
	}
	return &v, ""
}

// releaseBuf returns the exchange's lookup buffer, once nothing refers to
// the entries copied into it.
func (p *Proxy) releaseBuf(x *exchange) {
	if x.buf != nil {
		p.bufs.Put(x.buf)
		x.buf = nil
	}
}

// toHTTPEntry turns an entry's stored metadata back into the policy view.
func toHTTPEntry(e *shm.Entry) httpcache.Entry {
	lifetime := time.Duration(e.ExpiresMs-e.StoredMs)*time.Millisecond + time.Duration(e.InitialAge)*time.Second
	if e.ExpiresMs <= 0 {
		// Soft-purged (shm MarkStale, PurgeTag soft): stale since it was
		// received, so that stale-while-revalidate still applies.
		lifetime = 0
	}
	return httpcache.Entry{
		ResponseTime:         time.UnixMilli(e.StoredMs),
		CorrectedInitialAge:  time.Duration(e.InitialAge) * time.Second,
		Lifetime:             lifetime,
		StaleWhileRevalidate: time.Duration(e.SWR) * time.Second,
		StaleIfError:         time.Duration(e.SIE) * time.Second,
		MustRevalidate:       e.Flags&shm.FlagMustRevalidate != 0,
		NoCache:              e.Flags&shm.FlagNoCache != 0,
	}
}

func headerOf(e *shm.Entry) http.Header {
	h := make(http.Header, 8)
	for it := shm.NewHeaderIter(e.Headers); it.Next(); {
		name := internName(it.Name())
		h[name] = append(h[name], string(it.Value()))
	}
	return h
}

// commonNames interns the field names most stored responses carry, so that
// serving a hit does not allocate them.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"Accept-Ranges", "Cache-Control", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Type", "Date", "Etag", "Expires", "Last-Modified",
		"Link", "Server", "Surrogate-Key", "Cache-Tag", "Vary", "Via", "X-Content-Type-Options", "Access-Control-Allow-Origin"} {
		m[n] = n
	}
	return m
}()

func internName(b []byte) string {
	if s, ok := commonNames[string(b)]; ok {
		return s
	}
	return string(b)
}

func hasValidators(h http.Header) bool { return h.Get("Etag") != "" || h.Get("Last-Modified") != "" }

// serveEntry writes a stored response, with Age (RFC 9111 §4.2.3) and
// Cache-Status, answering the app's own conditional request with 304 and
// its Range with 206 or 416 (RFC 9110 §13.2.2 orders them so).
func (p *Proxy) serveEntry(w http.ResponseWriter, r *http.Request, x *exchange, e *shm.Entry, detail string) {
	now := p.opts.Now()
	he := toHTTPEntry(e)
	code := e.Status
	h := w.Header()
	if r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == "" {
		// The common case: copy the stored fields straight into the
		// response, without an intermediate map.
		for it := shm.NewHeaderIter(e.Headers); it.Next(); {
			name := internName(it.Name())
			h[name] = append(h[name], string(it.Value()))
		}
	} else {
		stored := headerOf(e)
		out := stored
		if httpcache.NotModified(r, e.Status, stored, he.ResponseTime) {
			out, code = httpcache.NotModifiedHeader(stored), http.StatusNotModified
		}
		for k, v := range out {
			h[k] = v
		}
	}
	body := e.Body
	if code == http.StatusOK {
		// Stored bodies are complete: any range of them can be served.
		acceptRanges(h)
		if len(r.Header["Range"]) > 0 {
			code, body = answerRange(r, h, body)
		}
	}
	h.Set("Age", httpcache.FormatAge(he.Age(now)))
	x.status.TTL, x.status.HasTTL = he.TTL(now), true
	if detail != "" {
		x.status.Detail = detail
	}
	httpcache.AppendCacheStatus(h, x.status)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
