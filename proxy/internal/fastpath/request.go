package fastpath

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// buildRequest makes the http.Request that http.ReadRequest (and the
// server's own clean-up: no Host in Header, an empty body) would make of
// h, a head parseHead found fast, with ctx as its context. The head is
// already parsed and validated, so this is the assembly alone: the names
// (made canonical) and values share one string, the header's values one
// backing array. FuzzParseHead compares the result with http.ReadRequest's
// for every head it finds fast. A plain target's URL is made in into (the
// exchange's), others by url.ParseRequestURI. The header goes into hdr, an
// empty map, or a new one if hdr is nil. ok is false when the target is
// not a URL net/http accepts.
func buildRequest(ctx context.Context, h *Head, into *url.URL, hdr http.Header) (req *http.Request, ok bool) {
	// The target, names and values, in one string.
	size := len(h.target)
	for i := range h.nf {
		size += len(h.fields[i].name) + len(h.fields[i].value)
	}
	var sb strings.Builder // not zeroed, and String does not copy
	sb.Grow(size)
	sb.Write(h.target)
	for i := range h.nf {
		f := &h.fields[i]
		field.WriteCanonical(&sb, f.name)
		sb.Write(f.value)
	}
	all := sb.String()
	target := all[:len(h.target)]
	u := into
	if !quickURL(target, u) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, false
		}
	}
	method := http.MethodGet
	if string(h.method) == http.MethodHead {
		method = http.MethodHead
	}
	if hdr == nil {
		hdr = make(http.Header, h.nf)
	}
	vals := make([]string, h.nf)
	off := len(target)
	var hostField string
	for i := range h.nf {
		f := &h.fields[i]
		name := all[off : off+len(f.name)]
		off += len(f.name)
		vals[i] = all[off : off+len(f.value)]
		off += len(f.value)
		if name == "Host" {
			hostField = vals[i] // the server takes it out of the header
			continue
		}
		if prior, ok := hdr[name]; ok {
			hdr[name] = append(prior, vals[i])
		} else {
			hdr[name] = vals[i : i+1 : i+1]
		}
	}
	// net/http's fixPragmaCacheControl (RFC 9111 §5.4).
	if hp := hdr["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	host := u.Host
	if host == "" {
		host = hostField
	}
	req = (&http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: target,
		Close:      h.connClose,
	}).WithContext(ctx)
	return req, true
}

// quickURL is url.ParseRequestURI for the plain target, into u: an
// origin-form or "http://" absolute-form target whose host is letters,
// digits, '.', '-' and a port, and whose path holds only the characters
// url.URL keeps as they are (so no RawPath). It returns false for anything
// else, which ParseRequestURI then parses. FuzzParseHead compares the two.
func quickURL(target string, u *url.URL) bool {
	*u = url.URL{}
	rest := target
	if strings.HasPrefix(rest, "http://") {
		rest = rest[len("http://"):]
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		host := rest[:end]
		if !plainHost(host) {
			return false
		}
		u.Scheme, u.Host, rest = "http", host, rest[end:]
	} else if len(rest) == 0 || rest[0] != '/' {
		return false
	}
	path := rest
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		path = rest[:i]
		q := rest[i+1:]
		if q == "" && strings.Count(rest, "?") == 1 {
			u.ForceQuery = true
		}
		for j := 0; j < len(q); j++ {
			if c := q[j]; c <= ' ' || c >= 0x7f || c == '#' {
				return false
			}
		}
		u.RawQuery = q
	}
	for j := 0; j < len(path); j++ {
		switch c := path[j]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '~' || c == '$' || c == '&' || c == '+' ||
			c == ',' || c == '/' || c == ':' || c == ';' || c == '=' || c == '@':
		default:
			return false
		}
	}
	u.Path = path
	return true
}

// plainHost reports whether h is a host[:port] of letters, digits, '.'
// and '-', which url.Parse takes as it is.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	colon := strings.IndexByte(h, ':')
	name, port := h, ""
	if colon >= 0 {
		name, port = h[:colon], h[colon+1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}
