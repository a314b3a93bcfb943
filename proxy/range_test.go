package proxy

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSliceBody(t *testing.T) {
	const src = "0123456789"
	for _, tt := range []struct {
		name    string
		skip, n int64
		r       io.Reader
		want    string
		err     error
	}{
		{"middle", 2, 3, strings.NewReader(src), "234", nil},
		{"to the end", 7, 3, strings.NewReader(src), "789", nil},
		{"one byte at a time", 1, 4, iotest.OneByteReader(strings.NewReader(src)), "1234", nil},
		{"body shorter than the skip", 20, 1, strings.NewReader(src), "", io.ErrUnexpectedEOF},
		{"body shorter than the range", 8, 5, strings.NewReader(src), "89", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := io.ReadAll(&sliceBody{rc: io.NopCloser(tt.r), skip: tt.skip, n: tt.n})
			if string(b) != tt.want || err != tt.err {
				t.Errorf("read %q, %v; want %q, %v", b, err, tt.want, tt.err)
			}
		})
	}
}

func TestAnswerRange(t *testing.T) {
	body := []byte("0123456789")
	req := func(rng string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		r.Header.Set("Range", rng)
		return r
	}
	h := http.Header{"Content-Type": {"text/plain"}, "Etag": {`"x"`}}
	code, b := answerRange(req("bytes=3-4"), h.Clone(), body)
	if code != 206 || string(b) != "34" {
		t.Errorf("single: %d %q", code, b)
	}
	h416 := h.Clone()
	if code, b := answerRange(req("bytes=10-"), h416, body); code != 416 || len(b) != 0 ||
		h416.Get("Content-Range") != "bytes */10" || h416.Get("Content-Type") != "" || h416.Get("Etag") != `"x"` {
		t.Errorf("416: %d %q %v", code, b, h416)
	}
	hm := h.Clone()
	code, b = answerRange(req("bytes=8-,0-0"), hm, body)
	mt, params, _ := mime.ParseMediaType(hm.Get("Content-Type"))
	if code != 206 || mt != "multipart/byteranges" {
		t.Fatalf("multipart: %d %q", code, hm.Get("Content-Type"))
	}
	mr := multipart.NewReader(strings.NewReader(string(b)), params["boundary"])
	var got []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		pb, _ := io.ReadAll(p)
		got = append(got, p.Header.Get("Content-Type")+"|"+p.Header.Get("Content-Range")+"|"+string(pb))
	}
	want := []string{"text/plain|bytes 8-9/10|89", "text/plain|bytes 0-0/10|0"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("parts = %q; want %q", got, want)
	}
	if code, b := answerRange(req("pages=1"), h.Clone(), body); code != 200 || string(b) != string(body) {
		t.Errorf("unknown unit: %d", code)
	}
}
