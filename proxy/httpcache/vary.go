package httpcache

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// VaryNames returns the field names listed by the Vary fields of response
// header h (RFC 9110 §12.5.5), lowercased, trimmed, deduplicated and
// sorted, and whether the list contains "*". A response whose Vary
// contains "*" never matches a later request (RFC 9111 §4.1). A member that
// is not a valid field name cannot be matched either, so it is reported as
// "*" too. Empty members are ignored (RFC 9110 §5.6.1).
func VaryNames(h http.Header) (names []string, star bool) {
	for _, line := range h["Vary"] {
		for line != "" {
			var name string
			name, line, _ = strings.Cut(line, ",")
			name = strings.Trim(name, " \t")
			switch {
			case name == "":
			case name == "*" || !isToken(name):
				star = true
			default:
				names = append(names, strings.ToLower(name))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), star
}

// varyStar is the allocation-free "*" check used by Storable.
func varyStar(h http.Header) bool {
	for _, line := range h["Vary"] {
		for line != "" {
			var name string
			name, line, _ = strings.Cut(line, ",")
			if name = strings.Trim(name, " \t"); name != "" && (name == "*" || !isToken(name)) {
				return true
			}
		}
	}
	return false
}

// varyKey returns the secondary cache key of a request with header req for
// a stored response whose VaryNames are names (RFC 9111 §4.1). Two requests
// match for that response if and only if their VaryKeys are equal.
//
// The normalisation is the one §4.1 allows without knowing each field's
// syntax: multiple field lines are combined, whitespace around list commas
// and at either end is removed, and empty list members are dropped (commas
// inside quoted strings are left alone). A field absent from the request
// only matches an absent field, never an empty one. Names must come from
// VaryNames (lowercase, sorted).
func varyKey(req http.Header, names []string) string {
	b := make([]byte, 0, 128)
	for _, name := range names {
		b = append(b, name...)
		lines := req.Values(textproto.CanonicalMIMEHeaderKey(name))
		if lines == nil {
			b = append(b, '!', '\n')
			continue
		}
		v := normalizeFieldValue(lines)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
		b = append(b, '\n')
	}
	return string(b)
}

// normalizeFieldValue combines field lines (RFC 9110 §5.3) and removes the
// optional whitespace around list separators (RFC 9110 §5.6.1).
func normalizeFieldValue(lines []string) string {
	if len(lines) == 1 && !strings.ContainsAny(lines[0], ", \t") {
		return lines[0] // common case: a single bare token, no copy
	}
	var b strings.Builder
	for _, line := range lines {
		for line != "" {
			end := skipMember(line, 0)
			if m := strings.Trim(line[:end], " \t"); m != "" {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(m)
			}
			if end == len(line) {
				break
			}
			line = line[end+1:]
		}
	}
	return b.String()
}
