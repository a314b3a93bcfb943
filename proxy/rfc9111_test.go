package proxy_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
	"github.com/zerohop/zerohop/shm"
)

// absent is a wanted field value meaning "the field must not be present".
const absent = "<absent>"

// step is one request of a caching scenario and what must follow from it.
type step struct {
	advance time.Duration // clock advance before the request
	method  string        // default GET
	path    string        // default /r
	hdr     []string      // request fields, name/value pairs
	status  int           // default 200
	hits    int64         // upstream requests so far, after this step (-1: not checked)
	cs      []string      // substrings the Cache-Status must contain
	notCS   []string      // substrings it must not contain
	body    string        // expected body, when non-empty
	noBody  bool          // expect an empty body
	want    []string      // response fields, name/value pairs (value absent: not present)
	upHdr   []string      // fields of the last upstream request, name/value pairs
}

// runSteps sends each step's request through h and checks its outcome.
func runSteps(t *testing.T, h *harness, steps []step) {
	t.Helper()
	for i, s := range steps {
		h.clock.Advance(s.advance)
		method, path := s.method, s.path
		if method == "" {
			method = http.MethodGet
		}
		if path == "" {
			path = "/r"
		}
		r := h.do(method, path, hdr(s.hdr...), nil)
		at := fmt.Sprintf("step %d (%s %s %q, clock +%v)", i+1, method, path, s.hdr, s.advance)
		want := s.status
		if want == 0 {
			want = http.StatusOK
		}
		if r.StatusCode != want {
			t.Errorf("%s: status = %d; want %d (Cache-Status %q, body %q)", at, r.StatusCode, want, r.cacheStatus(), r.body)
		}
		if got := h.up.hits.Load(); s.hits >= 0 && got != s.hits {
			t.Errorf("%s: upstream requests = %d; want %d (Cache-Status %q)", at, got, s.hits, r.cacheStatus())
		}
		cs := r.cacheStatus()
		if !strings.HasPrefix(cs, "zerohop;") {
			t.Errorf("%s: Cache-Status = %q; want a zerohop member", at, cs)
		}
		for _, sub := range s.cs {
			if !strings.Contains(cs, sub) {
				t.Errorf("%s: Cache-Status = %q; want it to contain %q", at, cs, sub)
			}
		}
		for _, sub := range s.notCS {
			if strings.Contains(cs, sub) {
				t.Errorf("%s: Cache-Status = %q; want it not to contain %q", at, cs, sub)
			}
		}
		if s.body != "" && r.body != s.body {
			t.Errorf("%s: body = %q; want %q", at, r.body, s.body)
		}
		if s.noBody && r.body != "" {
			t.Errorf("%s: body = %q; want none", at, r.body)
		}
		for j := 0; j+1 < len(s.want); j += 2 {
			checkField(t, at+": response", r.Header, s.want[j], s.want[j+1])
		}
		if len(s.upHdr) > 0 {
			up := h.up.lastHeader()
			for j := 0; j+1 < len(s.upHdr); j += 2 {
				checkField(t, at+": upstream request", up, s.upHdr[j], s.upHdr[j+1])
			}
		}
	}
}

func checkField(t *testing.T, at string, h http.Header, name, want string) {
	t.Helper()
	got, ok := h[http.CanonicalHeaderKey(name)]
	switch {
	case want == absent && ok:
		t.Errorf("%s %s = %q; want absent", at, name, got)
	case want != absent && (!ok || strings.Join(got, ", ") != want):
		t.Errorf("%s %s = %q; want %q", at, name, got, want)
	}
}

// respond answers every request with status, the fields kv and the body
// "v<n>".
func respond(status int, kv ...string) func(*clock) handlerFunc {
	return func(*clock) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, n int64) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Add(kv[i], kv[i+1])
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(status)
			fmt.Fprintf(w, "v%d", n)
		}
	}
}

// validated answers like respond(200, kv...) with ETag etag and an
// X-Version of the request number, and answers a matching If-None-Match
// with 304 (carrying the same fields).
func validated(etag string, kv ...string) func(*clock) handlerFunc {
	return func(*clock) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, n int64) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Add(kv[i], kv[i+1])
			}
			w.Header().Set("Etag", etag)
			w.Header().Set("X-Version", strconv.FormatInt(n, 10))
			if strings.Contains(r.Header.Get("If-None-Match"), etag) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			fmt.Fprintf(w, "v%d", n)
		}
	}
}

// failAfterFirst answers the first request with respond(200, kv...) and
// every later one with 503.
func failAfterFirst(kv ...string) func(*clock) handlerFunc {
	return func(c *clock) handlerFunc {
		ok := respond(200, kv...)(c)
		return func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				ok(w, r, n)
				return
			}
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}
}

