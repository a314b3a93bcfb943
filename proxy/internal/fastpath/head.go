package fastpath

import (
	"bytes"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// The fast path parses HTTP/1.1 request heads itself, without allocating,
// and serves the common shape of request (a bodiless GET or HEAD) on the
// connection's own goroutine. Its parser is deliberately narrower than RFC
// 9112: whatever it does not accept is handed, byte for byte, to net/http,
// which answers it or rejects it as it always has. So the parser only has
// to be right about what it accepts, never about what it refuses.

// headVerdict is what parseHead made of the bytes it was given.
type headVerdict uint8

const (
	headIncomplete headVerdict = iota // no end of head yet
	headFast                          // a request the fast path serves
	headHandoff                       // well formed, framed by Content-Length (or none): net/http serves it
	headOpaque                        // anything else: net/http owns the connection from here on
)

// maxFastFields bounds the header fields of a request the fast path takes.
const maxFastFields = 48

type headField struct{ name, value []byte }

// Head is a parsed request head. Its slices alias the connection's
// read buffer and are valid until the next read.
type Head struct {
	policyFields []string // Options.PolicyFields, kept across parses

	n      int // length of the head, through the empty line
	method []byte
	target []byte
	fields [maxFastFields]headField
	nf     int
	host   []byte

	bodyLen   int64 // Content-Length, for a handed-off request
	connClose bool

	// Fields that make a request ineligible for the zero-allocation hit:
	// they need the policy's full treatment (conditionals, ranges, request
	// directives, credentials, unkeyed overrides).
	needsPolicy bool
}

// get returns the first value of the field named name (canonical form),
// compared case-insensitively.
func (h *Head) get(name string) []byte {
	for i := 0; i < h.nf; i++ {
		if field.EqualFold(h.fields[i].name, name) {
			return h.fields[i].value
		}
	}
	return nil
}

// Get returns the first value of the field named name (canonical form),
// compared case-insensitively, or nil.
func (h *Head) Get(name string) []byte { return h.get(name) }

// FieldIs reports whether the first field named name has value (a route
// condition).
func (h *Head) FieldIs(name, value string) bool { return string(h.get(name)) == value }

// FieldSet reports whether the first field named name has a value.
func (h *Head) FieldSet(name string) bool { return len(h.get(name)) > 0 }

// Values returns every value of name, in order (allocates; used only to
// build a Vary secondary key).
func (h *Head) Values(name string) []string { return h.values(name) }

// Method, Target and HostField are the request line's method and target
// and the Host field's value.
func (h *Head) Method() []byte    { return h.method }
func (h *Head) Target() []byte    { return h.target }
func (h *Head) HostField() []byte { return h.host }

// NeedsPolicy reports whether the request carries a field that changes
// how a stored response may be used: a conditional, Range,
// Cache-Control, Pragma, credentials, or one of Options.PolicyFields.
func (h *Head) NeedsPolicy() bool { return h.needsPolicy }

// ConnClose reports whether the request asked to close the connection.
func (h *Head) ConnClose() bool { return h.connClose }

// values returns every value of name, in order (allocates; used only to
// build a Vary secondary key).
func (h *Head) values(name string) []string {
	var vs []string
	for i := 0; i < h.nf; i++ {
		if field.EqualFold(h.fields[i].name, name) {
			vs = append(vs, string(h.fields[i].value))
		}
	}
	return vs
}

// parseHead parses the request head at the start of b. scanFrom is where
// the search for the end of the head may resume (bytes before it have been
// searched already); it returns the updated value with headIncomplete.
func parseHead(b []byte, scanFrom int, h *Head) (headVerdict, int) {
	end := bytes.Index(b[scanFrom:], crlfcrlf)
	if end < 0 {
		// Anything that cannot be the start of a GET or HEAD is opaque
		// right away: net/http (or HTTP/2's preface, or a tunnel) must get
		// the bytes without waiting for an end of head that may never come.
		// So is a head the parser would refuse once whole: a bare LF, which
		// net/http takes as a line end (RFC 9112 §2.2) and so may already
		// have a whole request in, and a request line that is not
		// HTTP/1.1 (HTTP/0.9's "GET /", answered 400 by net/http).
		if !plausibleStart(b) || hasBareLF(b, scanFrom) || !firstLineHTTP11(b) {
			return headOpaque, 0
		}
		return headIncomplete, max(0, len(b)-3)
	}
	head := b[:scanFrom+end+4]
	*h = Head{n: len(head), policyFields: h.policyFields}
	v := h.parse(head[:len(head)-2])
	return v, 0
}

var crlfcrlf = []byte("\r\n\r\n")

// hasBareLF reports whether b has an LF not preceded by CR at or after
// from.
func hasBareLF(b []byte, from int) bool {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		i++
	}
	return false
}

// firstLineHTTP11 reports whether the request line in b, if b holds all
// of it, ends with the version HTTP/1.1.
func firstLineHTTP11(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	return i < 0 || bytes.HasSuffix(b[:i], []byte(" HTTP/1.1\r"))
}

