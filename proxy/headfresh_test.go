package proxy_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// headOrigin answers every request, HEAD included and conditional or not,
// with 200, the fields of fields(n) and the body of body(n) (n is the
// request number), so that a forwarded HEAD gets a 200 the proxy must
// compare with what it stored. Every response carries X-Version: n and an
// explicit Content-Length.
func headOrigin(fields func(n int64) []string, body func(n int64) string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, n int64) {
		kv := fields(n)
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		b := body(n)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Version", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		io.WriteString(w, b)
	}
}

func same(s string) func(int64) string { return func(int64) string { return s } }

// TestHeadFreshening: a 200 to a forwarded HEAD updates or invalidates the
// stored GET response (RFC 9111 §4.3.5).
func TestHeadFreshening(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name    string
		handler handlerFunc
		steps   []step
	}{
		{
			name: "§4.3.5 matching ETag and Content-Length: the stored response is freshened with the HEAD's fields",
			handler: headOrigin(func(n int64) []string {
				if n == 1 {
					return []string{"Cache-Control", "max-age=10", "Etag", `"h1"`}
				}
				return []string{"Cache-Control", "max-age=100", "Etag", `"h1"`}
			}, same("hello")),
			steps: []step{
				{hits: 1, body: "hello", cs: []string{"stored"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, noBody: true,
					cs: []string{"fwd=stale", "fwd-status=200", "stored"}, want: []string{"X-Version", "2"}},
				{hits: 2, body: "hello", cs: []string{"zerohop; hit; ttl=100"}, want: []string{"X-Version", "2", "Etag", `"h1"`}},
			},
		},
		{
			name: "§4.3.5 matching Last-Modified (no ETag): freshened",
			handler: headOrigin(func(n int64) []string {
				return []string{"Cache-Control", fmt.Sprintf("max-age=%d", 10*n), "Last-Modified", lm}
			}, same("hello")),
			steps: []step{
				{hits: 1, body: "hello", cs: []string{"stored"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"fwd=stale", "fwd-status=200", "stored"}},
				{hits: 2, body: "hello", cs: []string{"hit; ttl=20"}, want: []string{"X-Version", "2"}},
			},
		},
		{
			name: "§4.3.5 a different ETag: the stored response is invalidated, the next GET fetches",
			handler: headOrigin(func(n int64) []string {
				return []string{"Cache-Control", "max-age=10", "Etag", fmt.Sprintf(`"h%d"`, n)}
			}, func(n int64) string { return fmt.Sprintf("body%d", n) }),
			steps: []step{
				{hits: 1, body: "body1", cs: []string{"stored"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"fwd=stale", "fwd-status=200", "detail=head-mismatch"}, notCS: []string{"stored"}},
				{hits: 3, body: "body3", cs: []string{"fwd=uri-miss", "stored"}},
			},
		},
		{
			name: "§4.3.5 same ETag, different Content-Length: invalidated",
			handler: headOrigin(func(n int64) []string {
				return []string{"Cache-Control", "max-age=10", "Etag", `"h1"`}
			}, func(n int64) string { return strings.Repeat("x", int(n)) }),
			steps: []step{
				{hits: 1, body: "x", cs: []string{"stored"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"detail=head-mismatch"}, notCS: []string{"stored"}},
				{hits: 3, body: "xxx", cs: []string{"fwd=uri-miss"}},
			},
		},
		{
			name: "§4.3.5 a different Last-Modified: invalidated",
			handler: headOrigin(func(n int64) []string {
				return []string{"Cache-Control", "max-age=10", "Last-Modified", time.Now().Add(time.Duration(n) * -time.Hour).UTC().Format(http.TimeFormat)}
			}, same("hello")),
			steps: []step{
				{hits: 1, body: "hello", cs: []string{"stored"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"detail=head-mismatch"}},
				{hits: 3, cs: []string{"fwd=uri-miss"}},
			},
		},
		{
			name: "§4.3.5 request no-cache on a fresh entry: the HEAD is forwarded and freshens",
			handler: headOrigin(func(n int64) []string {
				return []string{"Cache-Control", fmt.Sprintf("max-age=%d", 100*n), "Etag", `"h1"`}
			}, same("hello")),
			steps: []step{
				{hits: 1, body: "hello"},
				{method: http.MethodHead, hdr: []string{"Cache-Control", "no-cache"}, hits: 2, cs: []string{"fwd=request", "fwd-status=200", "stored"}},
				{hits: 2, cs: []string{"hit; ttl=200"}, want: []string{"X-Version", "2"}},
			},
		},
		{
			name: "§4.3.5 a HEAD response without validators does not describe the stored body: invalidated",
			handler: headOrigin(func(n int64) []string {
				if n == 1 {
					return []string{"Cache-Control", "max-age=10", "Etag", `"h1"`}
				}
				return []string{"Cache-Control", "max-age=10"}
			}, same("hello")),
			steps: []step{
				{hits: 1, body: "hello"},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"detail=head-mismatch"}},
				{hits: 3, cs: []string{"fwd=uri-miss"}},
			},
		},
		{
			name:    "§4.3.4 a 304 to a HEAD revalidation freshens the stored GET response",
			handler: validated(`"e1"`, "Cache-Control", "max-age=10")(nil),
			steps: []step{
				{hits: 1, body: "v1", want: []string{"X-Version", "1"}},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, noBody: true,
					cs: []string{"fwd=stale", "fwd-status=304", "stored"}, want: []string{"Content-Length", "2", "X-Version", "2"}},
				{hits: 2, body: "v1", cs: []string{"zerohop; hit; ttl=10"}, want: []string{"X-Version", "2"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{handler: tt.handler})
			runSteps(t, h, tt.steps)
		})
	}
}

