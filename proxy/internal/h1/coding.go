package h1

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// Transfer codings other than a lone "chunked" (RFC 9112 §6.1, §7).
// http.ReadResponse refuses them ("unsupported transfer encoding"), which
// would make the proxy answer 502 for a response it can still relay. RFC
// 9112 §6.3 says how such a response is framed:
//
//   - chunked is the final coding ("gzip, chunked"): the body is chunked;
//   - otherwise ("gzip", "foo"): the body ends when the server closes the
//     connection.
//
// The codings before chunked that this package knows (gzip, x-gzip,
// deflate) are decoded, innermost last, so the caller gets the content;
// when any is unknown, the bytes are relayed as they came. Either way the
// connection is not reused (the chunked reader leaves trailers unread,
// and read-until-close ends the connection anyway), and the response
// carries its codings in Response.TransferEncoding, with
// Header["Transfer-Encoding"] removed, so the caller can tell: the proxy
// never stores such a response.

// readCoded reads a response head whose Transfer-Encoding http.ReadResponse
// would refuse. It returns nil, nil (consuming nothing) for any other head.
func readCoded(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	head, err := peekHead(br)
	if err != nil || head == nil {
		return nil, err
	}
	te, ok := headField(head, "Transfer-Encoding")
	if !ok || strings.EqualFold(strings.TrimSpace(te), "chunked") {
		return nil, nil
	}
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	proto, status, _ := strings.Cut(line, " ")
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok || major != 1 {
		return nil, fmt.Errorf("h1: malformed HTTP version %q", proto)
	}
	code, err := strconv.Atoi(strings.TrimSpace(status[:min(3, len(status))]))
	if err != nil || len(status) < 3 || code < 100 || code > 999 {
		return nil, fmt.Errorf("h1: malformed HTTP status code %q", status)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	h := http.Header(mh)
	var codings []string
	for _, v := range h["Transfer-Encoding"] {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" {
				codings = append(codings, c)
			}
		}
	}
	delete(h, "Transfer-Encoding")
	delete(h, "Content-Length") // RFC 9112 §6.3: Transfer-Encoding overrides it
	resp := &http.Response{
		Status: strings.TrimSpace(status), StatusCode: code,
		Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: h, ContentLength: -1, Close: true, Request: req,
		TransferEncoding: codings,
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || req.Method == http.MethodHead {
		resp.Body = http.NoBody // RFC 9112 §6.3 rule 1: no content whatever the fields say
		resp.TransferEncoding = nil
		resp.Close = code >= 200 // a 1xx precedes the final response on the same connection
		return resp, nil
	}
	var body io.Reader = br // read until the connection closes
	rest := codings
	if len(rest) > 0 && rest[len(rest)-1] == "chunked" {
		body, rest = httputil.NewChunkedReader(br), rest[:len(rest)-1]
	}
	if known(rest) {
		for i := len(rest) - 1; i >= 0; i-- {
			body = &lazyDecoder{src: body, coding: rest[i]}
		}
	}
	resp.Body = io.NopCloser(body)
	return resp, nil
}

// known reports whether every coding is one readCoded decodes.
func known(codings []string) bool {
	for _, c := range codings {
		switch c {
		case "gzip", "x-gzip", "deflate":
		default:
			return false
		}
	}
	return true
}

// lazyDecoder decodes a coding, starting on the first Read: making the
// decompressor reads its header, which must not block the response head.
type lazyDecoder struct {
	src    io.Reader
	coding string
	r      io.Reader
	err    error
}

func (d *lazyDecoder) Read(p []byte) (int, error) {
	if d.r == nil && d.err == nil {
		switch d.coding {
		case "deflate": // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2)
			d.r, d.err = zlib.NewReader(d.src)
		default:
			d.r, d.err = gzip.NewReader(d.src)
		}
		if d.err != nil {
			d.err = fmt.Errorf("h1: decoding transfer coding %s: %w", d.coding, d.err)
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.r.Read(p)
}

// peekHead returns the buffered head up to and including its empty line,
// reading more as needed, or nil when it does not fit in the buffer
// (http.ReadResponse then reads it).
func peekHead(br *bufio.Reader) ([]byte, error) {
	for n := max(br.Buffered(), 1); ; n = br.Buffered() + 1 {
		b, err := br.Peek(n)
		if end := headEnd(b); end > 0 {
			return b[:end], nil
		}
		if err == bufio.ErrBufferFull {
			return nil, nil
		}
		if err != nil {
			return nil, nil // let http.ReadResponse report it
		}
	}
}

// headEnd returns the length of the head at the start of b, through its
// empty line, or 0 if b does not hold all of it. Lines may end in a bare
// LF, as http.ReadResponse allows: waiting for a CRLF CRLF that never
// comes would stall a response that has no body.
func headEnd(b []byte) int {
	end := 0
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 && (end == 0 || i+3 < end) {
		end = i + 3
	}
	return end
}

// headField returns the values of every field named name in a head,
// joined with ", ".
func headField(head []byte, name string) (string, bool) {
	var vals []string
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		n, v, ok := bytes.Cut(line, []byte(":"))
		if ok && field.EqualFold(n, name) {
			vals = append(vals, string(bytes.TrimSpace(v)))
		}
	}
	return strings.Join(vals, ", "), len(vals) > 0
}