// TestRFC9111 runs caching scenarios end to end: a real upstream, the
// proxy, the shared-memory cache and a real client.
func TestRFC9111(t *testing.T) {
	tests := []struct {
		name    string
		handler func(*clock) handlerFunc
		config  func(*config.Config)
		steps   []step
	}{
		{
			name:    "§4.2.1 max-age: fresh hits, then a stale entry is fetched again",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"fwd=uri-miss", "fwd-status=200", "stored"}, body: "v1"},
				{hits: 1, cs: []string{"zerohop; hit; ttl=60"}, body: "v1", want: []string{"Age", "0"}},
				{advance: 30 * time.Second, hits: 1, cs: []string{"hit; ttl=30"}, body: "v1", want: []string{"Age", "30"}},
				{advance: 31 * time.Second, hits: 2, cs: []string{"fwd=stale", "stored"}, body: "v2"},
				{hits: 2, cs: []string{"hit; ttl=60"}, body: "v2"},
			},
		},
		{
			name:    "§5.2.2.10 s-maxage overrides max-age in a shared cache",
			handler: respond(200, "Cache-Control", "max-age=10, s-maxage=100"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{advance: 50 * time.Second, hits: 1, cs: []string{"hit; ttl=50"}, body: "v1"},
			},
		},
		{
			name: "§5.3 Expires gives the lifetime relative to Date",
			handler: func(c *clock) handlerFunc {
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Expires", c.Now().Add(120*time.Second).UTC().Format(http.TimeFormat))
					fmt.Fprintf(w, "v%d", n)
				}
			},
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hits: 1, cs: []string{"hit; ttl=120"}},
				{advance: 121 * time.Second, hits: 2, cs: []string{"fwd=stale"}},
			},
		},
		{
			name: "§4.2.2 heuristic freshness: 10% of the Last-Modified age for a 200",
			handler: func(c *clock) handlerFunc {
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Last-Modified", c.Ago(100*time.Hour))
					fmt.Fprintf(w, "v%d", n)
				}
			},
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hits: 1, cs: []string{"hit; ttl=36000"}},
			},
		},
		{
			name: "§4.2.2 no heuristic freshness for a 302",
			handler: func(c *clock) handlerFunc {
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Last-Modified", c.Ago(100*time.Hour))
					w.Header().Set("Location", "/elsewhere")
					w.WriteHeader(http.StatusFound)
				}
			},
			steps: []step{
				{status: 302, hits: 1, notCS: []string{"stored"}},
				{status: 302, hits: 2, cs: []string{"fwd=uri-miss"}},
			},
		},
		{
			name:    "§3 a 200 without freshness information or validator is not stored (nor reported stored)",
			handler: respond(200),
			steps: []step{
				{hits: 1, notCS: []string{"stored"}},
				{hits: 2, cs: []string{"fwd=uri-miss"}, notCS: []string{"stored"}},
			},
		},
		{
			name:    "§5.2.2.5 no-store is not stored",
			handler: respond(200, "Cache-Control", "no-store, max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"detail=no-store"}, notCS: []string{"stored"}},
				{hits: 2},
			},
		},
		{
			name:    "§5.2.1.5 request no-store: the response is not stored",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"Cache-Control", "no-store"}, hits: 1, notCS: []string{"stored"}},
				{hits: 2, cs: []string{"stored"}},
			},
		},
		{
			name:    "§5.2.2.3 must-understand overrides no-store for an understood status",
			handler: respond(200, "Cache-Control", "must-understand, no-store, max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hits: 1, cs: []string{"hit"}},
			},
		},
		{
			name:    "§5.2.2.7 private is not stored by a shared cache",
			handler: respond(200, "Cache-Control", "private, max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"detail=private"}},
				{hits: 2},
			},
		},
		{
			name:    "§5.2.2.7 private=\"X-Foo\": stored without X-Foo",
			handler: respond(200, "Cache-Control", `private="X-Foo", max-age=60`, "X-Foo", "secret", "X-Bar", "public"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}, want: []string{"X-Foo", "secret"}},
				{hits: 1, cs: []string{"hit"}, want: []string{"X-Foo", absent, "X-Bar", "public"}},
			},
		},
		{
			name:    "§5.2.2.4 no-cache: stored, but revalidated before every use",
			handler: validated(`"e1"`, "Cache-Control", "no-cache, max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}, body: "v1"},
				{hits: 2, cs: []string{"fwd=", "fwd-status=304"}, body: "v1", upHdr: []string{"If-None-Match", `"e1"`}},
				{hits: 3, cs: []string{"fwd-status=304"}, body: "v1"},
			},
		},
		{
			name:    "§5.2.2.4 no-cache=\"X-Foo\": stored without X-Foo, reused without revalidation",
			handler: respond(200, "Cache-Control", `no-cache="X-Foo", max-age=60`, "X-Foo", "secret"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}, want: []string{"X-Foo", "secret"}},
				{hits: 1, cs: []string{"hit"}, want: []string{"X-Foo", absent}},
			},
		},
		{
			name:    "§3.5 Authorization: a response without public/s-maxage is not stored",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"Authorization", "Bearer a"}, hits: 1, cs: []string{"detail=authorization"}},
				{hdr: []string{"Authorization", "Bearer a"}, hits: 2},
			},
		},
		{
			name:    "§3.5 Authorization: public allows storing",
			handler: respond(200, "Cache-Control", "public, max-age=60"),
			steps: []step{
				{hdr: []string{"Authorization", "Bearer a"}, hits: 1, cs: []string{"stored"}},
				{hdr: []string{"Authorization", "Bearer b"}, hits: 1, cs: []string{"hit"}},
				{hits: 1, cs: []string{"hit"}},
			},
		},
		{
			name:    "§3.5 Authorization: s-maxage allows storing",
			handler: respond(200, "Cache-Control", "s-maxage=60"),
			steps: []step{
				{hdr: []string{"Authorization", "Bearer a"}, hits: 1, cs: []string{"stored"}},
				{hdr: []string{"Authorization", "Bearer a"}, hits: 1, cs: []string{"hit"}},
			},
		},
		{
			name:    "§3.1 Set-Cookie: not stored by default",
			handler: respond(200, "Cache-Control", "max-age=60", "Set-Cookie", "sid=1"),
			steps: []step{
				{hits: 1, cs: []string{"detail=set-cookie"}, want: []string{"Set-Cookie", "sid=1"}},
				{hits: 2},
			},
		},
		{
			name:    "§3.1 Set-Cookie with allow_set_cookie: stored, the cookie is not",
			handler: respond(200, "Cache-Control", "max-age=60", "Set-Cookie", "sid=1"),
			config:  func(c *config.Config) { c.Cache.AllowSetCookie = true },
			steps: []step{
				{hits: 1, cs: []string{"stored"}, want: []string{"Set-Cookie", "sid=1"}},
				{hits: 1, cs: []string{"hit"}, want: []string{"Set-Cookie", absent}},
			},
		},
		{
			name:    "§4.1 Vary: * is never stored",
			handler: respond(200, "Cache-Control", "max-age=60", "Vary", "*"),
			steps: []step{
				{hits: 1, cs: []string{"detail=vary-star"}},
				{hits: 2},
			},
		},
		{
			name:    "§4.2.3 Age of a hit adds the resident time to the upstream's Age",
			handler: respond(200, "Cache-Control", "max-age=300", "Age", "30"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}, want: []string{"Age", "30"}},
				{advance: 10 * time.Second, hits: 1, cs: []string{"hit; ttl=260"}, want: []string{"Age", "40"}},
			},
		},
		{
			name:    "§4.2.3 apparent age from Date counts into the Age",
			handler: respond(200, "Cache-Control", "max-age=300"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{advance: 20 * time.Second, hits: 1, cs: []string{"hit; ttl=280"}, want: []string{"Age", "20"}},
			},
		},
		{
			name:    "RFC 9110 §9.3.2 HEAD is answered from the stored GET",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}, body: "v1"},
				{method: http.MethodHead, hits: 1, cs: []string{"hit"}, noBody: true, want: []string{"Content-Length", "2"}},
			},
		},
		{
			name:    "RFC 9110 §9.3.2 HEAD on a stale entry is revalidated, answered without a body",
			handler: validated(`"e1"`, "Cache-Control", "max-age=10"),
			steps: []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"fwd=stale", "fwd-status=304"}, noBody: true, want: []string{"Content-Length", "2"}},
				{method: http.MethodGet, hits: -1, body: "v1"},
			},
		},
		{
			name:    "RFC 9110 §9.3.2 a HEAD miss is forwarded as HEAD and stores nothing",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{method: http.MethodHead, hits: 1, cs: []string{"fwd=uri-miss"}, notCS: []string{"stored"}, noBody: true},
				{hits: 2, cs: []string{"fwd=uri-miss", "stored"}, body: "v2"},
			},
		},
		{
			name:    "§5.2.1.4 request no-cache: revalidated with the stored validator",
			handler: validated(`"e1"`, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hdr: []string{"Cache-Control", "no-cache"}, hits: 2, cs: []string{"fwd=request", "fwd-status=304"}, body: "v1", upHdr: []string{"If-None-Match", `"e1"`}},
				{hits: 2, cs: []string{"hit"}},
			},
		},
		{
			name:    "§5.4 Pragma: no-cache without Cache-Control means no-cache",
			handler: validated(`"e1"`, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1},
				{hdr: []string{"Pragma", "no-cache"}, hits: 2, cs: []string{"fwd=request"}, body: "v1"},
			},
		},
		{
			// "age less than or equal to": at age exactly 0 the stored
			// response qualifies (only a frozen test clock gets there).
			name:    "§5.2.1.1 request max-age=0: revalidated once the entry has any age",
			handler: validated(`"e1"`, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1},
				{hdr: []string{"Cache-Control", "max-age=0"}, hits: 1, cs: []string{"hit"}},
				{advance: time.Second, hdr: []string{"Cache-Control", "max-age=0"}, hits: 2, cs: []string{"fwd=request", "fwd-status=304"}, body: "v1"},
			},
		},
		{
			name:    "§5.2.1.1 request max-age: an entry no older is used, an older one is not",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1},
				{advance: 10 * time.Second, hdr: []string{"Cache-Control", "max-age=20"}, hits: 1, cs: []string{"hit"}},
				{hdr: []string{"Cache-Control", "max-age=5"}, hits: 2, cs: []string{"fwd=request"}, body: "v2"},
			},
		},
		{
			name:    "§5.2.1.2 max-stale: a stale entry within the limit is served",
			handler: respond(200, "Cache-Control", "max-age=10"),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, hdr: []string{"Cache-Control", "max-stale=30"}, hits: 1, cs: []string{"hit; ttl=-10", "detail=max-stale"}, body: "v1", want: []string{"Age", "20"}},
				{hdr: []string{"Cache-Control", "max-stale"}, hits: 1, cs: []string{"hit"}, body: "v1"},
				{hdr: []string{"Cache-Control", "max-stale=5"}, hits: 2, body: "v2"},
			},
		},
		{
			name:    "§4.2.4 s-maxage forbids serving stale, even with max-stale",
			handler: respond(200, "Cache-Control", "s-maxage=10"),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, hdr: []string{"Cache-Control", "max-stale=100"}, hits: 2, body: "v2"},
			},
		},
		{
			name:    "§5.2.1.3 min-fresh: used only with that much freshness left",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1},
				{advance: 30 * time.Second, hdr: []string{"Cache-Control", "min-fresh=20"}, hits: 1, cs: []string{"hit"}},
				{hdr: []string{"Cache-Control", "min-fresh=40"}, hits: 2, cs: []string{"fwd=request"}, body: "v2"},
			},
		},
		{
			name:    "§5.2.1.7 only-if-cached: 504 when nothing is stored, a hit when it is",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"Cache-Control", "only-if-cached"}, status: 504, hits: 0, cs: []string{"fwd=uri-miss"}},
				{hits: 1, cs: []string{"stored"}},
				{hdr: []string{"Cache-Control", "only-if-cached"}, hits: 1, cs: []string{"hit"}, body: "v1"},
				{advance: 61 * time.Second, hdr: []string{"Cache-Control", "only-if-cached"}, status: 504, hits: 1},
			},
		},
		{
			name:    "§4.3.4 a 304 updates the stored header; the body comes from the cache",
			handler: validated(`"e1"`, "Cache-Control", "max-age=10"),
			steps: []step{
				{hits: 1, want: []string{"X-Version", "1"}, body: "v1"},
				{advance: 20 * time.Second, hits: 2, cs: []string{"fwd=stale", "fwd-status=304"}, body: "v1", want: []string{"X-Version", "2", "Age", "0"}, upHdr: []string{"If-None-Match", `"e1"`}},
				{hits: 2, cs: []string{"hit; ttl=10"}, body: "v1", want: []string{"X-Version", "2"}},
			},
		},
		{
			name: "§4.3.4 a 304 without validators updates the one response it revalidated",
			handler: func(c *clock) handlerFunc {
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("X-Version", strconv.FormatInt(n, 10))
					if r.Header.Get("If-None-Match") == `"e1"` {
						w.Header().Set("Cache-Control", "max-age=30")
						w.WriteHeader(http.StatusNotModified) // no ETag, no Last-Modified
						return
					}
					w.Header().Set("Cache-Control", "max-age=10")
					w.Header().Set("Etag", `"e1"`)
					fmt.Fprintf(w, "v%d", n)
				}
			},
			steps: []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, hits: 2, cs: []string{"fwd=stale", "fwd-status=304", "stored"}, body: "v1", want: []string{"Etag", `"e1"`}},
				{hits: 2, cs: []string{"hit; ttl=30"}, body: "v1", want: []string{"X-Version", "2"}},
			},
		},
		{
			name:    "§4.3.5 a 304 to a forwarded HEAD freshens the stored GET response",
			handler: validated(`"e1"`, "Cache-Control", "max-age=10"),
			steps: []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, method: http.MethodHead, hits: 2, cs: []string{"fwd=stale", "fwd-status=304", "stored"}, noBody: true},
				{hits: 2, cs: []string{"hit; ttl=10"}, body: "v1", want: []string{"X-Version", "2"}},
			},
		},
		{
			name:    "RFC 9110 §14 a range of a stored response is served 206 from the cache",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1, body: "v1"},
				{hdr: []string{"Range", "bytes=1-"}, status: 206, hits: 1, cs: []string{"hit"}, body: "1",
					want: []string{"Content-Range", "bytes 1-1/2", "Accept-Ranges", "bytes"}},
				{hdr: []string{"Range", "bytes=2-"}, status: 416, hits: 1, cs: []string{"hit"}, noBody: true, want: []string{"Content-Range", "bytes */2"}},
			},
		},
		{
			name: "§4.3.4 a 304 with a new max-age gives the entry that lifetime",
			handler: func(c *clock) handlerFunc {
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Etag", `"e1"`)
					if n == 1 {
						w.Header().Set("Cache-Control", "max-age=10")
						io.WriteString(w, "v1")
						return
					}
					w.Header().Set("Cache-Control", "max-age=100")
					w.WriteHeader(http.StatusNotModified)
				}
			},
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{advance: 20 * time.Second, hits: 2, cs: []string{"fwd-status=304", "ttl=100"}, body: "v1", want: []string{"Cache-Control", "max-age=100"}},
				{advance: 50 * time.Second, hits: 2, cs: []string{"hit; ttl=50"}, body: "v1"},
			},
		},
		{
			name: "§4.3.1 Last-Modified: revalidated with If-Modified-Since",
			handler: func(c *clock) handlerFunc {
				lm := c.Ago(time.Hour)
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Cache-Control", "max-age=10")
					w.Header().Set("Last-Modified", lm)
					if r.Header.Get("If-Modified-Since") == lm {
						w.WriteHeader(http.StatusNotModified)
						return
					}
					fmt.Fprintf(w, "v%d", n)
				}
			},
			steps: []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, hits: 2, cs: []string{"fwd=stale", "fwd-status=304"}, body: "v1"},
				{hits: 2, cs: []string{"hit"}, body: "v1"},
			},
		},
		{
			name:    "§4.3.2 the client's own If-None-Match is answered 304 from the cache",
			handler: validated(`"e1"`, "Cache-Control", "max-age=60"),
			steps: []step{
				{hits: 1},
				{hdr: []string{"If-None-Match", `"e1"`}, status: 304, hits: 1, cs: []string{"hit"}, noBody: true, want: []string{"Etag", `"e1"`}},
				{hdr: []string{"If-None-Match", `"other"`}, hits: 1, cs: []string{"hit"}, body: "v1"},
			},
		},
		{
			name:    "RFC 5861 §4 stale-if-error: a 503 on refresh is answered with the stale entry",
			handler: failAfterFirst("Cache-Control", "max-age=10, stale-if-error=60"),
			steps: []step{
				{hits: 1, body: "v1"},
				{advance: 20 * time.Second, hits: 2, cs: []string{"detail=stale-if-error"}, body: "v1"},
				{advance: 60 * time.Second, status: 503, hits: 3},
			},
		},
		{
			name: "RFC 5861 §4 stale-if-error: also when revalidating with a validator",
			handler: func(c *clock) handlerFunc {
				ok := validated(`"e1"`, "Cache-Control", "max-age=10, stale-if-error=60")(c)
				return func(w http.ResponseWriter, r *http.Request, n int64) {
					if n > 1 {
						http.Error(w, "down", http.StatusInternalServerError)
						return
					}
					ok(w, r, n)
				}
			},
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, hits: 2, cs: []string{"detail=stale-if-error"}, body: "v1"},
			},
		},
		{
			name:    "RFC 5861 §4 request stale-if-error",
			handler: failAfterFirst("Cache-Control", "max-age=10"),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, status: 503, hits: 2},
				{hdr: []string{"Cache-Control", "stale-if-error=60"}, hits: 3, cs: []string{"detail=stale-if-error"}, body: "v1"},
			},
		},
		{
			name:    "cache.stale_if_error applies when the response names no window",
			handler: failAfterFirst("Cache-Control", "max-age=10"),
			config:  func(c *config.Config) { c.Cache.StaleIfError = time.Minute },
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, hits: 2, cs: []string{"detail=stale-if-error"}, body: "v1"},
			},
		},
		{
			name:    "§4.2.4 must-revalidate forbids stale-if-error",
			handler: failAfterFirst("Cache-Control", "max-age=10, must-revalidate, stale-if-error=60"),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, status: 503, hits: 2},
			},
		},
		{
			name:    "cache.default_ttl applies without explicit freshness",
			handler: respond(200),
			config:  func(c *config.Config) { c.Cache.DefaultTTL = 30 * time.Second },
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hits: 1, cs: []string{"hit; ttl=30"}},
			},
		},
		{
			name:    "route ttl_override replaces the response's lifetime",
			handler: respond(200, "Cache-Control", "max-age=5"),
			config: func(c *config.Config) {
				c.Routes[0].Cache = &config.RouteCache{Enabled: true, TTLOverride: 100 * time.Second}
			},
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hits: 1, cs: []string{"hit; ttl=100"}},
			},
		},
		{
			name:    "route cache disabled: every request is forwarded, fwd=bypass",
			handler: respond(200, "Cache-Control", "max-age=60"),
			config: func(c *config.Config) {
				c.Routes[0].Cache = &config.RouteCache{Enabled: false}
			},
			steps: []step{
				{hits: 1, cs: []string{"fwd=bypass"}},
				{hits: 2, cs: []string{"fwd=bypass"}},
			},
		},
		{
			name:    "route bypass header skips the cache",
			handler: respond(200, "Cache-Control", "max-age=60"),
			config: func(c *config.Config) {
				c.Routes[0].Cache = &config.RouteCache{Enabled: true, Bypass: []string{"x-no-cache"}}
			},
			steps: []step{
				{hits: 1, cs: []string{"stored"}},
				{hdr: []string{"X-No-Cache", "1"}, hits: 2, cs: []string{"fwd=bypass", "detail=route-bypass"}, body: "v2"},
				{hits: 2, cs: []string{"hit"}, body: "v1"},
			},
		},
		{
			name:    "RFC 9211 §2.2 unsafe methods are forwarded with fwd=method",
			handler: respond(200, "Cache-Control", "max-age=60"),
			steps: []step{
				{method: http.MethodPost, hits: 1, cs: []string{"fwd=method"}, notCS: []string{"stored"}},
				{method: http.MethodPost, hits: 2, cs: []string{"fwd=method"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			h := newHarness(t, harnessOptions{clock: clk, handler: tt.handler(clk), config: tt.config})
			runSteps(t, h, tt.steps)
		})
	}
}

