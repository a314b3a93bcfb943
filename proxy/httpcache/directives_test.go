package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		want  Directives
	}{
		// Basic forms (RFC 9111 §5.2).
		{"§5.2 no header", nil, Directives{}},
		{"§5.2 empty line", []string{""}, Directives{}},
		{"§5.2.2.1 max-age", []string{"max-age=3600"}, Directives{MaxAge: valid(3600)}},
		{"§5.2 names are case-insensitive (cc-parse MaX-aGe)", []string{"MaX-aGe=3600"}, Directives{MaxAge: valid(3600)}},
		{"§5.2 quoted-string argument accepted", []string{`max-age="3600"`}, Directives{MaxAge: valid(3600)}},
		{"§1.2.2 leading zeros", []string{"max-age=003600"}, Directives{MaxAge: valid(3600)}},
		{"§1.2.2 zero", []string{"max-age=0"}, Directives{MaxAge: valid(0)}},
		{"§4.2.1 decimal .0 is invalid", []string{"max-age=3600.0"}, Directives{MaxAge: invalid}},
		{"§4.2.1 decimal .5 is invalid", []string{"max-age=3600.5"}, Directives{MaxAge: invalid}},
		{"§4.2.1 leading alpha is invalid", []string{"max-age=a3600"}, Directives{MaxAge: invalid}},
		{"§4.2.1 trailing alpha is invalid", []string{"max-age=3600a"}, Directives{MaxAge: invalid}},
		{"§4.2.1 negative is invalid", []string{"max-age=-100"}, Directives{MaxAge: invalid}},
		{"§4.2.1 plus sign is invalid", []string{"max-age=+100"}, Directives{MaxAge: invalid}},
		{"§4.2.1 single quotes are invalid", []string{"max-age='3600'"}, Directives{MaxAge: invalid}},
		{"§5.2 space before = is malformed", []string{"max-age =3600"}, Directives{MaxAge: invalid}},
		{"§5.2 space after = is malformed", []string{"max-age= 3600"}, Directives{MaxAge: invalid}},
		{"§5.2.2.1 missing argument", []string{"max-age"}, Directives{MaxAge: invalid}},
		{"§5.2.2.1 empty argument", []string{"max-age="}, Directives{MaxAge: invalid}},
		{"§5.2.2.1 empty quoted argument", []string{`max-age=""`}, Directives{MaxAge: invalid}},
		{"§5.2 two tokens", []string{"max-age=5 6"}, Directives{MaxAge: invalid}},
		{"§5.2 trailing garbage after quote", []string{`max-age="5"x, public`}, Directives{MaxAge: invalid, Public: true}},
		{"§5.2 semicolon is not a separator", []string{"max-age=5;foo"}, Directives{MaxAge: invalid}},
		{"§5.2 unterminated quoted string", []string{`max-age="5`}, Directives{MaxAge: invalid}},
		{"§1.2.2 2^31 kept", []string{"max-age=2147483648"}, Directives{MaxAge: valid(MaxDeltaSeconds)}},
		{"§1.2.2 overflow saturates (cc-freshness max-plus)", []string{"max-age=99999999999"}, Directives{MaxAge: valid(MaxDeltaSeconds)}},
		{"§1.2.2 int64 overflow saturates", []string{"max-age=999999999999999999999999999999"}, Directives{MaxAge: valid(MaxDeltaSeconds)}},
		{"§4.2.1 conflicting duplicates, same line", []string{"max-age=1800, max-age=1"}, Directives{MaxAge: invalid}},
		{"§4.2.1 conflicting duplicates, separate lines", []string{"max-age=1800", "max-age=1"}, Directives{MaxAge: invalid}},
		{"§4.2.1 conflicting duplicates, stale first", []string{"max-age=1, max-age=1800"}, Directives{MaxAge: invalid}},
		{"§4.2.1 identical duplicates are fine", []string{"max-age=60, MAX-AGE=60"}, Directives{MaxAge: valid(60)}},
		{"§4.2.1 identical duplicates, token and quoted", []string{`max-age=60`, `max-age="60"`}, Directives{MaxAge: valid(60)}},
		{"§4.2.1 invalid then valid stays invalid", []string{"max-age=x, max-age=60"}, Directives{MaxAge: invalid}},
		{"§5.2 quoted max-age in extension ignored (before)", []string{`extension="max-age=3600", max-age=1`}, Directives{MaxAge: valid(1)}},
		{"§5.2 quoted max-age in extension ignored (after)", []string{`max-age=1, extension="max-age=3600"`}, Directives{MaxAge: valid(1)}},
		{"§5.2 quoted max-age in extension ignored (all quoted)", []string{`extension="max-age=100", max-age="1"`}, Directives{MaxAge: valid(1)}},
		{"§5.2 escaped quote and comma inside extension", []string{`foo="a,b\"c,max-age=5", max-age=7`}, Directives{MaxAge: valid(7)}},
		{"§5.2.3 unknown extension ignored", []string{"foobar, max-age=3600"}, Directives{MaxAge: valid(3600)}},
		{"§5.2.3 unknown extension with argument ignored", []string{"community=UCI, public"}, Directives{Public: true}},
		{"§5.2 empty list members", []string{", , max-age=5 ,,"}, Directives{MaxAge: valid(5)}},
		{"§5.2 tabs are OWS", []string{"\tmax-age=5\t,\tpublic"}, Directives{MaxAge: valid(5), Public: true}},
		{"§5.2 member without a name skipped", []string{"=5, public"}, Directives{Public: true}},
		{"§5.2 non-ASCII name ignored", []string{"mäx-age=5, public"}, Directives{Public: true}},
		{"§5.2 multiple lines combine", []string{"public", "max-age=10"}, Directives{Public: true, MaxAge: valid(10)}},

		// Response directives (RFC 9111 §5.2.2).
		{"§5.2.2.5 no-store", []string{"no-store"}, Directives{NoStore: true}},
		{"§5.2.2.5 no-store case-insensitive", []string{"No-StOrE"}, Directives{NoStore: true}},
		{"§4.2.1 no-store with a stray argument still honoured", []string{"no-store=1"}, Directives{NoStore: true}},
		{"§5.2.2.4 no-cache", []string{"no-cache"}, Directives{NoCache: true}},
		{"§5.2.2.4 no-cache case-insensitive", []string{"max-age=10000, No-CaChE"}, Directives{NoCache: true, MaxAge: valid(10000)}},
		{"§5.2.2.4 qualified no-cache", []string{`no-cache="Set-Cookie, X-Foo"`}, Directives{NoCacheFields: []string{"Set-Cookie", "X-Foo"}}},
		{"§5.2.2.4 qualified no-cache canonicalised, empty members dropped", []string{`no-cache="set-cookie,, x-foo "`}, Directives{NoCacheFields: []string{"Set-Cookie", "X-Foo"}}},
		{"§5.2 qualified no-cache in token form", []string{"no-cache=Set-Cookie"}, Directives{NoCacheFields: []string{"Set-Cookie"}}},
		{"§5.2.2.4 empty field list degrades to unqualified", []string{`no-cache=""`}, Directives{NoCache: true}},
		{"§5.2.2.4 invalid field name degrades to unqualified", []string{`no-cache="a b"`}, Directives{NoCache: true}},
		{"§5.2.2.4 unterminated list degrades to unqualified", []string{`no-cache="Set-Cookie`}, Directives{NoCache: true}},
		{"§4.2.1 qualified and unqualified both kept", []string{`no-cache="a", no-cache`}, Directives{NoCache: true, NoCacheFields: []string{"A"}}},
		{"§5.2.2.4 qualified lists merge and dedupe", []string{`no-cache="a, b"`, `no-cache="B, c"`}, Directives{NoCacheFields: []string{"A", "B", "C"}}},
		{"§5.2.2.7 private", []string{"private, max-age=3600"}, Directives{Private: true, MaxAge: valid(3600)}},
		{"§5.2.2.7 qualified private merges", []string{`private="Authorization", private="X-User"`}, Directives{PrivateFields: []string{"Authorization", "X-User"}}},
		{"§5.2.2.7 malformed qualified private degrades", []string{`private="a"x`}, Directives{Private: true}},
		{"§5.2.2.9 public", []string{"public"}, Directives{Public: true}},
		{"§4.2.1 public with an argument is not trusted", []string{"public=1"}, Directives{}},
		{"§5.2.2.2 must-revalidate", []string{"max-age=2, must-revalidate"}, Directives{MustRevalidate: true, MaxAge: valid(2)}},
		{"§5.2.2.8 proxy-revalidate", []string{"proxy-revalidate"}, Directives{ProxyRevalidate: true}},
		{"§5.2.2.3 must-understand", []string{"must-understand, no-store"}, Directives{MustUnderstand: true, NoStore: true}},
		{"§5.2.2.3 must-understand with an argument is ignored", []string{"must-understand=1, no-store"}, Directives{NoStore: true}},
		{"§5.2.2.6 no-transform", []string{"no-transform"}, Directives{NoTransform: true}},
		{"RFC 8246 immutable", []string{"max-age=10000, immutable"}, Directives{Immutable: true, MaxAge: valid(10000)}},
		{"§5.2.2.10 s-maxage", []string{"s-maxage=10"}, Directives{SMaxAge: valid(10)}},
		{"§5.2.2.10 s-maxage invalid", []string{"s-maxage=abc"}, Directives{SMaxAge: invalid}},
		{"RFC 5861 §3-4 stale extensions", []string{"max-age=1, stale-while-revalidate=30, stale-if-error=600"},
			Directives{MaxAge: valid(1), StaleWhileRevalidate: valid(30), StaleIfError: valid(600)}},
		{"RFC 5861 §3 stale-while-revalidate without value is invalid", []string{"stale-while-revalidate"}, Directives{StaleWhileRevalidate: invalid}},

		// Request directives (RFC 9111 §5.2.1).
		{"§5.2.1.2 max-stale without value accepts any staleness", []string{"max-stale"}, Directives{MaxStale: valid(MaxDeltaSeconds)}},
		{"§5.2.1.2 max-stale with value", []string{"max-stale=100"}, Directives{MaxStale: valid(100)}},
		{"§5.2.1.2 max-stale invalid", []string{"max-stale=abc"}, Directives{MaxStale: invalid}},
		{"§5.2.1.3 min-fresh", []string{"min-fresh=20"}, Directives{MinFresh: valid(20)}},
		{"§5.2.1.7 only-if-cached", []string{"only-if-cached"}, Directives{OnlyIfCached: true}},
		{"§5.2.1.1 max-age=0", []string{"max-age=0"}, Directives{MaxAge: valid(0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("Cache-Control", l)
			}
			if got := ParseCacheControl(h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCacheControl(%q) = %+v; want %+v", tt.lines, got, tt.want)
			}
		})
	}
}