// plausibleStart reports whether b could begin a request the parser might
// accept: a method token.
func plausibleStart(b []byte) bool {
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if !field.IsToken(c) {
			return false
		}
		if i > 16 {
			return false
		}
	}
	return true
}

// parse fills h from head, which ends with the CRLF of its last field line.
func (h *Head) parse(head []byte) headVerdict {
	line, rest, ok := cutLine(head)
	if !ok {
		return headOpaque
	}
	// request-line = method SP request-target SP HTTP-version
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headOpaque
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !field.IsToken(c) {
			return headOpaque
		}
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headOpaque
	}
	h.target = line[:sp]
	if string(line[sp+1:]) != "HTTP/1.1" {
		return headOpaque // HTTP/1.0 and the rest: net/http
	}
	for _, c := range h.target {
		if c <= ' ' || c >= 0x7f {
			return headOpaque
		}
	}
	verdict := headFast
	if m := string(h.method); m != "GET" && m != "HEAD" {
		verdict = headHandoff
	}
	if h.target[0] != '/' && !field.HasPrefixFold(h.target, "http://") {
		verdict = headHandoff // authority-form, asterisk-form, other schemes
	}
	var sawCL, sawTE bool
	for len(rest) > 0 {
		line, rest, ok = cutLine(rest)
		if !ok || len(line) == 0 {
			return headOpaque
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return headOpaque // includes obs-fold (a line starting with SP/HTAB)
		}
		name, value := line[:colon], field.TrimOWS(line[colon+1:])
		for _, c := range name {
			if !field.IsToken(c) {
				return headOpaque
			}
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return headOpaque
			}
		}
		if h.nf == maxFastFields {
			verdict = max(verdict, headHandoff)
		} else {
			h.fields[h.nf] = headField{name, value}
			h.nf++
		}
		switch len(name) {
		case 4:
			if field.EqualFold(name, "Host") {
				if h.host != nil {
					return headOpaque // two Host fields: net/http answers 400
				}
				h.host = value
			}
		case 14:
			if field.EqualFold(name, "Content-Length") {
				if sawCL {
					return headOpaque
				}
				sawCL = true
				n, ok := parseDecimal(value)
				if !ok {
					return headOpaque
				}
				h.bodyLen = n
				if n > 0 {
					verdict = max(verdict, headHandoff)
				}
			}
		case 17:
			if field.EqualFold(name, "Transfer-Encoding") {
				sawTE = true
			}
		case 10:
			if field.EqualFold(name, "Connection") {
				if !h.connectionTokens(value) {
					verdict = max(verdict, headHandoff)
				}
			}
		}
		if verdict == headFast && ineligible(name) {
			verdict = headHandoff
		}
		if !h.needsPolicy && needsPolicy(name, h.policyFields) {
			h.needsPolicy = true
		}
	}
	if sawTE {
		return headOpaque // chunked (or worse): only net/http frames it
	}
	if h.host == nil {
		return headOpaque // RFC 9112 §3.2: 400, from net/http
	}
	return verdict
}

// connectionTokens records "close" and reports whether every token of a
// Connection field value is one the fast path understands.
func (h *Head) connectionTokens(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = field.TrimOWS(v[:i]), v[i+1:]
		} else {
			tok, v = field.TrimOWS(v), nil
		}
		switch {
		case len(tok) == 0:
		case field.EqualFold(tok, "close"):
			h.connClose = true
		case field.EqualFold(tok, "keep-alive"):
		default:
			return false // "upgrade", or a hop-by-hop field list
		}
	}
	return true
}

// ineligible lists fields whose requests the fast path leaves to net/http:
// a protocol switch, an expectation, and fields net/http gives meaning to.
func ineligible(name []byte) bool {
	switch len(name) {
	case 2:
		return field.EqualFold(name, "Te")
	case 6:
		return field.EqualFold(name, "Expect")
	case 7:
		return field.EqualFold(name, "Upgrade") || field.EqualFold(name, "Trailer")
	case 14:
		return field.EqualFold(name, "Http2-Settings")
	}
	return false
}

// needsPolicy lists request fields that change how a stored response may
// be used, so a request carrying one takes the general path.
func needsPolicy(name []byte, extra []string) bool {
	switch len(name) {
	case 5:
		return field.EqualFold(name, "Range")
	case 6:
		return field.EqualFold(name, "Pragma")
	case 8:
		return field.EqualFold(name, "If-Match") || field.EqualFold(name, "If-Range")
	case 13:
		return field.EqualFold(name, "Cache-Control") || field.EqualFold(name, "If-None-Match") ||
			field.EqualFold(name, "Authorization")
	case 17:
		return field.EqualFold(name, "If-Modified-Since")
	case 19:
		return field.EqualFold(name, "If-Unmodified-Since") || field.EqualFold(name, "Proxy-Authorization")
	}
	for _, f := range extra {
		if field.EqualFold(name, f) {
			return true
		}
	}
	return false
}

func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 || b[i-1] != '\r' {
		return nil, nil, false // bare LF, or no line end
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false // bare CR
	}
	return line, b[i+1:], true
}

// parseDecimal parses a Content-Length value: 1*DIGIT, at most 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