// TestVary: each variant named by Vary (RFC 9111 §4.1) is stored and
// selected separately.
func TestVary(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Content-Type", "application/octet-stream")
		fmt.Fprintf(w, "%s v%d", r.Header.Get("Accept-Language"), n)
	}})
	runSteps(t, h, []step{
		{hdr: []string{"Accept-Language", "en"}, hits: 1, cs: []string{"fwd=uri-miss", "stored"}, body: "en v1"},
		{hdr: []string{"Accept-Language", "fr"}, hits: 2, cs: []string{"fwd=vary-miss", "stored"}, body: "fr v2"},
		{hdr: []string{"Accept-Language", "en"}, hits: 2, cs: []string{"hit"}, body: "en v1"},
		{hdr: []string{"Accept-Language", "fr"}, hits: 2, cs: []string{"hit"}, body: "fr v2"},
		{hdr: []string{"Accept-Language", "de"}, hits: 3, cs: []string{"fwd=vary-miss"}, body: "de v3"},
		// An absent field is its own variant, distinct from any value.
		{hits: 4, cs: []string{"fwd=vary-miss"}, body: " v4"},
		{hits: 4, cs: []string{"hit"}, body: " v4"},
		// §4.1: whitespace around list members is normalised.
		{hdr: []string{"Accept-Language", "en,fr"}, hits: 5, cs: []string{"fwd=vary-miss"}, body: "en,fr v5"},
		{hdr: []string{"Accept-Language", "en ,  fr"}, hits: 5, cs: []string{"hit"}, body: "en,fr v5"},
	})
}

