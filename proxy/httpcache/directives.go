package httpcache

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// MaxDeltaSeconds is the value at which delta-seconds saturate. RFC 9111
// §1.2.2: a cache receiving a larger value, or overflowing in a subsequent
// calculation, MUST consider the value to be 2147483648 (2^31).
const MaxDeltaSeconds = 1 << 31

// maxDelta is MaxDeltaSeconds as a time.Duration; ages and lifetimes are
// clamped to it (RFC 9111 §1.2.2 "subsequent calculations").
const maxDelta = time.Duration(MaxDeltaSeconds) * time.Second

// DeltaSeconds is the argument of a delta-seconds cache directive such as
// max-age (RFC 9111 §1.2.2).
//
// A directive can be present but not Valid: its argument was missing,
// malformed (e.g. "max-age=10a", "max-age= 10", "max-age=-1") or it was
// repeated with a different value. Callers must treat such a directive in
// the most restrictive way; freshnessLifetime, for instance, considers the
// response stale (RFC 9111 §4.2.1).
type DeltaSeconds struct {
	Present bool  // the directive occurred at least once
	Valid   bool  // every occurrence had the same well-formed argument
	Seconds int64 // in [0, MaxDeltaSeconds] when Valid
}

// Duration returns the argument as a time.Duration (0 unless Valid).
func (d DeltaSeconds) Duration() time.Duration {
	if !d.Valid {
		return 0
	}
	return time.Duration(d.Seconds) * time.Second
}

// Directives holds the Cache-Control directives of a request or a response
// (RFC 9111 §5.2). Directive names are matched case-insensitively and
// unknown extensions are ignored (RFC 9111 §5.2.3).
//
// Boolean directives that restrict caching (no-store, must-revalidate,
// proxy-revalidate, no-transform, only-if-cached) are honoured even when
// they carry an unexpected argument; directives that widen caching (public,
// immutable, must-understand) are ignored when malformed, because "the most
// restrictive directive should be honored" (RFC 9111 §4.2.1).
type Directives struct {
	NoStore         bool // §5.2.1.5, §5.2.2.5
	NoCache         bool // unqualified no-cache (or one whose field list is empty or invalid), §5.2.1.4, §5.2.2.4
	Private         bool // unqualified private (or one whose field list is empty or invalid), §5.2.2.7
	Public          bool // §5.2.2.9
	MustRevalidate  bool // §5.2.2.2
	ProxyRevalidate bool // §5.2.2.8
	MustUnderstand  bool // §5.2.2.3
	NoTransform     bool // §5.2.1.6, §5.2.2.6
	OnlyIfCached    bool // §5.2.1.7
	Immutable       bool // RFC 8246

	MaxAge   DeltaSeconds // §5.2.1.1, §5.2.2.1
	SMaxAge  DeltaSeconds // §5.2.2.10
	MaxStale DeltaSeconds // §5.2.1.2; without an argument Seconds is MaxDeltaSeconds ("any staleness")
	MinFresh DeltaSeconds // §5.2.1.3

	StaleWhileRevalidate DeltaSeconds // RFC 5861 §3
	StaleIfError         DeltaSeconds // RFC 5861 §4

	// NoCacheFields and PrivateFields are the canonical field names of the
	// qualified forms no-cache="a, b" and private="a, b". A shared cache
	// must not store those fields (RFC 9111 §3.1, §5.2.2.4, §5.2.2.7).
	// They are nil unless a qualified form was present, so parsing common
	// headers does not allocate.
	NoCacheFields []string
	PrivateFields []string
}

// ParseCacheControl parses every Cache-Control field line of h (RFC 9111
// §5.2). It never fails: malformed members are skipped or recorded as
// invalid. It allocates only for qualified no-cache/private field lists
// and for quoted-pairs in the argument of a known directive.
func ParseCacheControl(h http.Header) Directives {
	var d Directives
	for _, line := range h["Cache-Control"] {
		d.parseLine(line)
	}
	return d
}

// ParseRequestCacheControl parses the Cache-Control of a request and, when
// the request has no Cache-Control field at all, honours "Pragma: no-cache"
// as "Cache-Control: no-cache" (RFC 7234 §5.4; RFC 9111 §5.4 deprecates
// Pragma but HTTP/1.0 clients still send it).
func ParseRequestCacheControl(h http.Header) Directives {
	d := ParseCacheControl(h)
	if len(h["Cache-Control"]) == 0 && pragmaNoCache(h["Pragma"]) {
		d.NoCache = true
	}
	return d
}

