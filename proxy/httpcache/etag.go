package httpcache

import (
	"net/http"
	"strings"
)

// entityTag is a parsed entity-tag (RFC 9110 §8.8.3). opaque keeps the
// surrounding double quotes so that it can be compared and re-sent as is.
type entityTag struct {
	weak   bool
	opaque string
}

// String returns the entity-tag in its wire form.
func (t entityTag) String() string {
	if t.weak {
		return "W/" + t.opaque
	}
	return t.opaque
}

// strongMatch is the strong comparison function (RFC 9110 §8.8.3.2): both
// tags strong and opaque-tags identical.
func strongMatch(a, b entityTag) bool {
	return !a.weak && !b.weak && a.opaque == b.opaque
}

// weakMatch is the weak comparison function (RFC 9110 §8.8.3.2).
func weakMatch(a, b entityTag) bool {
	return a.opaque == b.opaque
}

// scanETag reads one entity-tag at the start of s (after optional OWS) and
// returns it with the remaining input. entity-tag = [ "W/" ] DQUOTE
// *etagc DQUOTE, where etagc excludes DQUOTE and controls but includes
// commas, so the scan is delimited by quotes, not commas. "W/" is
// case-sensitive: "w/" is not a weak indicator.
func scanETag(s string) (entityTag, string, bool) {
	s = strings.TrimLeft(s, " \t")
	var t entityTag
	if strings.HasPrefix(s, "W/") {
		t.weak = true
		s = s[2:]
	}
	if s == "" || s[0] != '"' {
		return entityTag{}, s, false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			t.opaque = s[:i+1]
			return t, s[i+1:], true
		case c < 0x21 || c == 0x7f: // etagc = %x21 / %x23-7E / obs-text
			return entityTag{}, s, false
		}
	}
	return entityTag{}, s, false
}

// parseETag parses a complete ETag field value.
func parseETag(s string) (entityTag, bool) {
	t, rest, ok := scanETag(s)
	if !ok || strings.Trim(rest, " \t") != "" {
		return entityTag{}, false
	}
	return t, true
}

// storedETag returns the ETag of a response header. ETag is a singleton
// field; more than one line, or an invalid value, yields no validator,
// since a cache must not guess which representation it identifies.
func storedETag(h http.Header) (entityTag, bool) {
	v := h["Etag"]
	if len(v) != 1 {
		return entityTag{}, false
	}
	return parseETag(v[0])
}

// matchETagList evaluates an If-None-Match style list (RFC 9110 §13.1.2)
// against tag using weak comparison. "*" matches any current
// representation. Malformed members never match.
func matchETagList(lines []string, tag entityTag, haveTag bool) bool {
	for _, line := range lines {
		if strings.Trim(line, " \t") == "*" {
			return true
		}
		rest := line
		for {
			rest = strings.TrimLeft(rest, " \t,")
			if rest == "" {
				break
			}
			t, r, ok := scanETag(rest)
			if !ok {
				// Skip the malformed member up to the next comma.
				_, r, _ = strings.Cut(rest, ",")
			} else if haveTag && weakMatch(t, tag) {
				return true
			}
			rest = r
		}
	}
	return false
}
