package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

var headSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
	"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: keep-alive, Close\r\n\r\nabc",
	"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 500 Internal Server Error\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nContent-Length:  7  \r\nX-Trail: v \t\r\n\r\n1234567",
	"HTTP/1.1 200 OK\r\nWWW-AUTHENTICATE: x\r\nx-forwarded-FOR: y\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: \x7f\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
}

// TestParseResponseHead: what the quick parser takes and leaves.
func TestParseResponseHead(t *testing.T) {
	for _, tc := range []struct {
		in     string
		method string
		quick  bool
	}{
		{headSeeds[0], "GET", true},
		{headSeeds[0], "HEAD", false},
		{headSeeds[1], "GET", true},
		{headSeeds[2], "GET", true},
		{headSeeds[3], "GET", true},
		{headSeeds[4], "GET", true},
		{headSeeds[5], "GET", true},
		{headSeeds[6], "GET", true},
		{headSeeds[7], "GET", true},
		{headSeeds[8], "GET", false},  // repeated Content-Length
		{headSeeds[9], "GET", false},  // chunked
		{headSeeds[10], "GET", false}, // 1xx
		{headSeeds[11], "GET", false}, // 204
		{headSeeds[12], "GET", false}, // HTTP/1.0
		{headSeeds[13], "GET", false}, // obs-fold
		{headSeeds[14], "GET", false}, // bare LF
		{headSeeds[15], "GET", false}, // incomplete
		{headSeeds[16], "GET", false}, // signed length
		{headSeeds[17], "GET", false}, // empty length
		{headSeeds[18], "GET", false}, // DEL in a value
		{headSeeds[19], "GET", true},  // obs-text in a value
		{headSeeds[20], "GET", false}, // space in a name
		{headSeeds[21], "GET", false}, // Trailer
		{headSeeds[22], "GET", false}, // close-delimited
	} {
		_, n := parseResponseHead([]byte(tc.in), tc.method)
		if (n > 0) != tc.quick {
			t.Errorf("%q %s: quick = %v; want %v", tc.in, tc.method, n > 0, tc.quick)
		}
		if n > 0 {
			checkAgainstNetHTTP(t, []byte(tc.in), tc.method)
		}
	}
}

// checkAgainstNetHTTP fails unless http.ReadResponse reads b as
// parseResponseHead did, when parseResponseHead takes it.
func checkAgainstNetHTTP(t *testing.T, b []byte, method string) {
	t.Helper()
	got, n := parseResponseHead(b, method)
	if n == 0 {
		return
	}
	req := &http.Request{Method: method}
	br := bufio.NewReader(bytes.NewReader(b))
	want, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("quick parser took %q; net/http: %v", b, err)
	}
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.ContentLength != want.ContentLength || got.Close != want.Close ||
		want.TransferEncoding != nil || want.Trailer != nil || want.Uncompressed {
		t.Fatalf("%q:\nquick:    %q %d %s CL %d close %v\nnet/http: %q %d %s CL %d close %v TE %v trailer %v",
			b, got.Status, got.StatusCode, got.Proto, got.ContentLength, got.Close,
			want.Status, want.StatusCode, want.Proto, want.ContentLength, want.Close, want.TransferEncoding, want.Trailer)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q: header\nquick:    %q\nnet/http: %q", b, got.Header, want.Header)
	}
	// Both leave the body in the same place.
	wantBody, werr := io.ReadAll(want.Body)
	gotBody, gerr := io.ReadAll(&fixedBody{br: bufio.NewReader(bytes.NewReader(b[n:])), remain: got.ContentLength})
	if got.ContentLength == 0 {
		gotBody, gerr = nil, nil
		if wantBody != nil && len(wantBody) == 0 {
			wantBody = nil
		}
	}
	if !bytes.Equal(gotBody, wantBody) || (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: body quick %q (%v); net/http %q (%v)", b, gotBody, gerr, wantBody, werr)
	}
}

func FuzzParseResponseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		checkAgainstNetHTTP(t, b, method)
	})
}

// TestFixedBodyShort: a body that ends early is an unexpected EOF.
func TestFixedBodyShort(t *testing.T) {
	f := &fixedBody{br: bufio.NewReader(bytes.NewReader([]byte("abc"))), remain: 5}
	b, err := io.ReadAll(f)
	if string(b) != "abc" || err != io.ErrUnexpectedEOF {
		t.Fatalf("%q %v", b, err)
	}
}
