package httpcache

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func checkDelta(t *testing.T, name string, d DeltaSeconds) {
	t.Helper()
	if d.Valid && !d.Present {
		t.Errorf("%s: Valid without Present: %+v", name, d)
	}
	if d.Seconds < 0 || d.Seconds > MaxDeltaSeconds {
		t.Errorf("%s: Seconds out of range: %+v", name, d)
	}
	if !d.Valid && d.Seconds != 0 {
		t.Errorf("%s: invalid with Seconds: %+v", name, d)
	}
}

func checkFields(t *testing.T, name string, fields []string) {
	t.Helper()
	for i, f := range fields {
		if !isToken(f) || http.CanonicalHeaderKey(f) != f {
			t.Errorf("%s: field %q is not a canonical token", name, f)
		}
		if slices.Contains(fields[:i], f) {
			t.Errorf("%s: duplicate field %q", name, f)
		}
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, seed := range [][2]string{
		{"max-age=3600", ""},
		{`extension="max-age=100", max-age=1`, "no-cache"},
		{`no-cache="Set-Cookie, X-Foo", private="a"`, "max-age=1, max-age=2"},
		{`foo="a\"b\\`, "max-age= 10"},
		{"max-stale, min-fresh=9999999999999999999999", "stale-while-revalidate=30, stale-if-error=60"},
		{"s-maxage=0, must-understand, no-store", `public, "quoted-name"=1`},
		{",,,=,\",", "\t"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		h := http.Header{"Cache-Control": {a, b}, "Date": {a}, "Expires": {b}, "Age": {a}, "Last-Modified": {b}}
		d := ParseCacheControl(h)
		for name, v := range map[string]DeltaSeconds{
			"max-age": d.MaxAge, "s-maxage": d.SMaxAge, "max-stale": d.MaxStale, "min-fresh": d.MinFresh,
			"stale-while-revalidate": d.StaleWhileRevalidate, "stale-if-error": d.StaleIfError,
		} {
			checkDelta(t, name, v)
		}
		checkFields(t, "no-cache", d.NoCacheFields)
		checkFields(t, "private", d.PrivateFields)
		// Every field a qualified directive names is stripped, or absent.
		stripped := StrippedFields(h)
		for _, name := range append(d.NoCacheFields, d.PrivateFields...) {
			if _, ok := h[name]; ok && !slices.Contains(stripped, name) {
				t.Errorf("field %q named by Cache-Control not in StrippedFields %q", name, stripped)
			}
		}
		// Parsing is deterministic.
		if again := ParseCacheControl(h); !reflect.DeepEqual(d, again) {
			t.Errorf("ParseCacheControl not deterministic: %+v vs %+v", d, again)
		}
		// The rest of the pipeline accepts anything the parser returns.
		e := NewEntry(200, h, t0, t0, FreshnessOptions{})
		if e.Lifetime < 0 || e.Lifetime > maxDelta || e.CorrectedInitialAge < 0 || e.CorrectedInitialAge > maxDelta {
			t.Errorf("entry out of range: %+v", e)
		}
		req := ParseRequestCacheControl(http.Header{"Cache-Control": {b}})
		for _, now := range []time.Time{t0, at(1), t0.Add(MaxDeltaSeconds * time.Second)} {
			a := Decide(req, &e, now)
			if a < Miss || a > GatewayTimeout {
				t.Errorf("Decide() = %v", a)
			}
			_ = CanServeStaleOnError(req, e, now)
		}
		_, _ = Storable(&http.Request{Method: "GET", Header: http.Header{"Cache-Control": {b}}}, &http.Response{StatusCode: 200, Header: h}, StoreOptions{})
	})
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, seed := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"0", "Thu, 18 Aug 50 02:01:18 GMT", "Sat, 31 Dec 2016 23:59:60 GMT", "Mon, 29 Feb 2100 00:00:00 GMT",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseHTTPDate(s)
		if !ok {
			if !got.IsZero() {
				t.Errorf("parseHTTPDate(%q) failed but returned %v", s, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("parseHTTPDate(%q) not in UTC: %v", s, got)
		}
		if y := got.Year(); y >= 0 && y <= 9999 {
			again, ok := parseHTTPDate(got.Format(http.TimeFormat))
			if !ok || !again.Equal(got) {
				t.Errorf("round trip of %q: %v -> %v, %v", s, got, again, ok)
			}
		}
	})
}

func FuzzVary(f *testing.F) {
	f.Add("Accept-Encoding, User-Agent", "gzip, br", "x")
	f.Add("*, Foo", `"a,b"`, "")
	f.Add(",,Foo Bar,", "\\\"", "1")
	f.Fuzz(func(t *testing.T, vary, v1, v2 string) {
		names, _ := VaryNames(http.Header{"Vary": {vary}})
		if !slices.IsSorted(names) {
			t.Errorf("VaryNames(%q) not sorted: %q", vary, names)
		}
		for i, n := range names {
			if !isToken(n) || strings.ToLower(n) != n || (i > 0 && names[i-1] == n) {
				t.Errorf("VaryNames(%q) bad name %q in %q", vary, n, names)
			}
		}
		h1 := http.Header{}
		for _, n := range names {
			h1.Add(n, v1)
			h1.Add(n, v2)
		}
		if varyKey(h1, names) != varyKey(h1.Clone(), names) {
			t.Errorf("varyKey not deterministic")
		}
	})
}

func FuzzETag(f *testing.F) {
	f.Add(`"abc"`, `W/"abc", "x"`)
	f.Add(`W/""`, `*`)
	f.Add(`"a,b"`, `"a,b`)
	f.Fuzz(func(t *testing.T, etag, inm string) {
		tag, ok := parseETag(etag)
		_ = matchETagList([]string{inm}, tag, ok)
		if ok && !matchETagList([]string{tag.String()}, tag, true) {
			t.Errorf("entity-tag %q does not match itself", etag)
		}
		_ = SelectForUpdate(http.Header{"Etag": {etag}}, []http.Header{{"Etag": {inm}}, {"Last-Modified": {inm}}})
	})
}

func FuzzCacheStatus(f *testing.F) {
	f.Add("zerohop", "miss", "GET https://a/b", "no-store", int64(30))
	f.Add("", "", "\x00\xff\"\\", "1 2", int64(-1))
	f.Fuzz(func(t *testing.T, id, fwd, key, detail string, ttl int64) {
		cs := CacheStatus{Cache: id, Fwd: Fwd(fwd), Key: key, Detail: detail, TTL: time.Duration(ttl), HasTTL: true, Stored: true}
		s := cs.String()
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("String() = %q has byte %#x outside printable ASCII", s, c)
			}
		}
		h := http.Header{"Cache-Status": {s}}
		AppendCacheStatus(h, cs)
		if len(h["Cache-Status"]) != 1 || !strings.HasSuffix(h["Cache-Status"][0], ", "+s) {
			t.Errorf("AppendCacheStatus() = %q", h["Cache-Status"])
		}
	})
}

func FuzzSurrogateKeys(f *testing.F) {
	f.Add("a b  c", "x, y,,z")
	f.Fuzz(func(t *testing.T, sk, tag string) {
		keys := SurrogateKeys(http.Header{"Surrogate-Key": {sk}, "Cache-Tag": {tag}})
		for i, k := range keys {
			if k == "" || slices.Contains(keys[:i], k) {
				t.Errorf("SurrogateKeys() = %q: empty or duplicate key", keys)
			}
		}
	})
}
