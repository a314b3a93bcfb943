package proxy_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy"
	"github.com/zerohop/zerohop/shm"
)

// untaggedCache hides the writer's TaggedKeys: the proxy then cannot find
// the other variants of a URL (a Cache that cannot list them).
type untaggedCache struct{ proxy.Cache }

// variantOrigin varies on Accept-Language. The ETag of a language's
// representation is etags[lang]; a request whose If-None-Match holds it
// gets a 304 with max-age=100. Every response carries X-Version: n.
func variantOrigin(etags map[string]string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, n int64) {
		lang := r.Header.Get("Accept-Language")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Etag", etags[lang])
		w.Header().Set("X-Version", strconv.FormatInt(n, 10))
		if strings.Contains(r.Header.Get("If-None-Match"), etags[lang]) {
			w.Header().Set("Cache-Control", "max-age=100")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Content-Type", "application/octet-stream")
		fmt.Fprintf(w, "%s v%d", lang, n)
	}
}

// TestNotModifiedUpdatesVariants: a 304 updates every stored variant of
// the URL with the same strong validator, not only the one revalidated
// (RFC 9111 §4.3.4), when the cache can list the variants; a variant with
// another ETag is left stale.
func TestNotModifiedUpdatesVariants(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: variantOrigin(map[string]string{"en": `"same"`, "fr": `"same"`, "de": `"other"`})})
	runSteps(t, h, []step{
		{hdr: []string{"Accept-Language", "en"}, hits: 1, body: "en v1", cs: []string{"stored"}},
		{hdr: []string{"Accept-Language", "fr"}, hits: 2, body: "fr v2", cs: []string{"fwd=vary-miss", "stored"}},
		{hdr: []string{"Accept-Language", "de"}, hits: 3, body: "de v3", cs: []string{"stored"}},
		{advance: 20 * time.Second, hdr: []string{"Accept-Language", "en"}, hits: 4, body: "en v1",
			cs: []string{"fwd=stale", "fwd-status=304", "stored"}, upHdr: []string{"If-None-Match", `"same"`}},
		// Updated by en's 304: fresh again, with the 304's fields.
		{hdr: []string{"Accept-Language", "fr"}, hits: 4, body: "fr v2", cs: []string{"zerohop; hit; ttl=100"}, want: []string{"X-Version", "4"}},
		// Another strong validator: not selected, still stale.
		{hdr: []string{"Accept-Language", "de"}, hits: 5, body: "de v3", cs: []string{"fwd=stale", "fwd-status=304"}},
	})
}

// TestNotModifiedVariantsUnlisted: with a Cache that cannot list tagged
// keys, only the revalidated variant is updated; the others are
// revalidated on their own.
func TestNotModifiedVariantsUnlisted(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: variantOrigin(map[string]string{"en": `"same"`, "fr": `"same"`}),
		tier: func(w *shm.Writer) proxy.Cache { return untaggedCache{w} }})
	runSteps(t, h, []step{
		{hdr: []string{"Accept-Language", "en"}, hits: 1, body: "en v1"},
		{hdr: []string{"Accept-Language", "fr"}, hits: 2, body: "fr v2"},
		{advance: 20 * time.Second, hdr: []string{"Accept-Language", "en"}, hits: 3, cs: []string{"fwd=stale", "fwd-status=304", "stored"}},
		{hdr: []string{"Accept-Language", "fr"}, hits: 4, body: "fr v2", cs: []string{"fwd=stale", "fwd-status=304"}},
		{hdr: []string{"Accept-Language", "en"}, hits: 4, cs: []string{"hit; ttl=100"}},
	})
}

// TestNotModifiedUpdatesEncodedVariants: the representations the proxy
// encoded (Vary: Accept-Encoding, an ETag of their own) share the
// upstream's ETag, so the 304 for one of them updates all.
func TestNotModifiedUpdatesEncodedVariants(t *testing.T) {
	text := strings.Repeat("text the proxy compresses for this test. ", 40)
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Etag", `"t1"`)
		w.Header().Set("X-Version", strconv.FormatInt(n, 10))
		if r.Header.Get("If-None-Match") == `"t1"` {
			w.Header().Set("Cache-Control", "max-age=100")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, text)
	}})
	runSteps(t, h, []step{
		{hdr: []string{"Accept-Encoding", "gzip"}, hits: 1, want: []string{"Content-Encoding", "gzip", "Etag", `"t1-gzip"`}},
		{hdr: []string{"Accept-Encoding", "zstd"}, hits: 2, want: []string{"Content-Encoding", "zstd", "Etag", `"t1-zstd"`}},
		{hits: 3, body: text, want: []string{"Etag", `"t1"`}},
		{advance: 20 * time.Second, hdr: []string{"Accept-Encoding", "gzip"}, hits: 4, cs: []string{"fwd=stale", "fwd-status=304"},
			want: []string{"Etag", `"t1-gzip"`}, upHdr: []string{"If-None-Match", `"t1"`}},
		{hdr: []string{"Accept-Encoding", "zstd"}, hits: 4, cs: []string{"hit; ttl=100"}, want: []string{"Etag", `"t1-zstd"`, "X-Version", "4"}},
		{hits: 4, body: text, cs: []string{"hit; ttl=100"}, want: []string{"Etag", `"t1"`}},
	})
}

// TestNotModifiedContradicting: a 304 whose validators contradict the
// stored response cannot update it (RFC 9111 §4.3.4: MUST NOT); the proxy
// repeats the request unconditionally and stores the full answer.
func TestNotModifiedContradicting(t *testing.T) {
	tests := []struct {
		name    string
		handler func(*clock) handlerFunc
	}{
		{"a 304 with another ETag", func(*clock) handlerFunc {
			return func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Cache-Control", "max-age=10")
				switch n {
				case 1:
					w.Header().Set("Etag", `"a"`)
				case 2:
					w.Header().Set("Etag", `"b"`)
					w.WriteHeader(http.StatusNotModified)
					return
				default:
					w.Header().Set("Etag", `"b"`)
				}
				fmt.Fprintf(w, "v%d", n)
			}
		}},
		{"a 304 with an older Last-Modified (a rollback: not modified since, yet another representation)", func(c *clock) handlerFunc {
			first, older := c.Ago(time.Minute), c.Ago(time.Hour)
			return func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Cache-Control", "max-age=10")
				switch n {
				case 1:
					w.Header().Set("Last-Modified", first)
				case 2:
					if r.Header.Get("If-Modified-Since") != first {
						t.Errorf("If-Modified-Since = %q; want %q", r.Header.Get("If-Modified-Since"), first)
					}
					w.Header().Set("Last-Modified", older)
					w.WriteHeader(http.StatusNotModified)
					return
				default:
					w.Header().Set("Last-Modified", older)
				}
				fmt.Fprintf(w, "v%d", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			h := newHarness(t, harnessOptions{clock: clk, handler: tt.handler(clk)})
			runSteps(t, h, []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, hits: 3, body: "v3", cs: []string{"fwd=stale", "fwd-status=200", "stored", "detail=validator-mismatch"},
					upHdr: []string{"If-None-Match", absent, "If-Modified-Since", absent}},
				{hits: 3, body: "v3", cs: []string{"hit"}},
			})
		})
	}
}