// TestStaleWhileRevalidate: a stale entry inside its
// stale-while-revalidate window is served at once and refreshed by
// exactly one background request, however many clients ask meanwhile
// (RFC 5861 §3).
func TestStaleWhileRevalidate(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 2 { // the background refresh: held until every client is served
			select {
			case <-gate:
			case <-time.After(wait):
			}
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Header().Set("X-Version", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		fmt.Fprintf(w, "v%d", n)
	}})
	runSteps(t, h, []step{{hits: 1, body: "v1"}})
	// The first fetch's flight ends after its response is sent; a stale hit
	// that finds it still open leaves the refresh to it and starts none.
	if !eventually(func() bool { return proxy.FlightsInProgress(h.p) == 0 }) {
		t.Fatal("the first fetch's flight never ended")
	}
	h.clock.Advance(20 * time.Second)

	const clients = 10
	results := make([]*result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp, err := h.client.Get(h.url("/r"))
			if err != nil {
				results[i] = &result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[i] = &result{Response: resp, body: string(b), err: err}
		})
	}
	wg.Wait() // every client is answered while the refresh is still held
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("client %d: %v", i, r.err)
		}
		if r.body != "v1" || !strings.Contains(r.cacheStatus(), "hit") || !strings.Contains(r.cacheStatus(), "detail=stale-while-revalidate") {
			t.Errorf("client %d: %q, Cache-Status %q; want stale v1 with detail=stale-while-revalidate", i, r.body, r.cacheStatus())
		}
	}
	close(gate)
	if !eventually(func() bool {
		e, _, ok := h.w.GetStale(nil, h.key("/r"))
		v, _ := e.Header("X-Version")
		return ok && string(v) == "2"
	}) {
		t.Fatalf("the background refresh never stored the new response (upstream requests %d)", h.up.hits.Load())
	}
	if got := h.up.hits.Load(); got != 2 {
		t.Errorf("upstream requests = %d; want 2 (one fetch, one background refresh)", got)
	}
	runSteps(t, h, []step{{hits: 2, cs: []string{"hit; ttl=10"}, body: "v2", want: []string{"X-Version", "2"}}})
}

