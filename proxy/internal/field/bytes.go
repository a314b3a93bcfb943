package field

// The byte helpers the proxy's parsers and writers share, kept here so
// that each has one definition.

// IsHex reports whether c is a hexadecimal digit.
func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// TrimOWS trims optional whitespace (SP, HTAB; RFC 9110 §5.6.3) from both
// ends of b.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// HasPrefixFold reports whether b begins with prefix, compared
// case-insensitively.
func HasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && EqualFold(b[:len(prefix)], prefix)
}

// HasToken reports whether the comma-separated list v holds token,
// compared case-insensitively.
func HasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var f []byte
		if i := indexByte(v, ','); i >= 0 {
			f, v = v[:i], v[i+1:]
		} else {
			f, v = v, nil
		}
		if EqualFold(TrimOWS(f), token) {
			return true
		}
	}
	return false
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
