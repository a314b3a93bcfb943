package fastpath

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		want   headVerdict
		policy bool  // needsPolicy
		close  bool  // connClose
		body   int64 // bodyLen
	}{
		{"origin-form GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", headFast, false, false, 0},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", headFast, false, false, 0},
		{"absolute-form", "GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n", headFast, false, false, 0},
		{"case-insensitive names", "GET / HTTP/1.1\r\nhOsT: x\r\nconnection: Close\r\n\r\n", headFast, false, true, 0},
		{"keep-alive token", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", headFast, false, false, 0},
		{"Content-Length 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", headFast, false, false, 0},
		{"OWS trimmed", "GET / HTTP/1.1\r\nHost:  x \t\r\n\r\n", headFast, false, false, 0},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\r\n\r\n", headFast, false, false, 0},
		{"Cache-Control needs the policy", "GET / HTTP/1.1\r\nHost: x\r\nCache-Control: no-cache\r\n\r\n", headFast, true, false, 0},
		{"Range needs the policy", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n", headFast, true, false, 0},
		{"If-None-Match needs the policy", "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n\r\n", headFast, true, false, 0},
		{"Authorization needs the policy", "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n", headFast, true, false, 0},
		{"unkeyed override needs the policy", "GET / HTTP/1.1\r\nHost: x\r\nX-Original-URL: /admin\r\n\r\n", headFast, true, false, 0},

		{"POST with a body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", headHandoff, false, false, 5},
		{"GET with a body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", headHandoff, false, false, 3},
		{"DELETE", "DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n", headHandoff, false, false, 0},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", headHandoff, false, false, 0},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", headHandoff, false, false, 0},
		{"Upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", headHandoff, false, false, 0},
		{"Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", headHandoff, false, false, 0},
		{"hop-by-hop list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Foo\r\n\r\n", headHandoff, false, false, 0},

		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", headOpaque, false, false, 0},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", headOpaque, false, false, 0},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", headOpaque, false, false, 0},
		{"CL and TE (smuggling)", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", headOpaque, false, false, 0},
		{"two Content-Lengths", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", headOpaque, false, false, 0},
		{"signed Content-Length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", headOpaque, false, false, 0},
		{"no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", headOpaque, false, false, 0},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", headOpaque, false, false, 0},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", headOpaque, false, false, 0},
		{"bare LF in a field", "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", headOpaque, false, false, 0},
		{"bare CR", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", headOpaque, false, false, 0},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", headOpaque, false, false, 0},
		{"control in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", headOpaque, false, false, 0},
		{"NUL in the target", "GET /a\x00 HTTP/1.1\r\nHost: x\r\n\r\n", headOpaque, false, false, 0},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", headOpaque, false, false, 0},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", headOpaque, false, false, 0},
		{"not HTTP at all", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", headOpaque, false, false, 0},

		{"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", headIncomplete, false, false, 0},
		{"incomplete line", "GET /a", headIncomplete, false, false, 0},
		{"incomplete, bare LF: net/http reads it now", "GET / HTTP/1.1\nHost: x\n", headOpaque, false, false, 0},
		{"incomplete, bare LF after CRLF", "GET / HTTP/1.1\r\nHost: x\r\n\n", headOpaque, false, false, 0},
		{"HTTP/0.9", "GET /\n", headOpaque, false, false, 0},
		{"HTTP/0.9 with CRLF", "GET /a\r\n", headOpaque, false, false, 0},
		{"incomplete HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n", headOpaque, false, false, 0},
		{"incomplete after the request line", "GET / HTTP/1.1\r\n", headIncomplete, false, false, 0},
		{"incomplete CR at the end", "GET / HTTP/1.1\r", headIncomplete, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Head{policyFields: []string{"X-Original-Url"}} // as the proxy sets Options.PolicyFields
			got, _ := parseHead([]byte(tt.raw), 0, &h)
			if got != tt.want {
				t.Fatalf("verdict = %d; want %d", got, tt.want)
			}
			if got == headIncomplete || got == headOpaque {
				return
			}
			if h.needsPolicy != tt.policy || h.connClose != tt.close || h.bodyLen != tt.body {
				t.Errorf("needsPolicy %v connClose %v bodyLen %d; want %v %v %d", h.needsPolicy, h.connClose, h.bodyLen, tt.policy, tt.close, tt.body)
			}
			if h.n != len(tt.raw) {
				t.Errorf("head length %d; want %d", h.n, len(tt.raw))
			}
		})
	}
}

// TestParseHeadResumes checks that a head delivered a byte at a time is
// found once whole, whatever the resume offsets.
func TestParseHeadResumes(t *testing.T) {
	raw := "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nGET /y HTTP/1.1\r\n"
	var h Head
	scan := 0
	for n := 1; n <= len(raw); n++ {
		v, s := parseHead([]byte(raw[:n]), scan, &h)
		if v == headIncomplete {
			scan = s
			continue
		}
		if v != headFast || n != strings.Index(raw, "\r\n\r\n")+4 || string(h.target) != "/x" {
			t.Fatalf("at %d bytes: verdict %d, target %q", n, v, h.target)
		}
		return
	}
	t.Fatal("never complete")
}