func TestParseRequestCacheControl(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		want Directives
	}{
		{"RFC 7234 §5.4 Pragma: no-cache without Cache-Control", hdr("Pragma", "no-cache"), Directives{NoCache: true}},
		{"RFC 7234 §5.4 Pragma is case-insensitive", hdr("Pragma", "NO-CACHE"), Directives{NoCache: true}},
		{"RFC 7234 §5.4 Pragma list", hdr("Pragma", "foo, no-cache"), Directives{NoCache: true}},
		{"RFC 7234 §5.4 Pragma second line", hdr("Pragma", "foo", "Pragma", " no-cache "), Directives{NoCache: true}},
		{"RFC 7234 §5.4 Pragma ignored when Cache-Control present", hdr("Pragma", "no-cache", "Cache-Control", "max-age=10"), Directives{MaxAge: valid(10)}},
		{"RFC 7234 §5.4 Pragma ignored even with an empty Cache-Control", hdr("Pragma", "no-cache", "Cache-Control", ""), Directives{}},
		{"RFC 7234 §5.4 unrecognised pragma (pragma-request-extension)", hdr("Pragma", "unrecognised-extension"), Directives{}},
		{"RFC 7234 §5.4 pragma with argument is not no-cache", hdr("Pragma", "no-cache=1"), Directives{}},
		{"§5.2.1 plain request directives", hdr("Cache-Control", "max-stale, only-if-cached"), Directives{MaxStale: valid(MaxDeltaSeconds), OnlyIfCached: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRequestCacheControl(tt.h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRequestCacheControl(%v) = %+v; want %+v", tt.h, got, tt.want)
			}
		})
	}
}

// The proxy parses Cache-Control on every request: common headers must not
// allocate.
func TestParseCacheControlAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
	}{
		{"typical response", hdr("Cache-Control", "public, max-age=3600, s-maxage=600, stale-while-revalidate=30, stale-if-error=86400")},
		{"quoted argument", hdr("Cache-Control", `max-age="60", ext="a, b"`)},
		{"request", hdr("Cache-Control", "no-cache", "Pragma", "no-cache")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, func() { _ = ParseRequestCacheControl(tt.h) }); got != 0 {
				t.Errorf("allocations = %v; want 0", got)
			}
		})
	}
}

func TestDeltaSecondsDuration(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    DeltaSeconds
		want int64
	}{
		{"§1.2.2 valid", valid(30), 30},
		{"§4.2.1 invalid is zero", DeltaSeconds{Present: true, Seconds: 30}, 0},
		{"absent is zero", DeltaSeconds{}, 0},
		{"§1.2.2 saturated", valid(MaxDeltaSeconds), MaxDeltaSeconds},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Duration(); got != secs(tt.want) {
				t.Errorf("Duration() = %v; want %v", got, secs(tt.want))
			}
		})
	}
}