func pragmaNoCache(lines []string) bool {
	for _, line := range lines {
		for line != "" {
			var member string
			member, line, _ = strings.Cut(line, ",")
			// Pragma = 1#pragma-directive; only the bare no-cache is meaningful.
			if strings.EqualFold(strings.Trim(member, " \t"), "no-cache") {
				return true
			}
		}
	}
	return false
}

// directive identifiers, resolved without allocating.
const (
	dirUnknown = iota
	dirNoStore
	dirNoCache
	dirPrivate
	dirPublic
	dirMustRevalidate
	dirProxyRevalidate
	dirMustUnderstand
	dirNoTransform
	dirOnlyIfCached
	dirImmutable
	dirMaxAge
	dirSMaxAge
	dirMaxStale
	dirMinFresh
	dirSWR
	dirSIE
)

func lookupDirective(name string) int {
	// Switch on the length first so that at most a few EqualFold calls run.
	switch len(name) {
	case 6:
		if strings.EqualFold(name, "public") {
			return dirPublic
		}
	case 7:
		if strings.EqualFold(name, "max-age") {
			return dirMaxAge
		}
		if strings.EqualFold(name, "private") {
			return dirPrivate
		}
	case 8:
		if strings.EqualFold(name, "no-cache") {
			return dirNoCache
		}
		if strings.EqualFold(name, "no-store") {
			return dirNoStore
		}
		if strings.EqualFold(name, "s-maxage") {
			return dirSMaxAge
		}
	case 9:
		if strings.EqualFold(name, "max-stale") {
			return dirMaxStale
		}
		if strings.EqualFold(name, "min-fresh") {
			return dirMinFresh
		}
		if strings.EqualFold(name, "immutable") {
			return dirImmutable
		}
	case 12:
		if strings.EqualFold(name, "no-transform") {
			return dirNoTransform
		}
	case 14:
		if strings.EqualFold(name, "only-if-cached") {
			return dirOnlyIfCached
		}
		if strings.EqualFold(name, "stale-if-error") {
			return dirSIE
		}
	case 15:
		if strings.EqualFold(name, "must-revalidate") {
			return dirMustRevalidate
		}
		if strings.EqualFold(name, "must-understand") {
			return dirMustUnderstand
		}
	case 16:
		if strings.EqualFold(name, "proxy-revalidate") {
			return dirProxyRevalidate
		}
	case 22:
		if strings.EqualFold(name, "stale-while-revalidate") {
			return dirSWR
		}
	}
	return dirUnknown
}

// member is one parsed cache-directive: token [ "=" ( token / quoted-string ) ].
type member struct {
	name      string
	arg       string // raw: quoted-pairs are only unescaped by directives that use the argument
	hasArg    bool
	escaped   bool // arg contains quoted-pairs
	malformed bool // extra characters, whitespace around "=", empty or unterminated argument
}

// value returns the argument with quoted-pairs resolved.
func (m *member) value() string {
	if m.escaped {
		return unescapeQuoted(m.arg)
	}
	return m.arg
}

// parseLine parses one Cache-Control field line. The grammar (RFC 9111
// §5.2, RFC 9110 §5.6.1) is a comma-separated list where commas inside
// quoted strings do not separate members, so the scan is quote-aware:
// `extension="max-age=100", max-age=1` has max-age=1 only.
func (d *Directives) parseLine(s string) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\t' || c == ',' {
			i++
			continue
		}
		var m member
		start := i
		for i < len(s) && field.IsToken(s[i]) {
			i++
		}
		m.name = s[start:i]
		if i < len(s) && s[i] == '=' {
			m.hasArg = true
			i++
			if i < len(s) && s[i] == '"' {
				var ok bool
				m.arg, i, m.escaped, ok = readQuoted(s, i)
				m.malformed = !ok
			} else {
				as := i
				for i < len(s) && field.IsToken(s[i]) {
					i++
				}
				m.arg = s[as:i]
				m.malformed = m.arg == ""
			}
		}
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] != ',' {
			// e.g. "max-age =10", "max-age=10 20", "max-age=\"1\"x": the
			// member is malformed; resume after the next separating comma.
			m.malformed = true
			j = skipMember(s, j)
		}
		i = j
		if m.name != "" {
			d.apply(&m)
		}
	}
}

