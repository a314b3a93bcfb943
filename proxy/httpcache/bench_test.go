package httpcache

import (
	"net/http"
	"testing"
)

var (
	benchResp = hdr(
		"Cache-Control", "public, max-age=3600, s-maxage=600, stale-while-revalidate=30, stale-if-error=86400",
		"Date", "Tue, 10 Mar 2026 12:00:00 GMT",
		"Last-Modified", "Mon, 09 Mar 2026 12:00:00 GMT",
		"Etag", `"33a64df551425fcc55e4d42a148795d9f25f89d4"`,
		"Content-Type", "application/json",
		"Vary", "Accept-Encoding",
		"Age", "12",
	)
	benchReq = hdr("Accept-Encoding", "gzip, br", "User-Agent", "bench/1.0", "Cache-Control", "max-age=0")
)

func BenchmarkParseCacheControl(b *testing.B) {
	for _, bb := range []struct {
		name string
		h    http.Header
	}{
		{"response", benchResp},
		{"request", benchReq},
		{"request-pragma", hdr("Pragma", "no-cache")},
		{"quoted-extension", hdr("Cache-Control", `max-age="60", ext="a, \"b\", c", public`)},
		{"qualified-fields", hdr("Cache-Control", `no-cache="Set-Cookie, X-Foo", private="Authorization"`)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ParseRequestCacheControl(bb.h)
			}
		})
	}
}

func BenchmarkStorable(b *testing.B) {
	req := &http.Request{Method: http.MethodGet, Header: benchReq}
	resp := &http.Response{StatusCode: http.StatusOK, Header: benchResp}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := Storable(req, resp, StoreOptions{}); !ok {
			b.Fatal("not storable")
		}
	}
}

func BenchmarkStrippedFields(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = StrippedFields(benchResp)
	}
}

func BenchmarkFreshnessLifetime(b *testing.B) {
	for _, bb := range []struct {
		name string
		h    http.Header
	}{
		{"s-maxage", benchResp},
		{"expires", hdr("Expires", "Tue, 10 Mar 2026 13:00:00 GMT", "Date", "Tue, 10 Mar 2026 12:00:00 GMT")},
		{"heuristic", hdr("Last-Modified", "Mon, 09 Mar 2026 12:00:00 GMT", "Date", "Tue, 10 Mar 2026 12:00:00 GMT")},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = lifetimeOf(http.StatusOK, bb.h, t0, FreshnessOptions{})
			}
		})
	}
}

func BenchmarkNewEntry(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewEntry(http.StatusOK, benchResp, at(-1), t0, FreshnessOptions{})
	}
}

func BenchmarkDecide(b *testing.B) {
	e := NewEntry(http.StatusOK, benchResp, at(-1), t0, FreshnessOptions{})
	b.ReportAllocs()
	for b.Loop() {
		_ = Decide(ParseRequestCacheControl(benchReq), &e, at(30))
	}
}

func BenchmarkVaryKey(b *testing.B) {
	names, _ := VaryNames(benchResp)
	b.ReportAllocs()
	for b.Loop() {
		_ = varyKey(benchReq, names)
	}
}

func BenchmarkCacheStatus(b *testing.B) {
	cs := CacheStatus{Fwd: FwdStale, FwdStatus: 304, TTL: 30e9, HasTTL: true, Stored: true}
	b.ReportAllocs()
	for b.Loop() {
		_ = cs.String()
	}
}
