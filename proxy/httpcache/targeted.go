package httpcache

import (
	"net/http"
	"strings"
)

// Targeted cache control (RFC 9213). A response can carry cache
// directives for one class of caches in a field of its own, such as
// CDN-Cache-Control: a cache that obeys such a field (it is on the
// cache's target list) uses the first field on its list that has a valid,
// non-empty value in place of Cache-Control, and ignores Cache-Control
// and Expires for its own storing and freshness decisions (§2.2). The
// other recipients, here the app, still see Cache-Control.
//
// The field's value is a Structured Fields dictionary (RFC 8941) whose
// members are the cache directives: "max-age=60", "no-store",
// "private". A value that is not one is ignored, as if the field were
// absent (§2.1): the next field on the list, or Cache-Control, applies.

// SelectTargeted returns the value of the first field of names (canonical
// field names, most specific first) that h carries with a valid, non-empty
// value; ok is false when none does. The lines of a field are joined with
// ", " (a dictionary may be split across lines).
func SelectTargeted(h http.Header, names []string) (value string, ok bool) {
	for _, n := range names {
		lines := h[n]
		if len(lines) == 0 {
			continue
		}
		v := lines[0]
		if len(lines) > 1 {
			v = strings.Join(lines, ", ")
		}
		if strings.TrimSpace(v) != "" && ValidTargetedValue(v) {
			return v, true
		}
	}
	return "", false
}

// TargetedPolicy returns the header the cache's own decisions read when a
// targeted field with value applies: a copy of h with Cache-Control
// replaced by value and Expires removed (RFC 9213 §2.2).
func TargetedPolicy(h http.Header, value string) http.Header {
	p := h.Clone()
	p["Cache-Control"] = []string{value}
	delete(p, "Expires")
	return p
}

// ValidTargetedValue reports whether v parses as an RFC 8941 dictionary
// whose members are cache directives: sf-keys, each bare or with an
// integer, token or string value, and any parameters. Whitespace around
// members is allowed; an empty member ("a,,b") or a trailing comma is not.
func ValidTargetedValue(v string) bool {
	s := strings.Trim(v, " \t")
	for {
		i, ok := sfKey(s, 0)
		if !ok {
			return false
		}
		if i < len(s) && s[i] == '=' {
			if i, ok = sfBareItem(s, i+1); !ok {
				return false
			}
		}
		for i < len(s) && s[i] == ';' { // parameters
			i++
			for i < len(s) && s[i] == ' ' {
				i++
			}
			if i, ok = sfKey(s, i); !ok {
				return false
			}
			if i < len(s) && s[i] == '=' {
				if i, ok = sfBareItem(s, i+1); !ok {
					return false
				}
			}
		}
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return true
		}
		if s[i] != ',' {
			return false
		}
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return false // a trailing comma
		}
		s = s[i:]
	}
}

// sfKey reads an sf-key at s[i:]: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func sfKey(s string, i int) (int, bool) {
	if i >= len(s) || !(s[i] >= 'a' && s[i] <= 'z' || s[i] == '*') {
		return i, false
	}
	for i++; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
	}
	return i, true
}

// sfBareItem reads an integer, decimal, token, string or boolean at s[i:].
func sfBareItem(s string, i int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch c := s[i]; {
	case c == '-' || c >= '0' && c <= '9':
		j := i
		if c == '-' {
			j++
		}
		start := j
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		return j, j > start
	case c == '"':
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return i, false
	case c == '?':
		return i + 2, i+1 < len(s) && (s[i+1] == '0' || s[i+1] == '1')
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		j := i + 1
		for j < len(s) && (isTokenByte(s[j]) || s[j] == ':' || s[j] == '/') {
			j++
		}
		return j, true
	}
	return i, false
}

func isTokenByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
