package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestVaryNames(t *testing.T) {
	for _, tt := range []struct {
		name      string
		h         http.Header
		wantNames []string
		wantStar  bool
	}{
		{"RFC 9110 §12.5.5 no Vary", hdr(), nil, false},
		{"RFC 9110 §12.5.5 single", hdr("Vary", "Accept-Encoding"), []string{"accept-encoding"}, false},
		{"RFC 9110 §12.5.5 lowercased, sorted, deduplicated", hdr("Vary", "User-Agent, accept-encoding, Accept-Encoding", "Vary", " Accept "), []string{"accept", "accept-encoding", "user-agent"}, false},
		{"RFC 9110 §5.6.1 empty members ignored", hdr("Vary", ", Foo,,", "Vary", ""), []string{"foo"}, false},
		{"RFC 9111 §4.1 vary-syntax-star", hdr("Vary", "*"), nil, true},
		{"RFC 9111 §4.1 vary-syntax-star-foo", hdr("Vary", "*, Foo"), []string{"foo"}, true},
		{"RFC 9111 §4.1 vary-syntax-foo-star", hdr("Vary", "Foo, *"), []string{"foo"}, true},
		{"RFC 9111 §4.1 vary-syntax-empty-star-lines", hdr("Vary", "", "Vary", "*"), nil, true},
		{"RFC 9111 §4.1 invalid field name cannot match", hdr("Vary", "Foo Bar"), nil, true},
		{"RFC 9111 §4.1 tabs are OWS", hdr("Vary", "\tFoo\t"), []string{"foo"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			names, star := VaryNames(tt.h)
			if !reflect.DeepEqual(names, tt.wantNames) || star != tt.wantStar {
				t.Errorf("VaryNames() = %q, %v; want %q, %v", names, star, tt.wantNames, tt.wantStar)
			}
			if got := varyStar(tt.h); got != tt.wantStar {
				t.Errorf("varyStar() = %v; want %v", got, tt.wantStar)
			}
		})
	}
}

func TestVaryKey(t *testing.T) {
	for _, tt := range []struct {
		name      string
		vary      string
		stored    http.Header // request that caused the response to be stored
		presented http.Header
		wantMatch bool
	}{
		{"§4.1 vary-match", "Foo", hdr("Foo", "1"), hdr("Foo", "1"), true},
		{"§4.1 vary-no-match", "Foo", hdr("Foo", "1"), hdr("Foo", "2"), false},
		{"§4.1 vary-omit", "Foo", hdr("Foo", "1"), hdr(), false},
		{"§4.1 absent only matches absent, not empty", "Foo", hdr(), hdr("Foo", ""), false},
		{"§4.1 both absent", "Foo", hdr(), hdr(), true},
		{"§4.1 vary-cache-key: other fields ignored", "Foo", hdr("Foo", "1", "Other", "2"), hdr("Foo", "1", "Other", "3"), true},
		{"§4.1 vary-2-match", "Foo, Bar", hdr("Foo", "1", "Bar", "abc"), hdr("Foo", "1", "Bar", "abc"), true},
		{"§4.1 vary-2-no-match", "Foo, Bar", hdr("Foo", "1", "Bar", "abc"), hdr("Foo", "2", "Bar", "abc"), false},
		{"§4.1 vary-2-match-omit", "Foo, Bar", hdr("Foo", "1"), hdr(), false},
		{"§4.1 vary-3-order", "Foo, Bar, Baz", hdr("Foo", "1", "Bar", "abc4", "Baz", "789"), hdr("Foo", "1", "Bar", "abc", "Baz", "789"), false},
		{"§4.1 vary-3-omit", "Foo, Bar, Baz", hdr("Foo", "1", "Baz", "789"), hdr("Foo", "1", "Baz", "789"), true},
		{"§4.1 vary-normalise-space", "Foo", hdr("Foo", "1,2"), hdr("Foo", " 1, 2 "), true},
		{"§4.1 vary-normalise-combine", "Foo", hdr("Foo", "1, 2"), hdr("Foo", "1", "Foo", "2"), true},
		{"§4.1 empty list members", "Foo", hdr("Foo", "1,,2,"), hdr("Foo", "1, 2"), true},
		{"§4.1 commas inside quoted strings are not separators", "Foo", hdr("Foo", `"a , b"`), hdr("Foo", `"a,b"`), false},
		{"§4.1 values are compared case-sensitively", "Foo", hdr("Foo", "gzip"), hdr("Foo", "GZIP"), false},
		{"§4.1 ambiguous concatenation is not a match", "A, B", hdr("A", "1\nb=2"), hdr("A", "1", "B", "2"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			names, _ := VaryNames(hdr("Vary", tt.vary))
			a, b := varyKey(tt.stored, names), varyKey(tt.presented, names)
			if got := a == b; got != tt.wantMatch {
				t.Errorf("varyKey match = %v (%q vs %q); want %v", got, a, b, tt.wantMatch)
			}
		})
	}
}
