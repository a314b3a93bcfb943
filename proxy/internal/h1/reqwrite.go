package h1

import (
	"bufio"
	"net/http"
	"net/http/httptrace"
	"slices"

	"golang.org/x/net/http/httpguts"
)

// maxQuickKeys bounds the header keys of a request writeQuick takes.
const maxQuickKeys = 48

// writeQuick writes the head of a bodiless GET or HEAD as
// http.Request.Write would, byte for byte, without its transferWriter,
// formatted prints and pooled sorter. It reports false, having written
// nothing, for any other request, which Request.Write then writes.
// TestWriteQuickMatchesRequestWrite and FuzzWriteQuick hold the two to
// the same bytes. Header names and values were validated by checkRequest.
func writeQuick(bw *bufio.Writer, r *http.Request, trace *httptrace.ClientTrace) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.ContentLength != 0 ||
		(r.Body != nil && r.Body != http.NoBody) || len(r.TransferEncoding) > 0 || r.Trailer != nil ||
		r.Close || r.URL.Opaque != "" || trace != nil {
		return false
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 || host[i] == '[' {
			return false // Punycode, IPv6 zones: Request.Write's business
		}
	}
	if !httpguts.ValidHostHeader(host) {
		host = ""
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if containsCTL(path) || containsCTL(r.URL.RawQuery) {
		return false // Request.Write refuses it, with its error
	}
	var keys [maxQuickKeys]string
	nk := 0
	for k := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if nk == len(keys) {
			return false
		}
		keys[nk] = k
		nk++
	}
	slices.Sort(keys[:nk])

	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if r.URL.ForceQuery || r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1"
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = trimValue(vv[0])
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua)
		bw.WriteString("\r\n")
	}
	for _, k := range keys[:nk] {
		for _, v := range r.Header[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(trimValue(v))
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return true
}

// trimValue trims what textproto.TrimString does from a validated value
// (no CR or LF left to turn into spaces).
func trimValue(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

func containsCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}