// TestHeadFresheningEncoded: a representation the proxy compressed is
// compared with a HEAD response by the upstream's ETag (its own differs)
// and not by Content-Length (the stored one is the encoded length), and
// keeps its own ETag when freshened.
func TestHeadFresheningEncoded(t *testing.T) {
	text := strings.Repeat("compressible text for the HEAD test. ", 40)
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", 10*n))
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"t1"`)
		w.Header().Set("X-Version", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Length", strconv.Itoa(len(text)))
		io.WriteString(w, text)
	}})
	gz := []string{"Accept-Encoding", "gzip"}
	first := h.do("GET", "/t", hdr(gz...), nil)
	if first.Header.Get("Content-Encoding") != "gzip" || first.Header.Get("Etag") != `"t1-gzip"` {
		t.Fatalf("not encoded: %q %q", first.Header.Get("Content-Encoding"), first.Header.Get("Etag"))
	}
	h.clock.Advance(20 * time.Second)
	head := h.do("HEAD", "/t", hdr(gz...), nil)
	if cs := head.cacheStatus(); !strings.Contains(cs, "fwd=stale") || !strings.Contains(cs, "stored") {
		t.Errorf("HEAD Cache-Status = %q; want fwd=stale and stored", cs)
	}
	again := h.do("GET", "/t", hdr(gz...), nil)
	if cs := again.cacheStatus(); !strings.Contains(cs, "hit; ttl=20") {
		t.Errorf("GET after HEAD: Cache-Status = %q; want a hit with ttl=20", cs)
	}
	if again.Header.Get("Etag") != `"t1-gzip"` || again.Header.Get("X-Version") != "2" || again.body != first.body {
		t.Errorf("GET after HEAD: ETag %q X-Version %q", again.Header.Get("Etag"), again.Header.Get("X-Version"))
	}
	zr, err := gzip.NewReader(strings.NewReader(again.body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != text {
		t.Error("the freshened body does not decode to the text")
	}
	if got := h.up.hits.Load(); got != 2 {
		t.Errorf("upstream requests = %d; want 2", got)
	}
}
