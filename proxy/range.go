package proxy

// Range requests (RFC 9110 §14; RFC 9111 §3.3, §4).
//
// The cache stores complete 200 responses only (a 206 from upstream is
// never stored: httpcache.Storable) and answers a GET with Range from
// them: a single range as 206 with Content-Range, several as
// multipart/byteranges, none satisfiable as 416 with "Content-Range:
// bytes */length", and the whole 200 when Range does not apply (unknown
// unit, invalid, If-Range false, Accept-Ranges: none from the origin) or
// is abusive (see httpcache.RangeSet.Select).
//
// On a miss, or when revalidating, the Range and If-Range of the app's
// request are not forwarded, as nginx (proxy_cache) and Varnish do: the
// upstream sends the whole representation, which can be stored, and the
// app's range is cut from it. Forwarding the Range instead would get a
// 206 that cannot be stored, so that an app that always sends Range (media
// players, resumable downloads) would never get a hit. The exception is a
// range starting beyond cache.max_object_size (nginx's
// proxy_cache_max_range_offset): such a representation is too large to
// store anyway, and fetching it whole for a few bytes at its end would be
// wasteful, so Range then goes upstream as sent, and the 206 is passed
// through unstored. When the whole response turns out not to be storable
// (no-store, too large), a single range is still cut from the stream when
// its length is known; otherwise the app gets the whole 200, which a
// server may always send instead of a 206.

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/zerohop/zerohop/proxy/httpcache"
)

// upstreamRequest returns the request to forward for r, a cacheable GET or
// HEAD the cache could not answer: r itself, or a shallow copy without
// Range and If-Range (see above). x.in keeps the app's request, from
// which the answer's range is taken.
func (p *Proxy) upstreamRequest(x *exchange, r *http.Request) *http.Request {
	if len(r.Header["Range"]) == 0 && len(r.Header["If-Range"]) == 0 {
		return r
	}
	if s, ok := httpcache.ParseRange(r.Header["Range"]); ok && r.Method == http.MethodGet && s.FirstByte() > x.st.maxObject {
		return r
	}
	out := r.WithContext(r.Context())
	out.Header = r.Header.Clone()
	out.Header.Del("Range")
	out.Header.Del("If-Range")
	return out
}

// acceptRanges marks a complete 200 served by the cache as one it can
// serve in parts (RFC 9110 §14.3), unless the origin said "none".
func acceptRanges(h http.Header) {
	if httpcache.AcceptsRanges(h) {
		h["Accept-Ranges"] = []string{"bytes"}
	}
}

// answerRange turns a complete 200 with header h and body into the answer
// to r's Range, if any: it returns the status and content to send and
// updates h (Content-Range, Content-Type for multipart). The caller sets
// Content-Length to the length of the content returned.
func answerRange(r *http.Request, h http.Header, body []byte) (int, []byte) {
	s, ok := httpcache.RangeApplies(r, http.StatusOK, h)
	if !ok {
		return http.StatusOK, body
	}
	size := int64(len(body))
	status, ranges := s.Select(size, h)
	switch {
	case status == http.StatusRequestedRangeNotSatisfiable:
		unsatisfiable(h, size)
		return status, nil
	case status == http.StatusPartialContent && len(ranges) == 1:
		h.Set("Content-Range", httpcache.ContentRange(ranges[0], size))
		return status, body[ranges[0].First : ranges[0].Last+1]
	case status == http.StatusPartialContent:
		mp, ct := multipartRanges(body, ranges, h.Get("Content-Type"))
		h.Set("Content-Type", ct)
		h.Del("Content-Range")
		return status, mp
	}
	return http.StatusOK, body
}

// unsatisfiable makes h the header of a 416 (RFC 9110 §15.5.17): the
// content is empty, so the representation's type and coding go.
func unsatisfiable(h http.Header, size int64) {
	h.Set("Content-Range", httpcache.UnsatisfiedContentRange(size))
	h.Del("Content-Type")
	h.Del("Content-Encoding")
}

