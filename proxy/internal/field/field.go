// Package field holds the byte-level rules for HTTP field names (RFC 9110
// §5.1) that the proxy's head parsers and writers share: what a token is,
// case-insensitive comparison, and net/http's canonical form.
package field

import "strings"

// IsToken reports whether c is an RFC 9110 tchar.
func IsToken(c byte) bool { return c < 0x80 && tokenTable[c] }

var tokenTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// EqualFold reports whether b and s are equal under ASCII case folding.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// WriteCanonical writes name, a field name of token bytes, as
// textproto.CanonicalMIMEHeaderKey would make it.
func WriteCanonical(sb *strings.Builder, name []byte) {
	upper := true
	for _, c := range name {
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
		upper = c == '-'
	}
}
