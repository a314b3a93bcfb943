package proxy

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/shm"
)

// varyIndexLife is how long a vary index entry stays fresh. It only names
// the request headers a URL's responses vary on; the variants carry their
// own freshness.
const varyIndexLife = 365 * 24 * time.Hour

// serveCached answers a GET or HEAD through the cache (RFC 9111 §4).
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.reqDir = httpcache.ParseRequestCacheControl(r.Header)
	e, fwd := p.lookupStored(x)
	now := p.opts.Now()
	var he *httpcache.Entry
	if e != nil {
		h := toHTTPEntry(e)
		he = &h
	}
	switch httpcache.Decide(x.reqDir, he, now) {
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
		f, leader := p.flights.join(x.primary, &x.flight)
		if leader {
			defer p.flights.finish(f)
		} else if p.waitAndServe(w, r, x, f) {
			return
		}
	}
	p.serveUpstream(w, p.upstreamRequest(x, r), x)
}

// waitAndServe waits for an in-flight fetch of the same URL and serves what
// it stored. It returns false when the caller must go upstream itself.
func (p *Proxy) waitAndServe(w http.ResponseWriter, r *http.Request, x *exchange, f *flight) bool {
	p.m.coalesced.Inc()
	t := time.NewTimer(x.st.coalesce)
	defer t.Stop()
	select {
	case <-f.wait:
	case <-t.C:
		x.status.Detail = "coalesce-timeout"
		return false
	case <-r.Context().Done():
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
	x.primary = shm.AppendKey(x.primary[:0], http.MethodGet, x.scheme, x.host, x.target)
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

// revalidated handles the upstream's answer to our conditional request
// (RFC 9111 §4.3.3). It reports true when it has rewritten resp itself.
//
// A 304 updates the stored responses it selects (§4.3.4, see
// selectForUpdate): the one revalidated, whose body then answers the
// request, and the other stored variants of the URL that share its strong
// validator. A 304 whose validators contradict the revalidated response
// cannot be used for it (MUST NOT update): the request is repeated
// unconditionally (refetch). This holds for a HEAD as for a GET: the
// stored GET response is updated either way.
func (p *Proxy) revalidated(x *exchange, resp *http.Response) bool {
	switch {
	case resp.StatusCode == http.StatusNotModified:
		resp.Body.Close()
		e := x.stored
		self, others := p.selectForUpdate(x, resp.Header)
		if !self {
			return p.refetch(x, resp)
		}
		merged := freshenStored(e, x.storedHdr, resp.Header, x.respTime)
		// The 304 may change what may be stored (§4.3.4): re-check.
		if p.storableUpdate(x, e.Status, merged) {
			p.store(x, e.Status, merged.Clone(), e.Body, string(e.ETag))
			x.status.Stored = true
		}
		for _, o := range others {
			p.updateVariant(x, o, resp.Header)
		}
		x.storedHdr = merged
		p.replaceWithBody(x, resp, e.Status, merged, e.Body, "")
		return true
	case httpcache.IsUpstreamError(resp.StatusCode) && p.staleOnError(x):
		resp.Body.Close()
		p.replaceWithStored(x, resp, "stale-if-error")
		return true
	}
	return false // a full response: stored like any other
}

// freshenStored is the header h of stored response e updated with the
// header of a 304 or of a 200 to HEAD, upd (RFC 9111 §3.2). A
// representation the proxy encoded keeps its own ETag; the upstream's
// answer carries the upstream's (see compress).
func freshenStored(e *shm.Entry, h, upd http.Header, respTime time.Time) http.Header {
	merged := httpcache.Freshen(h, upd, respTime)
	if et := h.Get("Etag"); et != "" && et != string(e.ETag) {
		merged.Set("Etag", et)
	}
	return merged
}

// storableUpdate reports whether a stored response with status, updated to
// header h by x's upstream answer, may still be stored (RFC 9111 §4.3.4:
// the update may add no-store, private...). x may be a HEAD: what is
// stored is the response to the GET it was answered from.
func (p *Proxy) storableUpdate(x *exchange, status int, h http.Header) bool {
	req := x.in
	if req.Method != http.MethodGet {
		req = req.WithContext(req.Context())
		req.Method = http.MethodGet
	}
	ok, _ := httpcache.Storable(req, &http.Response{StatusCode: status, Header: h, Request: req}, x.st.storeOpts)
	return ok
}

// validatorView is the header of stored response e (header h) as the
// upstream knows it: with the upstream's ETag when the proxy encoded the
// representation and gave it its own (see compress).
func validatorView(e *shm.Entry, h http.Header) http.Header {
	if up := string(e.ETag); up != "" && up != h.Get("Etag") {
		h = h.Clone()
		h.Set("Etag", up)
	}
	return h
}

// encodedByProxy reports whether stored response e (header h) is a
// representation the proxy content-coded itself.
func encodedByProxy(e *shm.Entry, h http.Header) bool {
	return len(e.ETag) > 0 && string(e.ETag) != h.Get("Etag")
}

// taggedKeyLister is implemented by a Cache that can list the keys of the
// entries carrying a tag. The proxy uses it to find the other Vary
// variants of a URL, which carry shm.VariantTag(primary key): a vary index
// names the request fields a URL varies on, not the values its variants
// were stored for, so variants cannot be found by key.
type taggedKeyLister interface {
	TaggedKeys(tag string) [][]byte
}

// maxVariantUpdates bounds the variants one 304 updates.
const maxVariantUpdates = 32

// selectForUpdate picks the stored responses a 304 with header nm updates
// (RFC 9111 §4.3.4): self reports whether the revalidated one, x.stored,
// is selected; others are the other stored variants of the URL selected.
//
// The candidates are x.stored first (the validators sent were its own),
// then the URL's other variants, most recent first, when the Cache can
// list them (taggedKeyLister); otherwise only x.stored. Selection is
// httpcache.SelectForUpdate: every candidate with the 304's strong
// validator (ETag, else a strong Last-Modified), else the most recent one
// matching a weak validator. One deliberate addition: a 304 carrying no
// validator at all selects x.stored alone, as the answer to a conditional
// request about x.stored only (§4.3.4's rule for a single stored response
// without validators, applied to the one response the request was about);
// origins often send such bare 304s.
func (p *Proxy) selectForUpdate(x *exchange, nm http.Header) (self bool, others []*shm.Entry) {
	if !hasValidators(nm) {
		return true, nil
	}
	cands := []http.Header{validatorView(x.stored, x.storedHdr)}
	vars := p.otherVariants(x)
	for _, v := range vars {
		cands = append(cands, validatorView(v, headerOf(v)))
	}
	for _, i := range httpcache.SelectForUpdate(nm, cands) {
		if i == 0 {
			self = true
		} else {
			others = append(others, vars[i-1])
		}
	}
	return self, others
}

// otherVariants returns the stored variants of x's URL other than
// x.stored, most recent first, when the Cache can list them.
func (p *Proxy) otherVariants(x *exchange) []*shm.Entry {
	tl, ok := p.ops.(taggedKeyLister)
	if !ok || !x.primaryIsIdx {
		return nil
	}
	var out []*shm.Entry
	for _, k := range tl.TaggedKeys(shm.VariantTag(x.primary)) {
		if len(out) == maxVariantUpdates {
			break
		}
		if bytes.Equal(k, x.stored.Key) || !bytes.HasPrefix(k, x.primary) {
			continue // itself, or another URL whose tag collides
		}
		e, _, ok := p.ops.GetStale(nil, k)
		if !ok || e.Flags&shm.FlagVaryIndex != 0 {
			continue
		}
		out = append(out, &e)
	}
	slices.SortStableFunc(out, func(a, b *shm.Entry) int { return cmp.Compare(b.StoredMs, a.StoredMs) })
	return out
}

// updateVariant freshens o, another stored variant of x's URL, with the
// header of the 304 nm. A variant the update makes unstorable, or whose
// Vary the 304 changes, is left as it was: stale, it will be revalidated
// on its own.
func (p *Proxy) updateVariant(x *exchange, o *shm.Entry, nm http.Header) {
	merged := freshenStored(o, headerOf(o), nm, x.respTime)
	if !p.storableUpdate(x, o.Status, merged) {
		return
	}
	it, names, ok := p.newItem(x, o.Status, merged, o.Body, string(o.ETag))
	if !ok || len(names) == 0 || !sameNames(o.Vary, names) {
		return
	}
	it.Key, it.Vary = o.Key, names
	it.Tags = append(it.Tags, shm.VariantTag(x.primary))
	if err := p.ops.Put(&it); err != nil {
		p.m.notStoredInc("cache-error")
		return
	}
	p.m.stored.Inc()
}

// refetch repeats x's revalidation without validators, after a 304 that
// cannot update the stored response (its validators contradict it, RFC
// 9111 §4.3.4). resp becomes the new response, handled by modifyResponse
// like any full response (false); if the upstream cannot be reached, resp
// becomes a 502 (true).
func (p *Proxy) refetch(x *exchange, resp *http.Response) bool {
	req := resp.Request.Clone(resp.Request.Context())
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	x.status.Detail = "validator-mismatch"
	x.reqTime = p.opts.Now()
	nr, err := dispatch{p}.RoundTrip(req)
	x.respTime = p.opts.Now()
	if err != nil {
		p.log.Warn("upstream error", "request_id", x.reqID, "upstream", x.upstream, "err", err)
		p.m.upstreamErrors.WithLabelValues(clusterName(x)).Inc()
		resp.Header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
		x.status.Detail = "upstream-error"
		x.status.FwdStatus = 0
		httpcache.AppendCacheStatus(resp.Header, x.status)
		resp.Trailer = nil
		setBody(resp, http.StatusBadGateway, []byte("zerohop: upstream unavailable\n"))
		return true
	}
	removeHopByHop(nr.Header) // as ReverseProxy does before ModifyResponse
	nr.Header.Add("Via", viaValue(nr.ProtoMajor, nr.ProtoMinor))
	nr.Header.Del("X-Request-Id")
	x.status.FwdStatus = nr.StatusCode
	*resp = *nr
	return false
}

// respHopByHop are the fields ReverseProxy removes from a response.
var respHopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, line := range h["Connection"] {
		for f := range strings.SplitSeq(line, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range respHopByHop {
		delete(h, f) // canonical already
	}
}

// headUpdated applies a 200 to a forwarded HEAD to the stored GET response
// it was selected for (RFC 9111 §4.3.5): when the validators the HEAD
// response carries, and its Content-Length if any, match the stored
// response (httpcache.HeadMatches), the stored response is freshened with
// its header as by a 304 (§3.2); otherwise the stored response no longer
// describes the resource and is removed, so it is never served again
// without a fetch. For a representation the proxy encoded, the upstream's
// ETag is compared and Content-Length is not (the stored length is that of
// the encoded body).
func (p *Proxy) headUpdated(x *exchange, resp *http.Response) {
	e := x.stored
	if e == nil || resp.StatusCode != http.StatusOK {
		return
	}
	stored, head := validatorView(e, x.storedHdr), resp.Header
	switch {
	case encodedByProxy(e, x.storedHdr):
		head = head.Clone()
		head.Del("Content-Length")
	case stored.Get("Content-Length") == "":
		stored = stored.Clone()
		stored.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	if e.Status != http.StatusOK || !httpcache.HeadMatches(stored, head) {
		p.ops.Delete(e.Key)
		x.status.Detail = "head-mismatch"
		return
	}
	merged := freshenStored(e, x.storedHdr, resp.Header, x.respTime)
	if p.storableUpdate(x, e.Status, merged) {
		p.store(x, e.Status, merged, e.Body, string(e.ETag))
		x.status.Stored = true
	}
}

// staleOnError reports whether the stored response may answer an upstream
// failure (RFC 5861 §4, RFC 9111 §4.2.4).
func (p *Proxy) staleOnError(x *exchange) bool {
	if x.stored == nil {
		return false
	}
	return httpcache.CanServeStaleOnError(x.reqDir, toHTTPEntry(x.stored), p.opts.Now())
}

func (p *Proxy) replaceWithStored(x *exchange, resp *http.Response, detail string) {
	p.replaceWithBody(x, resp, x.stored.Status, headerOf(x.stored), x.stored.Body, detail)
}

// replaceWithBody turns resp into the stored response (after a 304 or an
// upstream error), honouring the app's own conditional.
func (p *Proxy) replaceWithBody(x *exchange, resp *http.Response, status int, h http.Header, body []byte, detail string) {
	he := toHTTPEntry(x.stored)
	if status == x.stored.Status && detail == "" {
		// Freshened by a 304: its age and lifetime are those of the
		// updated header, from the revalidation on (RFC 9111 §4.3.4).
		fe, _, lifetime := p.freshness(x, status, h)
		he.ResponseTime, he.CorrectedInitialAge, he.Lifetime = x.respTime, fe.CorrectedInitialAge, lifetime
	}
	now := p.opts.Now()
	out := h.Clone()
	code := status
	if httpcache.NotModified(x.in, status, h, he.ResponseTime) {
		out, code = httpcache.NotModifiedHeader(h), http.StatusNotModified
		body = nil
	} else if code == http.StatusOK {
		acceptRanges(out)
		code, body = answerRange(x.in, out, body)
	}
	out.Set("Age", httpcache.FormatAge(he.Age(now)))
	out.Del("Cache-Status")
	x.status.TTL, x.status.HasTTL = he.TTL(now), true
	if detail != "" {
		x.status.Detail = detail
	}
	httpcache.AppendCacheStatus(out, x.status)
	resp.StatusCode, resp.Status = code, ""
	resp.Header = out
	resp.Trailer = nil
	resp.ContentLength = int64(len(body))
	if code != http.StatusNotModified {
		out.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

// prepareStore decides, before the body is read, whether the response
// will be stored.
func (p *Proxy) prepareStore(x *exchange, resp *http.Response) {
	x.storeOK = false
	if x.in.Method == http.MethodHead {
		p.headUpdated(x, resp)
		return
	}
	if x.in.Method != http.MethodGet {
		return
	}
	ok, reason := httpcache.Storable(x.in, resp, x.st.storeOpts)
	if !ok {
		x.status.Detail = string(reason)
		p.m.notStoredInc(string(reason))
		return
	}
	if resp.ContentLength > x.st.maxObject {
		x.status.Detail = "too-large"
		p.m.notStoredInc("too-large")
		return
	}
	if _, _, lifetime := p.freshness(x, resp.StatusCode, resp.Header); lifetime <= 0 && !hasValidators(resp.Header) {
		// store would drop it: do not buffer it, nor report it stored.
		x.status.Detail = "no-freshness"
		p.m.notStoredInc("no-freshness")
		return
	}
	x.storeOK = true
	x.etag = resp.Header.Get("Etag")
	x.stripFields = httpcache.StrippedFields(resp.Header)
}

// teeStore keeps a copy of the body (up to the object size cap) while it
// streams to the app, and stores it once it has been read to the end. When
// the app asked for a range of a complete 200, the range is answered from
// it (see range.go): after storing the whole body, or, when it is not
// stored, cut from the stream.
func (p *Proxy) teeStore(x *exchange, resp *http.Response) {
	if !x.storeOK {
		sliceRange(x, resp)
		return
	}
	h := resp.Header.Clone() // store strips it after reading Age
	for _, f := range x.stripFields {
		h.Del(f)
	}
	status := resp.StatusCode
	x.status.Stored = true
	if wantsRange(x, resp) {
		p.storeThenRange(x, resp, h)
		return
	}
	sb := &storingBody{rc: resp.Body, limit: x.st.maxObject}
	if resp.ContentLength > 0 {
		sb.buf = make([]byte, 0, resp.ContentLength)
	}
	sb.done = func(body []byte) { p.store(x, status, h, body, x.etag) }
	resp.Body = sb
}

func stripForStore(h http.Header) http.Header {
	for _, f := range storeStripped {
		h.Del(f)
	}
	return h
}

// freshness returns the policy view of a response with status and header
// h (which must still carry the upstream's Age), its directives, and the
// lifetime the proxy gives it (route ttl_override and cache.default_ttl
// applied).
func (p *Proxy) freshness(x *exchange, status int, h http.Header) (httpcache.Entry, httpcache.Directives, time.Duration) {
	he := httpcache.NewEntry(status, h, x.reqTime, x.respTime, x.st.freshOpts)
	cc := httpcache.ParseCacheControl(h)
	lifetime := he.Lifetime
	switch {
	case x.route != nil && x.route.ttlOverride > 0:
		lifetime = time.Duration(x.route.ttlOverride) * time.Millisecond
	case x.st.cfg.Cache.DefaultTTL > 0 && !cc.MaxAge.Present && !cc.SMaxAge.Present && h.Get("Expires") == "":
		lifetime = x.st.cfg.Cache.DefaultTTL
	}
	return he, cc, lifetime
}

// store writes a response into the cache, with a vary index under the
// primary key when the response varies. h is the response header as
// received (Age included, for corrected_initial_age, RFC 9111 §4.2.3);
// store owns it and strips what must not be stored.
func (p *Proxy) store(x *exchange, status int, h http.Header, body []byte, etag string) {
	it, names, ok := p.newItem(x, status, h, body, etag)
	if !ok {
		return
	}
	if len(names) > 0 {
		fields := make([]shm.VaryField, len(names))
		for i, n := range names {
			vals := x.in.Header.Values(n)
			fields[i] = shm.VaryField{Name: n, Present: len(vals) > 0, Value: shm.NormalizeFieldValue(vals)}
		}
		it.Key = shm.AppendVary(bytes.Clone(x.primary), fields)
		it.Vary = names
		it.Tags = append(it.Tags, shm.VariantTag(x.primary))
	}
	if err := p.ops.Put(&it); err != nil {
		p.m.notStoredInc("cache-error")
		p.log.Debug("not stored", "request_id", x.reqID, "err", err)
		return
	}
	p.m.stored.Inc()
	switch {
	case len(names) > 0 && !(x.primaryIsIdx && sameNames(x.primaryVary, names)):
		idx := shm.Item{Key: x.primary, Flags: shm.FlagVaryIndex, Vary: names,
			StoredMs: it.StoredMs, ExpiresMs: x.respTime.Add(varyIndexLife).UnixMilli()}
		p.ops.Put(&idx)
		x.primaryIsIdx, x.primaryVary = true, nil
	case len(names) == 0 && x.primaryIsIdx:
		// The URL stopped varying: its variants are no longer selectable.
		p.ops.PurgeTag(shm.VariantTag(x.primary), false)
	}
}

// newItem builds the item storing a response with status, header h (as
// received, Age included; newItem owns it and strips it) and body under
// x's primary key, and returns the names its Vary lists. ok is false when
// the response would never be usable.
func (p *Proxy) newItem(x *exchange, status int, h http.Header, body []byte, etag string) (it shm.Item, names []string, ok bool) {
	he, cc, lifetime := p.freshness(x, status, h)
	h = stripForStore(h)
	if lifetime <= 0 && !hasValidators(h) {
		p.m.notStoredInc("no-freshness")
		return it, nil, false // never usable without a validator to revalidate with
	}
	initAge := he.CorrectedInitialAge.Truncate(time.Second)
	it = shm.Item{
		Key:          x.primary,
		Status:       status,
		Header:       h,
		Body:         body,
		StoredMs:     x.respTime.UnixMilli(),
		ExpiresMs:    x.respTime.Add(lifetime - initAge).UnixMilli(),
		InitialAge:   uint32(initAge / time.Second),
		SWR:          uint32(he.StaleWhileRevalidate / time.Second),
		SIE:          uint32(he.StaleIfError / time.Second),
		ETag:         etag,
		LastModified: h.Get("Last-Modified"),
		Tags:         httpcache.SurrogateKeys(h),
	}
	if it.SIE == 0 && x.st.sie > 0 {
		it.SIE = uint32(x.st.sie / time.Second)
	}
	if he.MustRevalidate {
		it.Flags |= shm.FlagMustRevalidate
	}
	if he.NoCache {
		it.Flags |= shm.FlagNoCache
	}
	if cc.Public || cc.SMaxAge.Present || cc.MustRevalidate {
		it.Flags |= shm.FlagAuthShared
	}
	names, _ = httpcache.VaryNames(h)
	return it, names, true
}

func sameNames(block []byte, names []string) bool {
	it := shm.NewStringIter(block)
	for _, n := range names {
		if !it.Next() || it.String() != n {
			return false
		}
	}
	return !it.Next()
}

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
// included: a key purge, as an invalidation-log record makes, through the
// cache's invalidate.Purger (a store.Tier reaches both tiers in order). It
// reports whether anything was removed from shared memory.
func (p *Proxy) InvalidateURL(scheme, host, target string) bool {
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

// refreshInBackground revalidates a stale entry once, for
// stale-while-revalidate (RFC 5861 §3), unless a fetch is already running.
func (p *Proxy) refreshInBackground(x *exchange, e *shm.Entry) {
	f, leader := p.flights.join(x.primary, new(flight))
	if !leader {
		return
	}
	owned := e.Clone() // e lives in the request's buffer, released when it ends
	y := &exchange{p: p, st: x.st, lis: x.lis, guard: x.guard, route: x.route, cluster: x.cluster,
		reqID: x.reqID + "-bg", start: p.opts.Now(), scheme: x.scheme, host: x.host, target: x.target,
		cacheable: true, primary: bytes.Clone(x.primary), primaryIsIdx: x.primaryIsIdx, primaryVary: x.primaryVary,
		stored: &owned, storedHdr: headerOf(e), refresh: true}
	y.revalidating = hasValidators(y.storedHdr)
	y.status.Fwd = httpcache.FwdStale
	ctx, cancel := context.WithTimeout(p.bgCtx, time.Minute)
	req := x.in.Clone(context.WithValue(ctx, ctxKey{}, y))
	req.Method, req.Body, req.ContentLength = http.MethodGet, http.NoBody, 0
	// The refresh is the cache's own request: the triggering client's
	// conditionals, range and cache directives would get an answer the
	// cache cannot store (a 304 without stored validators, a 206, a
	// no-store).
	for _, f := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since",
		"If-Range", "Range", "Cache-Control", "Pragma"} {
		req.Header.Del(f)
	}
	y.in = req
	p.m.refreshes.Inc()
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer cancel()
		defer p.flights.finish(f)
		p.rp.ServeHTTP(discard{h: http.Header{}}, req)
	}()
}

// discard is the ResponseWriter of a background revalidation.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// storingBody tees an upstream body into a buffer while the proxy copies
// it to the app, and hands the buffer to done after a clean EOF.
type storingBody struct {
	rc    io.ReadCloser
	buf   []byte
	limit int64
	over  bool
	done  func([]byte)
}

func (s *storingBody) Read(b []byte) (int, error) {
	n, err := s.rc.Read(b)
	if !s.over && n > 0 {
		if int64(len(s.buf)+n) > s.limit {
			s.over, s.buf = true, nil
		} else {
			s.buf = append(s.buf, b[:n]...)
		}
	}
	if err == io.EOF && !s.over && s.done != nil {
		done := s.done
		s.done = nil
		done(s.buf)
	}
	return n, err
}

func (s *storingBody) Close() error { return s.rc.Close() }

// flights are in-flight upstream fetches, by the hash of their primary
// key. Two keys with one hash share a flight: the follower then waits for
// a fetch that stores nothing it looks up, and goes upstream itself,
// which is what coalescing costs anyway when the leader's answer is not
// storable. Hashing spares a string per miss.
type flights struct {
	mu sync.Mutex
	m  map[uint64]*flight
}

// flight is one upstream fetch that followers wait on. It lives in the
// leader's exchange; wait is made when the first follower comes.
type flight struct {
	hash uint64
	wait chan struct{}
}

// join returns the flight for key, making own the flight (leader=true)
// if there is none.
func (fs *flights) join(key []byte, own *flight) (f *flight, leader bool) {
	h := xxhash.Sum64(key)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[h]; ok {
		if f.wait == nil {
			f.wait = make(chan struct{})
		}
		return f, false
	}
	if fs.m == nil {
		fs.m = map[uint64]*flight{}
	}
	own.hash, own.wait = h, nil
	fs.m[h] = own
	return own, true
}

// finish ends f and releases its followers.
func (fs *flights) finish(f *flight) {
	fs.mu.Lock()
	if fs.m[f.hash] == f {
		delete(fs.m, f.hash)
	}
	wait := f.wait
	fs.mu.Unlock()
	if wait != nil {
		close(wait)
	}
}