// multipartRanges builds a multipart/byteranges body (RFC 9110 §14.6) and
// returns it with its Content-Type.
func multipartRanges(body []byte, ranges []httpcache.ByteRange, contentType string) ([]byte, string) {
	var b bytes.Buffer
	size := int64(len(body))
	n := 0
	for _, r := range ranges {
		n += int(r.Len()) + 100
	}
	b.Grow(n)
	mw := multipart.NewWriter(&b)
	for _, r := range ranges {
		ph := textproto.MIMEHeader{}
		if contentType != "" {
			ph.Set("Content-Type", contentType)
		}
		ph.Set("Content-Range", httpcache.ContentRange(r, size))
		pw, _ := mw.CreatePart(ph) // writes to a bytes.Buffer: no error
		pw.Write(body[r.First : r.Last+1])
	}
	mw.Close()
	return b.Bytes(), "multipart/byteranges; boundary=" + mw.Boundary()
}

// wantsRange reports whether resp, the upstream's answer forwarded for x,
// is a complete 200 from which the app's Range is to be answered.
func wantsRange(x *exchange, resp *http.Response) bool {
	if len(x.in.Header["Range"]) == 0 {
		return false
	}
	_, ok := httpcache.RangeApplies(x.in, resp.StatusCode, resp.Header)
	return ok
}

// storeThenRange reads the whole of resp's body (bounded by the object
// size cap), stores it with header h, and answers the app's Range from it
// like a hit. A body over the cap, or cut short, is passed on whole and
// not stored.
func (p *Proxy) storeThenRange(x *exchange, resp *http.Response, h http.Header) {
	limit := x.st.maxObject
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		x.status.Stored = false
		if err == nil {
			x.status.Detail = "too-large"
			p.m.notStoredInc("too-large")
		}
		rest := resp.Body
		if err != nil {
			rest = io.NopCloser(errReader{err})
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rest), resp.Body}
		return
	}
	resp.Body.Close()
	p.store(x, resp.StatusCode, h, buf, x.etag)
	acceptRanges(resp.Header)
	code, body := answerRange(x.in, resp.Header, buf)
	setBody(resp, code, body)
}

// sliceRange answers the app's Range from a complete 200 that is not
// stored, while it streams: a single range of a body of known length is
// cut from it, a range beyond its end is answered 416; anything else
// (several ranges, unknown length) gets the whole 200.
func sliceRange(x *exchange, resp *http.Response) {
	if !wantsRange(x, resp) || resp.ContentLength < 0 {
		return
	}
	s, _ := httpcache.RangeApplies(x.in, resp.StatusCode, resp.Header)
	size := resp.ContentLength
	status, ranges := s.Select(size, resp.Header)
	switch {
	case status == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		acceptRanges(resp.Header)
		unsatisfiable(resp.Header, size)
		setBody(resp, status, nil)
	case status == http.StatusPartialContent && len(ranges) == 1:
		r := ranges[0]
		acceptRanges(resp.Header)
		resp.Header.Set("Content-Range", httpcache.ContentRange(r, size))
		resp.StatusCode, resp.Status = status, ""
		resp.ContentLength = r.Len()
		resp.Header.Set("Content-Length", strconv.FormatInt(r.Len(), 10))
		resp.Body = &sliceBody{rc: resp.Body, skip: r.First, n: r.Len()}
	}
}

// setBody makes resp a response with status and the in-memory content.
func setBody(resp *http.Response, status int, body []byte) {
	resp.StatusCode, resp.Status = status, ""
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

// sliceBody passes on n bytes of rc after skipping skip.
type sliceBody struct {
	rc      io.ReadCloser
	skip, n int64
}

func (s *sliceBody) Read(b []byte) (int, error) {
	if s.skip > 0 {
		k, err := io.CopyN(io.Discard, s.rc, s.skip)
		s.skip -= k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > s.n {
		b = b[:s.n]
	}
	n, err := s.rc.Read(b)
	s.n -= int64(n)
	switch {
	case err == io.EOF && s.n > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && s.n == 0:
		err = io.EOF
	}
	return n, err
}

func (s *sliceBody) Close() error { return s.rc.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
