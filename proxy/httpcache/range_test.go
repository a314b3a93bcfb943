package httpcache

import (
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseRangeResolve(t *testing.T) {
	const size = 100
	for _, tt := range []struct {
		name  string
		lines []string
		ok    bool
		want  []ByteRange // Resolve(size)
	}{
		{"§14.1.2 first-last", []string{"bytes=0-9"}, true, []ByteRange{{0, 9}}},
		{"§14.1.2 open-ended first-", []string{"bytes=90-"}, true, []ByteRange{{90, 99}}},
		{"§14.1.2 suffix -n", []string{"bytes=-10"}, true, []ByteRange{{90, 99}}},
		{"§14.1.1 last-pos beyond the end is clipped", []string{"bytes=95-1000"}, true, []ByteRange{{95, 99}}},
		{"§14.1.1 suffix longer than the representation selects all of it", []string{"bytes=-500"}, true, []ByteRange{{0, 99}}},
		{"§14.1.1 first-pos at the end is unsatisfiable", []string{"bytes=100-"}, true, nil},
		{"§14.1.1 suffix of zero is unsatisfiable", []string{"bytes=-0"}, true, nil},
		{"§14.1.1 unsatisfiable ranges are dropped, the others kept in order", []string{"bytes=200-300, 50-59,-5"}, true, []ByteRange{{50, 59}, {95, 99}}},
		{"§14.1 the unit is case-insensitive", []string{"BYTES=0-0"}, true, []ByteRange{{0, 0}}},
		{"§5.6.1 empty list elements and OWS are ignored", []string{" bytes=0-1, ,\t2-3 ,"}, true, []ByteRange{{0, 1}, {2, 3}}},
		{"huge positions are clamped", []string{"bytes=0-99999999999999999999999"}, true, []ByteRange{{0, 99}}},
		{"huge first-pos is unsatisfiable", []string{"bytes=99999999999999999999999-"}, true, nil},
		{"§14.2 unknown unit ignored", []string{"items=0-5"}, false, nil},
		{"§14.1.1 last before first is invalid", []string{"bytes=10-5"}, false, nil},
		{"no '='", []string{"bytes 0-5"}, false, nil},
		{"space before '='", []string{"bytes =0-5"}, false, nil},
		{"no range-spec", []string{"bytes="}, false, nil},
		{"no dash", []string{"bytes=5"}, false, nil},
		{"'-' alone", []string{"bytes=-"}, false, nil},
		{"sign", []string{"bytes=+1-2"}, false, nil},
		{"negative suffix", []string{"bytes=--5"}, false, nil},
		{"several field lines", []string{"bytes=0-1", "bytes=2-3"}, false, nil},
		{"absent", nil, false, nil},
		{"other-range is not bytes syntax", []string{"bytes=a-b"}, false, nil},
		{"too many range-specs", []string{"bytes=" + strings.Repeat("0-0,", MaxRangeSpecs+1)}, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := ParseRange(tt.lines)
			if ok != tt.ok {
				t.Fatalf("ParseRange(%q) ok = %v; want %v", tt.lines, ok, tt.ok)
			}
			if got := s.Resolve(size); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve(%d) = %v; want %v", size, got, tt.want)
			}
		})
	}
}

func TestRangeSetFirstByte(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want int64
	}{
		{"bytes=500-600, 200-", 200},
		{"bytes=500-600,-5", 0},
		{"bytes=99999999999999999999-", math.MaxInt64},
	} {
		s, _ := ParseRange([]string{tt.v})
		if got := s.FirstByte(); got != tt.want {
			t.Errorf("%q: FirstByte = %d; want %d", tt.v, got, tt.want)
		}
	}
}

func TestRangeSelect(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rng    string
		size   int64
		h      http.Header
		status int
		want   []ByteRange
	}{
		{"single range", "bytes=0-9", 100, hdr(), 206, []ByteRange{{0, 9}}},
		{"§15.5.17 nothing satisfiable → 416", "bytes=100-200", 100, hdr(), 416, nil},
		{"empty representation: the whole (empty) 200", "bytes=0-9", 0, hdr(), 200, nil},
		{"§15.3.7.2 several ranges → multipart, request order", "bytes=50-59,0-9", 100, hdr(), 206, []ByteRange{{50, 59}, {0, 9}}},
		{"one satisfiable out of several is a single part", "bytes=0-9,500-", 100, hdr(), 206, []ByteRange{{0, 9}}},
		{"§14.2 overlapping ranges adding up to more than the representation: 200", "bytes=0-99,0-99", 100, hdr(), 200, nil},
		{"too many parts: 200", "bytes=" + strings.Repeat("0-0,", MaxRangeParts+1), 100, hdr(), 200, nil},
		{"several ranges of an encoded representation: 200", "bytes=0-1,5-6", 100, hdr("Content-Encoding", "gzip"), 200, nil},
		{"one range of an encoded representation: 206", "bytes=0-1", 100, hdr("Content-Encoding", "gzip"), 206, []ByteRange{{0, 1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := ParseRange([]string{tt.rng})
			if !ok {
				t.Fatalf("ParseRange(%q) failed", tt.rng)
			}
			status, got := s.Select(tt.size, tt.h)
			if status != tt.status || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select = %d %v; want %d %v", status, got, tt.status, tt.want)
			}
		})
	}
}

