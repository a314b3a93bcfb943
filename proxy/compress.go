package proxy

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/proxy/httpcache"
)

// compressMin is the smallest known body worth compressing.
const compressMin = 512

// compress encodes a compressible response for an app that accepts zstd or
// gzip. Every compressible response gets Vary: Accept-Encoding, compressed
// or not, so that the cache keys each representation on the app's
// Accept-Encoding (RFC 9110 §12.5.5) and never serves a compressed body to
// an app that cannot read it. The compressed representation gets its own
// ETag, as two representations must not share a strong validator.
func (p *Proxy) compress(x *exchange, resp *http.Response) {
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" ||
		!compressibleType(h.Get("Content-Type")) || httpcache.ParseCacheControl(h).NoTransform {
		return
	}
	if resp.ContentLength >= 0 && resp.ContentLength < compressMin {
		return
	}
	addVary(h, "Accept-Encoding")
	if x.in.Method == http.MethodHead {
		return
	}
	enc := negotiateEncoding(x.in.Header.Values("Accept-Encoding"))
	if enc == "" {
		return
	}
	h.Set("Content-Encoding", enc)
	h.Del("Content-Length")
	resp.ContentLength = -1
	if et := h.Get("Etag"); strings.HasSuffix(et, `"`) {
		h.Set("Etag", et[:len(et)-1]+"-"+enc+`"`)
	}
	resp.Body = newEncoder(resp.Body, enc)
}

func compressibleType(ct string) bool {
	mt, ok := plainMediaType(ct)
	if !ok {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return false
		}
	}
	switch {
	case mt == "text/event-stream":
		return false // streamed: compression would hold events back
	case strings.HasPrefix(mt, "text/"):
		return true
	case strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/xml", "application/x-ndjson",
		"application/graphql-response+json", "image/svg+xml", "application/wasm":
		return true
	}
	return false
}

func addVary(h http.Header, name string) {
	for _, line := range h.Values("Vary") {
		for _, v := range strings.Split(line, ",") {
			v = strings.TrimSpace(v)
			if v == "*" || strings.EqualFold(v, name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}

// negotiateEncoding picks zstd, then gzip, among codings the request's
// Accept-Encoding allows (RFC 9110 §12.5.3), or "" for none.
func negotiateEncoding(lines []string) string {
	var zstdQ, gzipQ, starQ float64 = -1, -1, -1
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			q := 1.0
			if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					continue
				}
				q = f
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "zstd":
				zstdQ = q
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				starQ = q
			}
		}
	}
	if zstdQ < 0 {
		zstdQ = starQ
	}
	if gzipQ < 0 {
		gzipQ = starQ
	}
	switch {
	case zstdQ > 0 && zstdQ >= gzipQ:
		return "zstd"
	case gzipQ > 0:
		return "gzip"
	}
	return ""
}

var (
	gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}
	zstdPool = sync.Pool{New: func() any {
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		return w
	}}
)

// newEncoder streams body through an encoder. The encoding runs in a
// goroutine writing into a pipe; closing the result stops it.
func newEncoder(body io.ReadCloser, enc string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		var err error
		switch enc {
		case "gzip":
			zw := gzipPool.Get().(*gzip.Writer)
			zw.Reset(pw)
			if _, err = io.Copy(zw, body); err == nil {
				err = zw.Close()
			}
			gzipPool.Put(zw)
		default:
			zw := zstdPool.Get().(*zstd.Encoder)
			zw.Reset(pw)
			if _, err = io.Copy(zw, body); err == nil {
				err = zw.Close()
			}
			zstdPool.Put(zw)
		}
		body.Close()
		pw.CloseWithError(err)
	}()
	return &encodedBody{pr: pr, src: body}
}

type encodedBody struct {
	pr  *io.PipeReader
	src io.Closer
}

func (e *encodedBody) Read(b []byte) (int, error) { return e.pr.Read(b) }

func (e *encodedBody) Close() error {
	e.pr.Close()
	return e.src.Close()
}

// plainMediaType returns the media type of ct when ct is the common
// shape, a lower-case "type/subtype" with at most a "; charset=token"
// parameter, which mime.ParseMediaType would accept and return as it is.
// ok is false for anything else, for ParseMediaType to judge.
func plainMediaType(ct string) (mt string, ok bool) {
	mt, params, _ := strings.Cut(ct, ";")
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 || !lowerToken(mt[:slash]) || !lowerToken(mt[slash+1:]) {
		return "", false
	}
	if params != "" {
		params = strings.TrimLeft(params, " ")
		v, found := strings.CutPrefix(params, "charset=")
		if !found || !lowerToken(strings.ToLower(v)) {
			return "", false
		}
	}
	return mt, true
}

// lowerToken reports whether s is a non-empty token without upper-case
// letters.
func lowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '+' || c == '_' || c == '!' || c == '#' || c == '$' || c == '&' || c == '^':
		default:
			return false
		}
	}
	return true
}
