package field

import "testing"

func TestBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		if IsHex(byte(c)) != want {
			t.Errorf("IsHex(%#x) = %v", c, !want)
		}
	}
	for _, tc := range []struct{ in, want string }{{"", ""}, {" \t a b\t ", "a b"}, {"x", "x"}, {" \t", ""}} {
		if got := string(TrimOWS([]byte(tc.in))); got != tc.want {
			t.Errorf("TrimOWS(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		b, p string
		want bool
	}{{"HTTP://x", "http://", true}, {"http:/", "http://", false}, {"https://", "http://", false}} {
		if HasPrefixFold([]byte(tc.b), tc.p) != tc.want {
			t.Errorf("HasPrefixFold(%q, %q) != %v", tc.b, tc.p, tc.want)
		}
	}
	for _, tc := range []struct {
		v, tok string
		want   bool
	}{
		{"keep-alive, Close", "close", true},
		{"close", "close", true},
		{"closed", "close", false},
		{" , ,close ,", "close", true},
		{"", "close", false},
		{"upgrade", "close", false},
	} {
		if HasToken([]byte(tc.v), tc.tok) != tc.want {
			t.Errorf("HasToken(%q, %q) != %v", tc.v, tc.tok, tc.want)
		}
	}
}