// TestStaleIfErrorUpstreamDown: with the upstream unreachable, a stale
// entry with a stale-if-error window is served (RFC 5861 §4), unless
// must-revalidate forbids it (RFC 9111 §4.2.4), in which case the answer
// is a 504 (RFC 9111 §5.2.2.2).
func TestStaleIfErrorUpstreamDown(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		status       int
		cs           string
	}{
		{"RFC 5861 §4 stale-if-error serves the stale entry", "max-age=10, stale-if-error=60", 200, "detail=stale-if-error"},
		{"§5.2.2.2 must-revalidate: no stale, 504", "max-age=10, must-revalidate, stale-if-error=60", 504, "detail=upstream-error"},
		{"no stale-if-error: the error is passed on", "max-age=10", 502, "detail=upstream-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: respond(200, "Cache-Control", tt.cacheControl)(nil)})
			runSteps(t, h, []step{{hits: 1, body: "v1"}})
			h.up.Close() // closed listener: connection refused
			h.clock.Advance(20 * time.Second)
			r := h.get("/r")
			if r.StatusCode != tt.status || !strings.Contains(r.cacheStatus(), tt.cs) {
				t.Errorf("got %d, Cache-Status %q; want %d with %q", r.StatusCode, r.cacheStatus(), tt.status, tt.cs)
			}
			if tt.status == 200 && r.body != "v1" {
				t.Errorf("body = %q; want the stale %q", r.body, "v1")
			}
		})
	}
}

