package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// quickAndStd writes r with writeQuick and with Request.Write. ok is
// false when writeQuick declined it.
func quickAndStd(t *testing.T, r *http.Request) (quick, std string, ok bool) {
	t.Helper()
	var a, b bytes.Buffer
	bw := bufio.NewWriter(&a)
	ok = writeQuick(bw, r, nil)
	bw.Flush()
	if !ok && a.Len() > 0 {
		t.Fatalf("writeQuick declined after writing %q", a.String())
	}
	if err := r.Write(&b); err != nil && ok {
		t.Fatalf("writeQuick wrote %q; Request.Write: %v", a.String(), err)
	}
	return a.String(), b.String(), ok
}

func TestWriteQuickMatchesRequestWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		url    string
		host   string
		kv     []string
		quick  bool
	}{
		{"plain", "GET", "http://up:8080/a/b?x=1", "", nil, true},
		{"head", "HEAD", "http://up/", "", nil, true},
		{"host field", "GET", "http://up/p", "app.example:80", nil, true},
		{"empty path", "GET", "http://up", "", nil, true},
		{"escaped path", "GET", "http://up/a%20b/%2F?q=%zz", "", nil, true},
		{"sorted, multi-valued, trimmed", "GET", "http://up/", "", []string{"X-B", " 2 ", "X-A", "1", "X-A", "\t1b", "Accept", "*/*"}, true},
		{"user agent blank", "GET", "http://up/", "", []string{"User-Agent", ""}, true},
		{"user agent", "GET", "http://up/", "", []string{"User-Agent", "  curl/8 "}, true},
		{"excluded fields", "GET", "http://up/", "", []string{"Host", "evil", "Content-Length", "5", "Trailer", "X", "Transfer-Encoding", "chunked"}, true},
		{"bad host dropped", "GET", "http://up/", "bad host/", nil, true},
		{"post", "POST", "http://up/", "", nil, false},
		{"unicode host", "GET", "http://up/", "bücher.example", nil, false},
		{"ipv6 host", "GET", "http://[::1]:80/", "", nil, false},
		{"control in query", "GET", "http://up/", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Host = tc.host
			if tc.host == "" {
				r.Host = ""
			}
			for i := 0; i+1 < len(tc.kv); i += 2 {
				r.Header[tc.kv[i]] = append(r.Header[tc.kv[i]], tc.kv[i+1])
			}
			if tc.name == "control in query" {
				r.URL.RawQuery = "a\x01b" // RawQuery is written as it is
			}
			q, s, ok := quickAndStd(t, r)
			if ok != tc.quick {
				t.Fatalf("writeQuick took it: %v; want %v", ok, tc.quick)
			}
			if ok && q != s {
				t.Fatalf("writeQuick:\n%q\nRequest.Write:\n%q", q, s)
			}
		})
	}
}

func FuzzWriteQuick(f *testing.F) {
	f.Add("GET", "up:80", "/a b", "x=1", "", "X-A", "v", "Accept", " */* ", false)
	f.Add("HEAD", "up", "", "", "app", "User-Agent", "", "X-B", "2", true)
	f.Fuzz(func(t *testing.T, method, urlHost, path, rawQuery, host, k1, v1, k2, v2 string, forceQuery bool) {
		r := &http.Request{Method: method, URL: &url.URL{Scheme: "http", Host: urlHost, Path: path, RawQuery: rawQuery, ForceQuery: forceQuery},
			Host: host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		r.Header[k1] = append(r.Header[k1], v1)
		r.Header[k2] = append(r.Header[k2], v2)
		if _, err := checkRequest(r); err != nil {
			return // the transport refuses it before writing
		}
		q, s, ok := quickAndStd(t, r)
		if ok && q != s {
			t.Fatalf("writeQuick:\n%q\nRequest.Write:\n%q", q, s)
		}
		if ok && strings.Count(q, "\r\n\r\n") != 1 {
			t.Fatalf("head %q", q)
		}
	})
}
