// Revalidation (RFC 9111 §4.3): the upstream's answer to a conditional
// request updates, replaces or removes what is stored; stale-if-error.

package proxy

import (
	"bytes"
	"cmp"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/shm"
)

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
	ok, _ := httpcache.Storable(req, &http.Response{StatusCode: status, Header: x.policy(h), Request: req}, x.st.storeOpts)
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