// TestCoalescing: concurrent misses for one URL make one upstream request
// and all get its response (RFC 9111 §4: a cache may collapse requests).
func TestCoalescing(t *testing.T) {
	const clients = 20
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/octet-stream")
		fmt.Fprintf(w, "v%d", n)
	}})
	var wg sync.WaitGroup
	var bad atomic.Int32
	bodies := make(chan string, clients)
	for range clients {
		wg.Go(func() {
			resp, err := h.client.Get(h.url("/slow"))
			if err != nil {
				bad.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies <- string(b)
		})
	}
	wg.Wait()
	close(bodies)
	if bad.Load() != 0 {
		t.Fatalf("%d clients failed", bad.Load())
	}
	n := 0
	for b := range bodies {
		n++
		if b != "v1" {
			t.Errorf("body = %q; want %q", b, "v1")
		}
	}
	if n != clients {
		t.Errorf("answered clients = %d; want %d", n, clients)
	}
	if got := h.up.hits.Load(); got != 1 {
		t.Errorf("upstream requests = %d; want 1", got)
	}
}

// TestInvalidation: a non-error response to an unsafe method invalidates
// the target URI and same-origin Location / Content-Location (RFC 9111
// §4.4); an error response does not.
func TestInvalidation(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		status      int
		location    string
		contentLoc  string
		invalidated []string // of /a, /b, /c (all cached beforehand)
	}{
		{"§4.4 POST 200 invalidates the target", http.MethodPost, 200, "", "", []string{"/a"}},
		{"§4.4 PUT 201 invalidates the target and Location", http.MethodPut, 201, "/b", "", []string{"/a", "/b"}},
		{"§4.4 DELETE 204 invalidates the target and Content-Location", http.MethodDelete, 204, "", "/c", []string{"/a", "/c"}},
		{"§4.4 POST 303 invalidates target, Location and Content-Location", http.MethodPost, 303, "/b", "/c", []string{"/a", "/b", "/c"}},
		{"§4.4 another origin's Location is not invalidated", http.MethodPost, 200, "http://other.example/b", "", []string{"/a"}},
		{"§4.4 a 4xx invalidates nothing", http.MethodPost, 404, "/b", "", nil},
		{"§4.4 a 5xx invalidates nothing", http.MethodDelete, 500, "", "/c", nil},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				h := newHarness(t, harnessOptions{mode: mode, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
					if r.Method == http.MethodGet {
						w.Header().Set("Cache-Control", "max-age=60")
						fmt.Fprintf(w, "v%d", n)
						return
					}
					if tt.location != "" {
						w.Header().Set("Location", tt.location)
					}
					if tt.contentLoc != "" {
						w.Header().Set("Content-Location", tt.contentLoc)
					}
					w.WriteHeader(tt.status)
				}})
				paths := []string{"/a", "/b", "/c"}
				for _, p := range paths {
					h.get(p)
				}
				r := h.do(tt.method, "/a", nil, nil)
				if r.StatusCode != tt.status {
					t.Fatalf("%s status = %d; want %d", tt.method, r.StatusCode, tt.status)
				}
				for _, p := range paths {
					_, _, stored := h.w.GetStale(nil, h.key(p))
					want := !contains(tt.invalidated, p)
					if stored != want {
						t.Errorf("%s stored = %v; want %v", p, stored, want)
					}
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSurrogateKeys: Surrogate-Key and Cache-Tag become the entry's tags,
// and purging a tag removes it.
func TestSurrogateKeys(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Surrogate-Key", "product-1 catalog")
		w.Header().Set("Cache-Tag", "catalog, shop")
		fmt.Fprintf(w, "v%d", n)
	}})
	runSteps(t, h, []step{{hits: 1, cs: []string{"stored"}}})
	e, _, ok := h.w.GetStale(nil, h.key("/r"))
	if !ok {
		t.Fatal("entry not stored")
	}
	var tags []string
	for it := shm.NewStringIter(e.Tags); it.Next(); {
		tags = append(tags, it.String())
	}
	if got, want := strings.Join(tags, " "), "product-1 catalog shop"; got != want {
		t.Errorf("tags = %q; want %q", got, want)
	}
	if n := h.w.PurgeTag("shop", false); n != 1 {
		t.Errorf("PurgeTag removed %d entries; want 1", n)
	}
	runSteps(t, h, []step{{hits: 2, cs: []string{"fwd=uri-miss"}, body: "v2"}})
}