// FuzzParseHead checks that the parser never panics, and that whatever it
// accepts as a fast request net/http parses to the same method, target
// and length.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD http://x/a?b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Head
		v, scan := parseHead(b, 0, &h)
		if v == headIncomplete {
			if scan < 0 || scan > len(b) {
				t.Fatalf("scan %d outside 0..%d", scan, len(b))
			}
			return
		}
		if v == headOpaque {
			return
		}
		if h.n <= 0 || h.n > len(b) {
			t.Fatalf("head length %d outside 1..%d", h.n, len(b))
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:h.n])))
		if err != nil {
			// serveOne answers 400, as net/http would, when buildRequest
			// refuses the target or the Host is invalid.
			if _, ok := buildRequest(context.Background(), &h, new(url.URL), nil); v == headFast && ok && httpguts.ValidHostHeader(string(h.host)) {
				t.Fatalf("fast request net/http rejects: %v\n%q", err, b[:h.n])
			}
			return
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) {
			t.Fatalf("net/http reads %s %s; parser %s %s", req.Method, req.RequestURI, h.method, h.target)
		}
		if v == headFast && (req.ContentLength > 0 || len(req.TransferEncoding) > 0) {
			t.Fatalf("fast request with a body: %q", b[:h.n])
		}
		if v == headHandoff && req.ContentLength != h.bodyLen && !(req.ContentLength == -1 && h.bodyLen == 0) {
			t.Fatalf("Content-Length %d; parser %d", req.ContentLength, h.bodyLen)
		}
		if v == headFast {
			checkBuildRequest(t, &h, req, b[:h.n])
		}
	})
}

// checkBuildRequest fails unless buildRequest made of h the request
// net/http's server would have (want, from http.ReadRequest, after the
// server's own clean-up).
func checkBuildRequest(t *testing.T, h *Head, want *http.Request, head []byte) {
	t.Helper()
	got, ok := buildRequest(context.Background(), h, new(url.URL), nil)
	if !ok {
		t.Fatalf("buildRequest refused what net/http reads: %q", head)
	}
	delete(want.Header, "Host")
	gu, wu := *got.URL, *want.URL // Userinfo compared by value, not pointer
	if gu.User.String() != wu.User.String() {
		t.Fatalf("%q: userinfo %q; net/http %q", head, gu.User, wu.User)
	}
	gu.User, wu.User = nil, nil
	if got.Method != want.Method || got.URL.String() != want.URL.String() || gu != wu ||
		got.Proto != want.Proto || got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.Host != want.Host || got.RequestURI != want.RequestURI || got.Close != want.Close ||
		got.ContentLength != want.ContentLength || len(want.TransferEncoding) > 0 || want.Trailer != nil {
		t.Fatalf("%q\nbuilt:    %s %v host=%q uri=%q close=%v cl=%d\nnet/http: %s %v host=%q uri=%q close=%v cl=%d",
			head, got.Method, got.URL, got.Host, got.RequestURI, got.Close, got.ContentLength,
			want.Method, want.URL, want.Host, want.RequestURI, want.Close, want.ContentLength)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q: header\nbuilt:    %q\nnet/http: %q", head, got.Header, want.Header)
	}
	if want.Body != http.NoBody || got.Body != http.NoBody {
		t.Fatalf("%q: body %T; net/http %T", head, got.Body, want.Body)
	}
}

// TestBuildRequest: the requests the fast path builds are net/http's.
func TestBuildRequest(t *testing.T) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD http://x.example:8080/a%20b?c=d HTTP/1.1\r\nhost: other\r\nconnection: close\r\n\r\n",
		"GET /p?q HTTP/1.1\r\nHost: x\r\nx-a: 1\r\nX-A: 2\r\nACCEPT-encoding: gzip \r\ncontent-length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\nCache-Control: max-age=5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\tv\t\r\nConnection: keep-alive\r\n\r\n",
		// Targets quickURL builds, and some it leaves to url.ParseRequestURI.
		"GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b?c HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?? HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET //a/b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a!b'(c)*d%41 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a;b=c,d$e&f+g:h@i~j HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x.example:8080 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x?y=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://X.Example/P/Q?R HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x:/p HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET HTTP://x/p HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://[::1]:80/p HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://u@x/p HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		var h Head
		if v, _ := parseHead([]byte(s), 0, &h); v != headFast {
			t.Fatalf("%q: verdict %d; want fast", s, v)
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			t.Fatal(err)
		}
		checkBuildRequest(t, &h, want, []byte(s))
	}
}

// TestWriteFields: the fast path writes a header as Header.WriteSubset.
func TestWriteFields(t *testing.T) {
	h := http.Header{
		"Content-Type":    {"text/plain"},
		"X-Multi":         {"a", " b ", "c\r\nd"},
		"Bad Name":        {"dropped"},
		"Content-Length":  {"5"},
		"X-Empty":         {""},
		"Set-Cookie":      {"a=1", "b=2"},
		"X-Tab":           {"\tv\t"},
		"Accept-Encoding": {"gzip"},
	}
	for _, exclude := range [][]string{nil, {"Content-Length"}, {"Content-Length", "Set-Cookie"}} {
		var got, want bytes.Buffer
		bw := bufio.NewWriter(&got)
		writeFields(bw, h, exclude)
		bw.Flush()
		ex := map[string]bool{}
		for _, k := range exclude {
			ex[k] = true
		}
		h.WriteSubset(&want, ex)
		if got.String() != want.String() {
			t.Errorf("exclude %v:\nwriteFields: %q\nWriteSubset: %q", exclude, got.String(), want.String())
		}
	}
}
