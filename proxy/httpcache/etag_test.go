package httpcache

import "testing"

func TestParseETag(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     string
		want   entityTag
		wantOK bool
	}{
		{"RFC 9110 §8.8.3 strong", `"xyzzy"`, entityTag{opaque: `"xyzzy"`}, true},
		{"RFC 9110 §8.8.3 weak", `W/"xyzzy"`, entityTag{weak: true, opaque: `"xyzzy"`}, true},
		{"RFC 9110 §8.8.3 empty opaque-tag", `""`, entityTag{opaque: `""`}, true},
		{"RFC 9110 §8.8.3 OWS around", ` "a" `, entityTag{opaque: `"a"`}, true},
		{"RFC 9110 §8.8.3 obs-text allowed", "\"\xc3\xbc\"", entityTag{opaque: "\"\xc3\xbc\""}, true},
		{"RFC 9110 §8.8.3 comma allowed inside", `"a,b"`, entityTag{opaque: `"a,b"`}, true},
		{"RFC 9110 §8.8.3 unquoted", `xyzzy`, entityTag{}, false},
		{"RFC 9110 §8.8.3 lowercase w/", `w/"a"`, entityTag{}, false},
		{"RFC 9110 §8.8.3 unterminated", `"a`, entityTag{}, false},
		{"RFC 9110 §8.8.3 space inside", `"a b"`, entityTag{}, false},
		{"RFC 9110 §8.8.3 trailing garbage", `"a"b`, entityTag{}, false},
		{"RFC 9110 §8.8.3 list is not one ETag", `"a", "b"`, entityTag{}, false},
		{"RFC 9110 §8.8.3 empty", ``, entityTag{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseETag(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseETag(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestETagComparison(t *testing.T) {
	// RFC 9110 §8.8.3.2 comparison table.
	for _, tt := range []struct {
		name       string
		a, b       string
		wantStrong bool
		wantWeak   bool
	}{
		{"RFC 9110 §8.8.3.2 W/\"1\" vs W/\"1\"", `W/"1"`, `W/"1"`, false, true},
		{"RFC 9110 §8.8.3.2 W/\"1\" vs W/\"2\"", `W/"1"`, `W/"2"`, false, false},
		{"RFC 9110 §8.8.3.2 W/\"1\" vs \"1\"", `W/"1"`, `"1"`, false, true},
		{"RFC 9110 §8.8.3.2 \"1\" vs \"1\"", `"1"`, `"1"`, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := parseETag(tt.a)
			b, _ := parseETag(tt.b)
			if got := strongMatch(a, b); got != tt.wantStrong {
				t.Errorf("strongMatch() = %v; want %v", got, tt.wantStrong)
			}
			if got := weakMatch(a, b); got != tt.wantWeak {
				t.Errorf("weakMatch() = %v; want %v", got, tt.wantWeak)
			}
		})
	}
}