// readQuoted reads a quoted-string starting at s[i] == '"'. It returns the
// raw content (a substring, so nothing is allocated), the index after the
// closing quote, whether the content contains quoted-pairs and whether the
// string was terminated.
func readQuoted(s string, i int) (content string, next int, escaped, ok bool) {
	i++ // opening quote
	start := i
	for i < len(s) {
		switch s[i] {
		case '\\':
			escaped = true
			i += 2
			continue
		case '"':
			return s[start:i], i + 1, escaped, true
		}
		i++
	}
	return s[start:], len(s), escaped, false
}

func unescapeQuoted(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// skipMember returns the index of the next comma at or after i that is not
// inside a quoted string, or len(s). It always advances past s[i] unless
// s[i] is a comma.
func skipMember(s string, i int) int {
	inQuote := false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			return i
		}
	}
	return len(s)
}

func (d *Directives) apply(m *member) {
	bare := !m.hasArg && !m.malformed
	switch lookupDirective(m.name) {
	case dirNoStore:
		d.NoStore = true
	case dirMustRevalidate:
		d.MustRevalidate = true
	case dirProxyRevalidate:
		d.ProxyRevalidate = true
	case dirNoTransform:
		d.NoTransform = true
	case dirOnlyIfCached:
		d.OnlyIfCached = true
	case dirPublic:
		d.Public = d.Public || bare
	case dirImmutable:
		d.Immutable = d.Immutable || bare
	case dirMustUnderstand:
		d.MustUnderstand = d.MustUnderstand || bare
	case dirNoCache:
		applyQualified(&d.NoCache, &d.NoCacheFields, m)
	case dirPrivate:
		applyQualified(&d.Private, &d.PrivateFields, m)
	case dirMaxAge:
		applyDelta(&d.MaxAge, m, false)
	case dirSMaxAge:
		applyDelta(&d.SMaxAge, m, false)
	case dirMaxStale:
		applyDelta(&d.MaxStale, m, true)
	case dirMinFresh:
		applyDelta(&d.MinFresh, m, false)
	case dirSWR:
		applyDelta(&d.StaleWhileRevalidate, m, false)
	case dirSIE:
		applyDelta(&d.StaleIfError, m, false)
	}
}

// applyQualified handles no-cache and private, whose argument is an optional
// list of field names (RFC 9111 §5.2.2.4, §5.2.2.7). Anything that is not a
// non-empty, well-formed list degrades to the unqualified (stricter) form.
func applyQualified(flag *bool, fields *[]string, m *member) {
	if !m.hasArg || m.malformed {
		*flag = true
		return
	}
	before := len(*fields)
	ok := true
	rest := m.value()
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		name = strings.Trim(name, " \t")
		if name == "" {
			continue // empty list elements are ignored (RFC 9110 §5.6.1)
		}
		if !isToken(name) {
			ok = false
			break
		}
		*fields = appendField(*fields, textproto.CanonicalMIMEHeaderKey(name))
	}
	if !ok || len(*fields) == before {
		*fields = (*fields)[:before]
		*flag = true
	}
}

func appendField(list []string, name string) []string {
	for _, f := range list {
		if f == name {
			return list
		}
	}
	return append(list, name)
}

// applyDelta records a delta-seconds directive. A missing argument is only
// allowed for max-stale (§5.2.1.2). Repeating the directive with a
// different value makes it invalid: RFC 9111 §4.2.1 lets a cache consider
// such a response stale, which is the conservative choice.
func applyDelta(dst *DeltaSeconds, m *member, argOptional bool) {
	var v int64
	ok := false
	switch {
	case m.malformed:
	case !m.hasArg:
		v, ok = MaxDeltaSeconds, argOptional
	default:
		v, ok = parseDeltaSeconds(m.value())
	}
	if !dst.Present {
		*dst = DeltaSeconds{Present: true, Valid: ok, Seconds: v}
		if !ok {
			dst.Seconds = 0
		}
		return
	}
	if !dst.Valid || !ok || dst.Seconds != v {
		*dst = DeltaSeconds{Present: true}
	}
}

// parseDeltaSeconds parses 1*DIGIT, saturating at 2^31 (RFC 9111 §1.2.2).
// Signs, decimals, whitespace and empty strings are invalid.
func parseDeltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < MaxDeltaSeconds {
			n = n*10 + int64(c-'0')
		}
	}
	if n > MaxDeltaSeconds {
		n = MaxDeltaSeconds
	}
	return n, true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !field.IsToken(s[i]) {
			return false
		}
	}
	return true
}
