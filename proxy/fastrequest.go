package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// buildRequest makes the http.Request that http.ReadRequest (and the
// server's own clean-up: no Host in Header, an empty body) would make of
// h, a head parseHead found fast, with ctx as its context. The head is
// already parsed and validated, so this is the assembly alone: the names
// (made canonical) and values share one string, the header's values one
// backing array. FuzzParseHead compares the result with http.ReadRequest's
// for every head it finds fast. ok is false when the target is not a URL
// net/http accepts.
func buildRequest(ctx context.Context, h *fastHead) (req *http.Request, ok bool) {
	target := string(h.target)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	method := http.MethodGet
	if string(h.method) == http.MethodHead {
		method = http.MethodHead
	}
	// Names and values, in one string.
	size := 0
	for i := range h.nf {
		size += len(h.fields[i].name) + len(h.fields[i].value)
	}
	var sb strings.Builder // not zeroed, and String does not copy
	sb.Grow(size)
	for i := range h.nf {
		f := &h.fields[i]
		writeCanonicalName(&sb, f.name)
		sb.Write(f.value)
	}
	all := sb.String()
	hdr := make(http.Header, h.nf)
	vals := make([]string, h.nf)
	off := 0
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

// writeCanonicalName writes a field name (all token bytes) as
// textproto.CanonicalMIMEHeaderKey would make it.
func writeCanonicalName(sb *strings.Builder, name []byte) {
	upper := true
	for _, c := range name {
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
		upper = c == '-'
	}
}