// TestCompression: a compressible response is encoded for a client that
// accepts it, each encoding is a separate variant keyed on
// Accept-Encoding, and the encoded representation has its own ETag.
func TestCompression(t *testing.T) {
	text := strings.Repeat("zerohop compresses text. ", 200)
	tests := []struct {
		name           string
		acceptEncoding string
		encoding       string
		etag           string
	}{
		{"gzip", "gzip", "gzip", `"t1-gzip"`},
		{"zstd preferred", "gzip, zstd", "zstd", `"t1-zstd"`},
		{"identity (no Accept-Encoding)", "", "", `"t1"`},
	}
	decode := func(enc string, b []byte) (string, error) {
		switch enc {
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return "", err
			}
			out, err := io.ReadAll(zr)
			return string(out), err
		case "zstd":
			zr, err := zstd.NewReader(bytes.NewReader(b))
			if err != nil {
				return "", err
			}
			defer zr.Close()
			out, err := io.ReadAll(zr)
			return string(out), err
		}
		return string(b), nil
	}
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Etag", `"t1"`)
		io.WriteString(w, text)
	}})
	for round, want := range []string{"fwd=", "hit"} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/round %d", tt.name, round+1), func(t *testing.T) {
				r := h.get("/text", "Accept-Encoding", tt.acceptEncoding)
				if ce := r.Header.Get("Content-Encoding"); ce != tt.encoding {
					t.Errorf("Content-Encoding = %q; want %q", ce, tt.encoding)
				}
				got, err := decode(tt.encoding, []byte(r.body))
				if err != nil || got != text {
					t.Errorf("decoded body: %d bytes, %v; want the %d original bytes", len(got), err, len(text))
				}
				if v := r.Header.Get("Vary"); !strings.Contains(v, "Accept-Encoding") {
					t.Errorf("Vary = %q; want Accept-Encoding", v)
				}
				if et := r.Header.Get("Etag"); et != tt.etag {
					t.Errorf("ETag = %q; want %q", et, tt.etag)
				}
				if cs := r.cacheStatus(); !strings.Contains(cs, want) {
					t.Errorf("Cache-Status = %q; want %q", cs, want)
				}
			})
		}
	}
	if got := h.up.hits.Load(); got != int64(len(tests)) {
		t.Errorf("upstream requests = %d; want %d (one per encoding)", got, len(tests))
	}
}

// TestCompressionRevalidation: revalidating a compressed variant sends
// the upstream's own validator, so a 304 still works; the variant keeps
// its own ETag afterwards.
func TestCompressionRevalidation(t *testing.T) {
	text := strings.Repeat("revalidate me. ", 100)
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"t1"`)
		if r.Header.Get("If-None-Match") == `"t1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, text)
	}})
	ae := []string{"Accept-Encoding", "gzip"}
	runSteps(t, h, []step{
		{hdr: ae, hits: 1, cs: []string{"stored"}, want: []string{"Content-Encoding", "gzip", "Etag", `"t1-gzip"`}},
		{advance: 20 * time.Second, hdr: ae, hits: 2, cs: []string{"fwd=stale", "fwd-status=304"}, want: []string{"Content-Encoding", "gzip", "Etag", `"t1-gzip"`}, upHdr: []string{"If-None-Match", `"t1"`}},
		{hdr: ae, hits: 2, cs: []string{"hit"}, want: []string{"Content-Encoding", "gzip", "Etag", `"t1-gzip"`}},
		{hdr: append(ae, "If-None-Match", `"t1-gzip"`), status: 304, hits: 2, cs: []string{"hit"}},
	})
}

