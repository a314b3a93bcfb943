package zerohop

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// CacheName is the cache's name in Cache-Status header fields (RFC 9211).
const CacheName = "zerohop"

// Transport returns an http.RoundTripper that answers fresh hits from the
// shared-memory cache and sends everything else to the sidecar (all of it
// without a mapping, counted as Bypassed).
func (c *Client) Transport() http.RoundTripper { return (*transport)(c) }

type transport Client

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := (*Client)(t)
	d, why := eligible(req)
	if why == eligibleOK && c.r == nil {
		why = bypassUnmapped
	}
	if why != eligibleOK {
		c.bypass[why].Add(1)
		return c.fallback.RoundTrip(req)
	}
	if resp := c.serve(req, d); resp != nil {
		return resp, nil
	}
	c.misses.Add(1)
	return c.fallback.RoundTrip(req)
}

// requestDirectives are the request Cache-Control directives (RFC 9111
// §5.2.1) that decide whether a stored response may answer here.
type requestDirectives struct {
	maxAge   int64 // -1: none
	minFresh int64
}

// eligible says whether req may be answered from shared memory at all
// (eligibleOK), or why not.
// Anything the client does not fully handle (ranges, preconditions other
// than If-None-Match/If-Modified-Since, request bodies, no-cache) goes to
// the sidecar, which implements the whole of RFC 9111.
func eligible(req *http.Request) (d requestDirectives, why bypassReason) {
	d.maxAge = -1
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return d, bypassMethod
	}
	if req.URL == nil || (req.Body != nil && req.Body != http.NoBody) {
		return d, bypassBody
	}
	h := req.Header
	if h.Get("Range") != "" || h.Get("If-Match") != "" || h.Get("If-Unmodified-Since") != "" || h.Get("If-Range") != "" {
		return d, bypassConditional
	}
	cc := h.Values("Cache-Control")
	if len(cc) == 0 {
		// Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
		for _, p := range h.Values("Pragma") {
			if hasToken(p, "no-cache") {
				return d, bypassNoCache
			}
		}
		return d, eligibleOK
	}
	for _, line := range cc {
		for _, dir := range strings.Split(line, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(dir), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			arg = strings.Trim(strings.TrimSpace(arg), `"`)
			switch name {
			case "no-cache", "no-store":
				return d, bypassNoCache
			case "max-age":
				n, err := strconv.ParseInt(arg, 10, 64)
				if err != nil || n <= 0 {
					return d, bypassNoCache // max-age=0 or unparseable: revalidate at the sidecar
				}
				if d.maxAge < 0 || n < d.maxAge {
					d.maxAge = n
				}
			case "min-fresh":
				n, err := strconv.ParseInt(arg, 10, 64)
				if err != nil || n < 0 {
					return d, bypassNoCache
				}
				d.minFresh = max(d.minFresh, n)
			}
		}
	}
	return d, eligibleOK
}

func hasToken(list, tok string) bool {
	for _, p := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(p), tok) {
			return true
		}
	}
	return false
}

// serve returns the response for a fresh shared-memory hit, or nil.
func (c *Client) serve(req *http.Request, d requestDirectives) *http.Response {
	now := time.Now()
	nowMs := now.UnixMilli()
	bp := c.bufs.Get().(*[]byte)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	scheme := req.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	e, buf, ok := c.lookup(*bp, req.Method, scheme, host, req.URL.RequestURI(), req.Header, nowMs)
	*bp = buf
	if ok {
		age := e.AgeSeconds(nowMs)
		ttl := (e.ExpiresMs - nowMs) / 1000
		switch {
		case req.Header.Get("Authorization") != "" && e.Flags&shm.FlagAuthShared == 0:
			ok = false // RFC 9111 §3.5: not reusable for authenticated requests
		case d.maxAge >= 0 && age > d.maxAge:
			ok = false
		case d.minFresh > 0 && ttl < d.minFresh:
			ok = false
		case e.Flags&shm.FlagHeadersOnly != 0 && req.Method != http.MethodHead:
			ok = false // only the headers were stored
		}
		if ok {
			resp := c.response(req, &e, bp, age, ttl)
			c.hit(req, resp, now, age, ttl)
			return resp
		}
	}
	c.bufs.Put(bp)
	return nil
}

// response builds the app's response from an entry copied into *bp. The
// body keeps the buffer until it is closed, then returns it to the pool.
func (c *Client) response(req *http.Request, e *shm.Entry, bp *[]byte, age, ttl int64) *http.Response {
	h := make(http.Header, 8)
	for it := shm.NewHeaderIter(e.Headers); it.Next(); {
		name := string(it.Name())
		h[name] = append(h[name], string(it.Value()))
	}
	h["Age"] = []string{strconv.FormatInt(age, 10)}
	status := e.Status
	if notModified(req, h) {
		status = http.StatusNotModified
		c.notModified.Add(1)
	}
	cs := CacheName + "; hit; ttl=" + strconv.FormatInt(ttl, 10) + "; detail=shm"
	h["Cache-Status"] = append(h["Cache-Status"], cs)
	c.hits.Add(1)
	if status != http.StatusNotModified && req.Method != http.MethodHead {
		c.served.Add(uint64(len(e.Body)))
	}
	resp := &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  h,
		Request: req,
	}
	switch {
	case status == http.StatusNotModified:
		resp.Body = http.NoBody
		delete(h, "Content-Length")
		c.bufs.Put(bp)
		return resp
	case req.Method == http.MethodHead:
		// A HEAD answered from a stored GET carries the GET's length.
		resp.Body = http.NoBody
		if e.Flags&shm.FlagHeadersOnly == 0 {
			resp.ContentLength = int64(len(e.Body))
			h["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
		} else if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = cl
		} else {
			resp.ContentLength = -1
		}
		c.bufs.Put(bp)
		return resp
	}
	resp.ContentLength = int64(len(e.Body))
	h["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
	b := &pooledBody{c: c, bp: bp}
	b.r.Reset(e.Body)
	resp.Body = b
	return resp
}

// notModified evaluates the app's own conditional request against the
// validators of the stored response h (RFC 9110 §13.1.2, §13.1.3;
// If-None-Match wins). The response's ETag field is what the app saw; the
// entry's own ETag is the upstream validator, which differs for a variant
// the sidecar compressed.
func notModified(req *http.Request, h http.Header) bool {
	if inm := req.Header.Values("If-None-Match"); len(inm) > 0 {
		etag := h.Get("Etag")
		if etag == "" {
			return false
		}
		etag = strings.TrimPrefix(etag, "W/")
		for _, line := range inm {
			for _, t := range strings.Split(line, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || strings.TrimPrefix(t, "W/") == etag {
					return true // weak comparison, as If-None-Match requires
				}
			}
		}
		return false
	}
	ims := req.Header.Get("If-Modified-Since")
	lms := h.Get("Last-Modified")
	if ims == "" || lms == "" {
		return false
	}
	t, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(lms)
	return err == nil && !lm.After(t)
}

// pooledBody serves an entry's body from a pooled buffer.
type pooledBody struct {
	c  *Client
	bp *[]byte
	r  bytes.Reader
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.bp == nil {
		return 0, io.ErrClosedPipe
	}
	return b.r.Read(p)
}

func (b *pooledBody) WriteTo(w io.Writer) (int64, error) {
	if b.bp == nil {
		return 0, io.ErrClosedPipe
	}
	return b.r.WriteTo(w)
}

func (b *pooledBody) Close() error {
	if b.bp != nil {
		b.r.Reset(nil)
		b.c.bufs.Put(b.bp)
		b.bp = nil
	}
	return nil
}