func TestRangeApplies(t *testing.T) {
	stored := hdr("Etag", `"abc"`, "Last-Modified", date(-100), "Date", date(0))
	req := func(method string, kv ...string) *http.Request {
		r, _ := http.NewRequest(method, "http://example.com/", nil)
		r.Header = hdr(kv...)
		return r
	}
	for _, tt := range []struct {
		name   string
		req    *http.Request
		status int
		h      http.Header
		want   bool
	}{
		{"GET with Range", req("GET", "Range", "bytes=0-1"), 200, stored, true},
		{"§14.2 only GET", req("HEAD", "Range", "bytes=0-1"), 200, stored, false},
		{"§14.2 only for a 200", req("GET", "Range", "bytes=0-1"), 404, stored, false},
		{"no Range", req("GET"), 200, stored, false},
		{"If-Range without Range is ignored", req("GET", "If-Range", `"abc"`), 200, stored, false},
		{"§13.1.5 If-Range strong ETag match", req("GET", "Range", "bytes=0-1", "If-Range", `"abc"`), 200, stored, true},
		{"§13.1.5 If-Range other ETag", req("GET", "Range", "bytes=0-1", "If-Range", `"xyz"`), 200, stored, false},
		{"§13.1.5 If-Range weak ETag never matches", req("GET", "Range", "bytes=0-1", "If-Range", `W/"abc"`), 200, stored, false},
		{"§13.1.5 If-Range strong tag vs a weak stored ETag", req("GET", "Range", "bytes=0-1", "If-Range", `"abc"`), 200,
			hdr("Etag", `W/"abc"`), false},
		{"§13.1.5 If-Range date equal to a strong Last-Modified", req("GET", "Range", "bytes=0-1", "If-Range", date(-100)), 200, stored, true},
		{"§13.1.5 If-Range date differs", req("GET", "Range", "bytes=0-1", "If-Range", date(-99)), 200, stored, false},
		{"§8.8.2.2 If-Range date equal to a weak Last-Modified (Date too close)", req("GET", "Range", "bytes=0-1", "If-Range", date(-100)), 200,
			hdr("Last-Modified", date(-100), "Date", date(-100)), false},
		{"§13.1.5 If-Range date without stored Last-Modified", req("GET", "Range", "bytes=0-1", "If-Range", date(-100)), 200, hdr("Etag", `"abc"`), false},
		{"If-Range garbage", req("GET", "Range", "bytes=0-1", "If-Range", "yesterday"), 200, stored, false},
		{"Accept-Ranges: none is respected", req("GET", "Range", "bytes=0-1"), 200, hdr("Accept-Ranges", "none"), false},
		{"Accept-Ranges: bytes", req("GET", "Range", "bytes=0-1"), 200, hdr("Accept-Ranges", "bytes"), true},
		{"unknown unit", req("GET", "Range", "pages=1"), 200, stored, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := RangeApplies(tt.req, tt.status, tt.h); got != tt.want {
				t.Errorf("RangeApplies = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestSelectRangesAndContentRange(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	r.Header.Set("Range", "bytes=-3")
	status, rs := selectRanges(r, 200, hdr(), 10)
	if status != 206 || len(rs) != 1 || ContentRange(rs[0], 10) != "bytes 7-9/10" || rs[0].Len() != 3 {
		t.Errorf("selectRanges = %d %v", status, rs)
	}
	if status, _ := selectRanges(r, 200, hdr(), 0); status != 200 {
		t.Errorf("empty: %d", status)
	}
	if got := UnsatisfiedContentRange(10); got != "bytes */10" {
		t.Errorf("UnsatisfiedContentRange = %q", got)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-,1-2", "BYTES=0-", "bytes=", "x=1-2", "bytes=9-1"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		s, ok := ParseRange([]string{v})
		if !ok {
			return
		}
		if size < 0 {
			size = -size
		}
		for _, r := range s.Resolve(size) {
			if r.First < 0 || r.Last < r.First || r.Last >= size {
				t.Fatalf("%q size %d: bad range %v", v, size, r)
			}
		}
	})
}
