package field

import (
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestIsToken(t *testing.T) {
	for c := 0; c < 256; c++ {
		if got, want := IsToken(byte(c)), httpguts.IsTokenRune(rune(c)) && c < 0x80; got != want {
			t.Errorf("IsToken(%#x) = %v; want %v", c, got, want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	for _, tc := range []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CONTENT-LENGTH", "Content-Length", true},
		{"Content_Length", "Content-Length", false},
		{"\r", "-", false}, // equal after |0x20, but not letters
		{"abc", "abcd", false},
		{"", "", true},
	} {
		if got := EqualFold([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v", tc.b, tc.s, got)
		}
	}
}

func TestWriteCanonical(t *testing.T) {
	for _, n := range []string{"content-length", "X-FORWARDED-FOR", "etag", "www-authenticate", "a--b", "-x", "x1-y2", "Te"} {
		var sb strings.Builder
		WriteCanonical(&sb, []byte(n))
		if want := textproto.CanonicalMIMEHeaderKey(n); sb.String() != want {
			t.Errorf("%q: %q; want %q", n, sb.String(), want)
		}
	}
}