// TestNotCompressed: streamed and already-compressed media types are
// never compressed.
func TestNotCompressed(t *testing.T) {
	tests := []struct {
		name, contentType string
	}{
		{"text/event-stream", "text/event-stream"},
		{"image/png", "image/png"},
		{"application/octet-stream", "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Content-Type", tt.contentType)
				w.Header().Set("Cache-Control", "max-age=60")
				w.Write(bytes.Repeat([]byte("a"), 4096))
			}})
			r := h.get("/m", "Accept-Encoding", "gzip, zstd")
			if ce := r.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding = %q; want none", ce)
			}
			if len(r.body) != 4096 {
				t.Errorf("body = %d bytes; want 4096", len(r.body))
			}
		})
	}
}

// TestCacheStatusOnEveryResponse: every response the proxy sends carries a
// Cache-Status member (RFC 9211), its own errors included.
func TestCacheStatusOnEveryResponse(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/cached":
			w.Header().Set("Cache-Control", "max-age=60")
		case "/error":
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "x")
	}, config: func(c *config.Config) {
		c.Routes[0].Match.PathPrefix = "/"
		c.Routes[0].Match.Host = "127.0.0.1"
	}})
	tests := []struct {
		name   string
		method string
		path   string
		hdr    []string
		status int
		cs     string
	}{
		{"miss, stored", http.MethodGet, "/cached", nil, 200, "zerohop; fwd=uri-miss; fwd-status=200; stored"},
		{"hit", http.MethodGet, "/cached", nil, 200, "zerohop; hit; ttl=60"},
		{"HEAD hit", http.MethodHead, "/cached", nil, 200, "zerohop; hit"},
		{"POST: fwd=method", http.MethodPost, "/other", nil, 200, "zerohop; fwd=method; fwd-status=200"},
		{"upstream error", http.MethodGet, "/error", nil, 500, "zerohop; fwd=uri-miss; fwd-status=500"},
		{"only-if-cached miss", http.MethodGet, "/none", []string{"Cache-Control", "only-if-cached"}, 504, "zerohop; fwd=uri-miss"},
		{"no route (404)", http.MethodGet, "/x", []string{"Host", "unrouted.example"}, 404, "zerohop; fwd="},
		{"unkeyed override: bypass", http.MethodGet, "/cached", []string{"X-Original-URL", "/admin"}, 200, "zerohop; fwd=bypass; fwd-status=200; detail=unkeyed-override"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, hdr(tt.hdr...), nil)
			if r.StatusCode != tt.status {
				t.Errorf("status = %d; want %d", r.StatusCode, tt.status)
			}
			if cs := r.cacheStatus(); !strings.HasPrefix(cs, tt.cs) {
				t.Errorf("Cache-Status = %q; want prefix %q", cs, tt.cs)
			}
		})
	}
}

// TestSoftPurge: a soft purge (shm MarkStale, PurgeTag soft) makes an
// entry stale without removing it, so that stale-while-revalidate can
// still answer while one refresh runs; without a window it is
// revalidated like any stale entry.
func TestSoftPurge(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		steps        []step
	}{
		{
			name:         "RFC 5861 §3 within stale-while-revalidate: served stale, refreshed in the background",
			cacheControl: "max-age=600, stale-while-revalidate=60",
			// The background refresh may already have reached the upstream.
			steps: []step{{hits: -1, cs: []string{"hit", "detail=stale-while-revalidate"}, body: "v1"}},
		},
		{
			name:         "§4.2.4 without a window: revalidated before use",
			cacheControl: "max-age=600",
			steps:        []step{{hits: 2, cs: []string{"fwd=stale", "fwd-status=304"}, body: "v1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: validated(`"e1"`, "Cache-Control", tt.cacheControl)(nil)})
			runSteps(t, h, []step{{hits: 1, cs: []string{"stored"}}, {advance: 5 * time.Second, hits: 1, cs: []string{"hit"}}})
			if !h.w.MarkStale(h.key("/r")) {
				t.Fatal("MarkStale found no entry")
			}
			runSteps(t, h, tt.steps)
			// Either way, the entry ends up fresh again.
			if !eventually(func() bool { return h.up.hits.Load() == 2 }) {
				t.Fatalf("upstream requests = %d; want 2", h.up.hits.Load())
			}
			if !eventually(func() bool {
				return strings.Contains(h.get("/r").cacheStatus(), "hit; ttl=600")
			}) {
				t.Error("the entry was not refreshed after the soft purge")
			}
		})
	}
}

// TestStaleWhileRevalidateIgnoresClientConditionals: the background
// refresh is the cache's own request; the conditional fields of the
// client that triggered it must not turn it into a 304 the cache cannot
// use (the stored response has no validator).
func TestStaleWhileRevalidateIgnoresClientConditionals(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		if n > 1 {
			w.Header().Set("Etag", `"later"`)
			if r.Header.Get("If-None-Match") == `"later"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		fmt.Fprintf(w, "v%d", n)
	}})
	runSteps(t, h, []step{
		{hits: 1, cs: []string{"stored"}},
		{advance: 20 * time.Second, hdr: []string{"If-None-Match", `"later"`}, hits: -1, cs: []string{"detail=stale-while-revalidate"}, body: "v1"},
	})
	refreshed := eventually(func() bool {
		e, _, ok := h.w.GetStale(nil, h.key("/r"))
		return ok && e.StoredMs == h.clock.Now().UnixMilli()
	})
	if got := h.up.hits.Load(); !refreshed || got != 2 {
		t.Fatalf("after one background request (upstream requests %d): refreshed %v; want the entry refreshed", got, refreshed)
	}
	runSteps(t, h, []step{{hits: 2, cs: []string{"hit; ttl=10"}, body: "v2"}})
}
