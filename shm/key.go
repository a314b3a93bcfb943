package shm

import (
	"sort"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// A cache key is bytes, built the same way by every writer and reader in any
// language (docs/format.md, "Canonical key"):
//
//	primary   = str16(method) str16(scheme) str16(host) str32(target)
//	secondary = primary u16(n) n × ( str16(name) u8(present) str32(value) )
//
// strN(x) is x's length as a little-endian uN followed by x's bytes. method is
// as sent (case-sensitive; callers look HEAD up as GET, since a HEAD is
// answered from a stored GET); scheme is lower-cased (ASCII);
// host is lower-cased with the scheme's default port removed; target is the
// path and query exactly as sent. The secondary part lists the request header
// names a response's Vary named, lower-cased, sorted and deduplicated, each
// with its normalised value (NormalizeFieldValue) and whether it was present
// at all, so that an absent header and an empty one are different variants.

// AppendKey appends the primary key for a request to dst.
func AppendKey(dst []byte, method, scheme, host, target string) []byte {
	host = trimDefaultPort(scheme, host)
	dst = appendStr16(dst, method)
	dst = appendLower16(dst, scheme)
	dst = appendLower16(dst, host)
	dst = appendStr32(dst, target)
	return dst
}

// VaryField is one request header named by Vary, as it goes into a key.
type VaryField struct {
	Name    string // lower-case field name
	Present bool
	Value   string // normalised with NormalizeFieldValue
}

// AppendVary appends the secondary part of a key. fields must be sorted by
// Name with no duplicates, as VaryNames returns the names.
func AppendVary(dst []byte, fields []VaryField) []byte {
	dst = le.AppendUint16(dst, uint16(len(fields)))
	for _, f := range fields {
		dst = appendLower16(dst, f.Name)
		if f.Present {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
		dst = appendStr32(dst, f.Value)
	}
	return dst
}

// AppendVaryFromHeader appends the secondary part of a key for the names in
// a vary block (as stored in a FlagVaryIndex entry), taking values from get,
// which returns a request header's field lines (http.Header.Values fits).
func AppendVaryFromHeader(dst []byte, varyBlock []byte, get func(name string) []string) []byte {
	n := 0
	for it := (StringIter{b: varyBlock}); it.Next(); {
		n++
	}
	dst = le.AppendUint16(dst, uint16(n))
	for it := (StringIter{b: varyBlock}); it.Next(); {
		name := it.String()
		vals := get(name)
		dst = appendLower16(dst, name)
		if len(vals) == 0 {
			dst = append(dst, 0)
			dst = le.AppendUint32(dst, 0)
			continue
		}
		dst = append(dst, 1)
		lenAt := len(dst)
		dst = le.AppendUint32(dst, 0)
		dst = appendNormalized(dst, vals)
		le.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	}
	return dst
}

// VaryNames returns the lower-cased, sorted, deduplicated field names of the
// Vary field lines, and whether one of them was "*" (never storable).
func VaryNames(lines []string) (names []string, star bool) {
	for _, line := range lines {
		for _, n := range strings.Split(line, ",") {
			n = asciiLower(strings.Trim(n, " \t"))
			switch n {
			case "":
				continue
			case "*":
				star = true
				continue
			}
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out, star
}

// NormalizeFieldValue combines a header's field lines as RFC 9110 §5.3 allows
// (joined by ", ") and removes optional whitespace around commas and at the
// ends (RFC 9111 §4.1 lets caches normalise this way). Case is kept: only
// some fields are case-insensitive, and the key must not merge variants a
// server tells apart.
func NormalizeFieldValue(lines []string) string {
	return string(appendNormalized(nil, lines))
}

// appendNormalized joins the field lines with commas and drops optional
// whitespace around list commas and at the ends of each member. Commas and
// spaces inside quoted strings are data and stay as they are.
func appendNormalized(dst []byte, lines []string) []byte {
	first := true
	for _, line := range lines {
		for _, part := range splitList(line) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, strings.Trim(part, " \t")...)
		}
	}
	return dst
}

// splitList splits a field value at commas outside quoted strings
// (RFC 9110 §5.6.1, §5.6.4: quoted-string with backslash escapes).
func splitList(s string) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // the escaped byte is data
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// asciiLower lower-cases ASCII letters only: field names and schemes are
// ASCII tokens, and Unicode case folding would merge bytes that differ.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// StringIter walks a block of u16-length-prefixed strings (vary and tag
// blocks). It stops at the first malformed length.
type StringIter struct {
	b   []byte
	cur []byte
}

// NewStringIter returns an iterator over block.
func NewStringIter(block []byte) StringIter { return StringIter{b: block} }

// Next advances to the next string and reports whether there is one.
func (it *StringIter) Next() bool {
	if len(it.b) < 2 {
		return false
	}
	n := int(le.Uint16(it.b))
	if len(it.b) < 2+n {
		it.b = nil
		return false
	}
	it.cur = it.b[2 : 2+n]
	it.b = it.b[2+n:]
	return true
}

// Bytes returns the current string; it aliases the block.
func (it *StringIter) Bytes() []byte { return it.cur }

// String returns the current string as a new string.
func (it *StringIter) String() string { return string(it.cur) }

// len16 is a str16 length prefix. It saturates at 0xffff instead of
// wrapping, so an overlong field cannot make two requests share a key; such
// a key is longer than 65535 bytes, which the writer never stores
// (MaxKeySize is at most 65535), so it can only miss.
func len16(n int) uint16 {
	if n > 0xffff {
		return 0xffff
	}
	return uint16(n)
}

func appendStr16(dst []byte, s string) []byte {
	dst = le.AppendUint16(dst, len16(len(s)))
	return append(dst, s...)
}

func appendStr32(dst []byte, s string) []byte {
	dst = le.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// appendLower16 appends str16(lower(s)) without allocating: one copy, then
// lower-casing in place (cheaper than appending byte by byte).
func appendLower16(dst []byte, s string) []byte {
	dst = le.AppendUint16(dst, len16(len(s)))
	n := len(dst)
	dst = append(dst, s...)
	b := dst[n:]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return dst
}

// trimDefaultPort removes ":80" for http and ":443" for https, so that
// "example.com" and "example.com:80" are one resource (RFC 9110 §4.2.3).
func trimDefaultPort(scheme, host string) string {
	switch {
	case scheme == "http" || len(scheme) == 4 && asciiEqualFold(scheme, "http"):
		if len(host) >= 3 && host[len(host)-3:] == ":80" {
			return host[:len(host)-3]
		}
	case scheme == "https" || len(scheme) == 5 && asciiEqualFold(scheme, "https"):
		if len(host) >= 4 && host[len(host)-4:] == ":443" {
			return host[:len(host)-4]
		}
	}
	return host
}

// KeyParts is a primary key split into its fields (secondary part ignored).
type KeyParts struct {
	Method, Scheme, Host, Target []byte
	Vary                         []byte // the secondary part, if any
}

// SplitKey parses a key. It reports false for malformed keys.
func SplitKey(key []byte) (p KeyParts, ok bool) {
	b := key
	var f []byte
	if f, b, ok = cut16(b); !ok {
		return p, false
	}
	p.Method = f
	if f, b, ok = cut16(b); !ok {
		return p, false
	}
	p.Scheme = f
	if f, b, ok = cut16(b); !ok {
		return p, false
	}
	p.Host = f
	if len(b) < 4 || uint64(len(b)-4) < uint64(le.Uint32(b)) {
		return p, false
	}
	n := int(le.Uint32(b))
	p.Target = b[4 : 4+n]
	p.Vary = b[4+n:]
	return p, true
}

func cut16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(le.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// VariantTagPrefix starts the reserved tag that links a Vary variant to its
// primary key. Tags starting with a NUL byte are the writer's bookkeeping,
// not surrogate keys.
const VariantTagPrefix = "\x00vary:"

// VariantTag is the tag a variant entry carries so that invalidating its
// URL (the primary key) can find every variant: xxhash64 of the primary key
// (seed 0) in lower-case hex after VariantTagPrefix.
func VariantTag(primary []byte) string {
	const hexdigits = "0123456789abcdef"
	h := xxhash.Sum64(primary)
	var b [len(VariantTagPrefix) + 16]byte
	copy(b[:], VariantTagPrefix)
	for i := 0; i < 16; i++ {
		b[len(VariantTagPrefix)+i] = hexdigits[(h>>(60-4*i))&0xf]
	}
	return string(b[:])
}
