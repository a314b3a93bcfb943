package invalidate

import (
	"fmt"
	"strings"
)

// SplitURL splits an absolute URL into the parts a cache key is made of:
// scheme, host (with port, as written) and target, the path and query exactly
// as written, without the fragment; an empty path is "/". It does not
// unescape or re-encode anything, so the target matches the request-target a
// client sends. Userinfo is dropped.
func SplitURL(u string) (scheme, host, target string, err error) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || !validScheme(scheme) {
		return "", "", "", fmt.Errorf("%w: %q is not an absolute URL", ErrBadPayload, u)
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host = rest[:end]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n") {
		return "", "", "", fmt.Errorf("%w: %q has no host", ErrBadPayload, u)
	}
	target, _, _ = strings.Cut(rest[end:], "#")
	switch {
	case target == "":
		target = "/"
	case target[0] == '?':
		target = "/" + target
	}
	return scheme, host, target, nil
}

// SplitPrefix is SplitURL for a KindPrefix payload: an empty path stays
// empty (it does not become "/"), so that "http://h" matches every target
// of h. The prefix is compared byte for byte with keys' targets.
func SplitPrefix(u string) (scheme, host, prefix string, err error) {
	scheme, host, prefix, err = SplitURL(u)
	if err != nil {
		return
	}
	_, rest, _ := strings.Cut(u, "://")
	if end := strings.IndexAny(rest, "/?#"); end < 0 || rest[end] == '#' {
		prefix = ""
	}
	return
}

func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// KeyRecord returns a record invalidating one URL and its Vary variants.
func KeyRecord(url string, mode Mode) Record {
	return Record{Kind: KindKey, Mode: mode, Payload: []byte(url)}
}

// PrefixRecord returns a record invalidating every URL under a prefix.
func PrefixRecord(prefix string, mode Mode) Record {
	return Record{Kind: KindPrefix, Mode: mode, Payload: []byte(prefix)}
}

// TagRecord returns a record invalidating every response carrying tag.
func TagRecord(tag string, mode Mode) Record {
	return Record{Kind: KindTag, Mode: mode, Payload: []byte(tag)}
}

// AllRecord returns a record invalidating everything.
func AllRecord(mode Mode) Record { return Record{Kind: KindAll, Mode: mode} }
