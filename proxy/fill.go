// Filling the cache: whether an upstream response may be stored, teeing
// its body while it streams to the app, and the item that stores it.

package proxy

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
	"github.com/zerohop/zerohop/shm"
)

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
	if codedTransfer(resp) {
		// Framed by a transfer coding other than chunked (h1 relays it,
		// read until close or decoded): whether the body is the whole
		// representation cannot be told, so it is never stored.
		x.status.Detail = "transfer-coding"
		p.m.notStoredInc("transfer-coding")
		return
	}
	pr := resp
	if x.targeted != "" {
		pr = &http.Response{StatusCode: resp.StatusCode, Header: x.policy(resp.Header)}
	}
	ok, reason := httpcache.Storable(x.in, pr, x.st.storeOpts)
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
	x.stripFields = httpcache.StrippedFields(pr.Header)
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

// codedTransfer reports whether resp came with transfer codings other
// than a lone chunked.
func codedTransfer(resp *http.Response) bool {
	te := resp.TransferEncoding
	return len(te) > 1 || len(te) == 1 && te[0] != "chunked"
}

func stripForStore(h http.Header) http.Header {
	for _, f := range storeStripped {
		h.Del(f)
	}
	return h
}

// freshness returns the policy view of a response with status and header
// h (which must still carry the upstream's Age), its directives, and the
// lifetime the proxy gives it (route ttl_override, then the route's or
// the global default_ttl applied), read through the targeted field in
// use, if any (x.policy).
func (p *Proxy) freshness(x *exchange, status int, h http.Header) (httpcache.Entry, httpcache.Directives, time.Duration) {
	h = x.policy(h)
	he := httpcache.NewEntry(status, h, x.reqTime, x.respTime, x.st.freshOpts)
	cc := httpcache.ParseCacheControl(h)
	lifetime := he.Lifetime
	switch {
	case x.route != nil && x.route.ttlOverride > 0:
		lifetime = time.Duration(x.route.ttlOverride) * time.Millisecond
	case x.defaultTTL() > 0 && !cc.MaxAge.Present && !cc.SMaxAge.Present && h.Get("Expires") == "":
		lifetime = x.defaultTTL()
	}
	return he, cc, lifetime
}

// store writes a response into the cache, with a vary index under the
// primary key when the response varies. h is the response header as
// received (Age included, for corrected_initial_age, RFC 9111 §4.2.3);
// store owns it and strips what must not be stored.
func (p *Proxy) store(x *exchange, status int, h http.Header, body []byte, etag string) {
	if !x.start.IsZero() {
		defer x.markFrom(timeline.Store, x.since())
	}
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
	names = x.route.keyNames(names) // the route's key headers (cachepolicy.go)
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
