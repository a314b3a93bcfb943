package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// The common response, an HTTP/1.1 head with one Content-Length that
// arrived whole in the first read, is parsed here rather than by
// http.ReadResponse: in one pass over the buffered bytes, with the field
// names and values sharing one string and the header's value slices one
// backing array. Like the server-side fast path (proxy/internal/fastpath/head.go), the
// parser is narrower than RFC 9112 on purpose: whatever it does not accept
// (another version, 1xx, 204, 304, a response to HEAD, chunked or
// close-delimited framing, trailers, obs-fold, bare LF, a head not yet
// buffered whole) is left in the buffer for http.ReadResponse, which
// parses it as it always has. So it only has to be right about what it
// accepts: FuzzParseResponseHead checks that against http.ReadResponse.

// maxQuickFields bounds the fields of a head the quick parser takes.
const maxQuickFields = 64

// quickSpan is a field's name and value as offsets into the head.
type quickSpan struct{ n0, n1, v0, v1 int }

// parseResponseHead parses the response head at the start of b for a
// request with method. It returns the response (Body and Request unset)
// and the head's length, or n == 0 when http.ReadResponse must parse it.
func parseResponseHead(b []byte, method string) (resp *http.Response, n int) {
	if method == http.MethodHead {
		return nil, 0
	}
	// Status line: "HTTP/1.1 DDD reason\r\n", reason possibly empty.
	const proto = "HTTP/1.1 "
	if len(b) < len(proto)+5 || string(b[:len(proto)]) != proto {
		return nil, 0
	}
	i := len(proto)
	d0, d1, d2 := b[i], b[i+1], b[i+2]
	if d0 < '2' || d0 > '5' || d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9' {
		return nil, 0
	}
	code := int(d0-'0')*100 + int(d1-'0')*10 + int(d2-'0')
	if code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, 0
	}
	i += 3
	statusStart := len(proto)
	var statusEnd int
	switch b[i] {
	case '\r':
		statusEnd = i
	case ' ':
		for i++; i < len(b) && b[i] != '\r'; i++ {
			if c := b[i]; c < ' ' && c != '\t' || c == 0x7f {
				return nil, 0
			}
		}
		statusEnd = i
	default:
		return nil, 0
	}
	if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return nil, 0
	}
	i += 2

	// Fields, up to the empty line.
	var spans [maxQuickFields]quickSpan
	nf := 0
	cl := int64(-1)
	closeConn := false
	for {
		if i+1 >= len(b) {
			return nil, 0 // not all buffered
		}
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return nil, 0
			}
			i += 2
			break
		}
		if nf == maxQuickFields {
			return nil, 0
		}
		n0 := i
		for i < len(b) && field.IsToken(b[i]) {
			i++
		}
		if i == n0 || i >= len(b) || b[i] != ':' {
			return nil, 0 // obs-fold, a bad name, or not all buffered
		}
		n1 := i
		i++
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		v0 := i
		for i < len(b) && b[i] != '\r' {
			if c := b[i]; c < ' ' && c != '\t' || c == 0x7f {
				return nil, 0
			}
			i++
		}
		if i+1 >= len(b) || b[i+1] != '\n' {
			return nil, 0
		}
		v1 := i
		for v1 > v0 && (b[v1-1] == ' ' || b[v1-1] == '\t') {
			v1--
		}
		i += 2
		name := b[n0:n1]
		switch {
		case field.EqualFold(name, "Content-Length"):
			if cl >= 0 {
				return nil, 0 // more than one: net/http's rules
			}
			if cl = parseLength(b[v0:v1]); cl < 0 {
				return nil, 0
			}
		case field.EqualFold(name, "Transfer-Encoding"), field.EqualFold(name, "Trailer"):
			return nil, 0
		case field.EqualFold(name, "Connection"):
			if hasCloseToken(b[v0:v1]) {
				closeConn = true
			}
		}
		spans[nf] = quickSpan{n0, n1, v0, v1}
		nf++
	}
	if cl < 0 {
		return nil, 0 // close-delimited
	}

	// One string for the status, names and values: names are made
	// canonical in the copy first.
	var sb strings.Builder // not zeroed, and String does not copy
	sb.Grow(i)
	at := 0
	for _, s := range spans[:nf] {
		sb.Write(b[at:s.n0])
		field.WriteCanonical(&sb, b[s.n0:s.n1])
		at = s.n1
	}
	sb.Write(b[at:i])
	str := sb.String()
	h := make(http.Header, nf)
	vals := make([]string, nf)
	for k, s := range spans[:nf] {
		name := str[s.n0:s.n1]
		vals[k] = str[s.v0:s.v1]
		if prior, ok := h[name]; ok {
			h[name] = append(prior, vals[k])
		} else {
			h[name] = vals[k : k+1 : k+1]
		}
	}
	if closeConn {
		delete(h, "Connection") // as net/http's shouldClose does for a response
	}
	resp = &http.Response{
		Status:        str[statusStart:statusEnd],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: cl,
		Close:         closeConn,
	}
	return resp, i
}

// parseLength parses a Content-Length value: 1 to 18 digits.
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// hasCloseToken reports whether a Connection value lists "close".
func hasCloseToken(v []byte) bool { return field.HasToken(v, "close") }

// readQuick parses the response head in br's buffer if parseResponseHead
// takes it, waiting for the first bytes. It returns nil when
// http.ReadResponse must read the head (nothing has been consumed then).
// The response's Body is http.NoBody, or nil for a body of ContentLength
// bytes that follows in br: conn.response reads it with a fixedBody.
func readQuick(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	b, _ := br.Peek(br.Buffered())
	resp, n := parseResponseHead(b, req.Method)
	if n == 0 {
		return nil, nil
	}
	br.Discard(n)
	resp.Request = req
	if resp.ContentLength == 0 {
		resp.Body = http.NoBody
	}
	return resp, nil
}

// fixedBody reads a body of known length from the connection.
type fixedBody struct {
	br     *bufio.Reader
	remain int64
}

func (f *fixedBody) Read(p []byte) (int, error) {
	if f.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.remain {
		p = p[:f.remain]
	}
	n, err := f.br.Read(p)
	f.remain -= int64(n)
	if f.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *fixedBody) Close() error { return nil }
