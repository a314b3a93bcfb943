package httpcache

import (
	"net/http"
	"strings"
)

// SurrogateKeys returns the purge keys of a response: the space-separated
// keys of Surrogate-Key (Fastly style) followed by the comma-separated tags
// of Cache-Tag (Cloudflare style), trimmed, without empty keys, and
// deduplicated with their first-seen order kept. Keys are compared
// exactly (case-sensitively). It returns nil when there are none.
func SurrogateKeys(h http.Header) []string {
	var keys []string
	var seen map[string]struct{} // only for long lists; a linear scan is cheaper below that
	add := func(k string) {
		if k == "" {
			return
		}
		if seen == nil {
			if listed(keys, k) {
				return
			}
			if len(keys) == 16 {
				seen = make(map[string]struct{}, 64)
				for _, key := range keys {
					seen[key] = struct{}{}
				}
			}
		} else if _, dup := seen[k]; dup {
			return
		}
		if seen != nil {
			seen[k] = struct{}{}
		}
		keys = append(keys, k)
	}
	for _, line := range h["Surrogate-Key"] {
		for _, k := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' }) {
			add(k)
		}
	}
	for _, line := range h["Cache-Tag"] {
		for line != "" {
			var k string
			k, line, _ = strings.Cut(line, ",")
			add(strings.Trim(k, " \t"))
		}
	}
	return keys
}
