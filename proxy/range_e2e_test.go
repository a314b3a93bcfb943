package proxy_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// rangeBody is the representation the range origin serves.
const rangeBody = "0123456789abcdefghij"

// rangeOrigin is an origin that serves rangeBody with http.ServeContent,
// so it answers Range (206), If-None-Match (304) and If-Range the way a
// real file server does; it adds ETag "r1", a Last-Modified an hour before
// the clock's start, and the fields kv.
func rangeOrigin(kv ...string) func(*clock) handlerFunc {
	return func(c *clock) handlerFunc {
		lm := c.Now().Add(-time.Hour)
		return func(w http.ResponseWriter, r *http.Request, n int64) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Set(kv[i], kv[i+1])
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Etag", `"r1"`)
			w.Header().Set("X-Version", strconv.FormatInt(n, 10))
			http.ServeContent(w, r, "", lm, strings.NewReader(rangeBody))
		}
	}
}

// TestRangeFromCache: Range requests answered from a stored complete 200
// (RFC 9110 §14, RFC 9111 §3.3/§4): the miss fetches the whole
// representation without Range, stores it and answers the range; hits
// answer single ranges, suffix and open-ended ranges, 416, If-Range, and
// ignore what must be ignored.
func TestRangeFromCache(t *testing.T) {
	clk := newClock()
	lm := clk.Ago(time.Hour)
	h := newHarness(t, harnessOptions{clock: clk, handler: rangeOrigin("Cache-Control", "max-age=60")(clk)})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=2-5"}, status: 206, hits: 1, body: "2345",
			cs:    []string{"fwd=uri-miss", "fwd-status=200", "stored"},
			want:  []string{"Content-Range", "bytes 2-5/20", "Content-Length", "4", "Accept-Ranges", "bytes"},
			upHdr: []string{"Range", absent, "If-Range", absent}},
		{hits: 1, cs: []string{"zerohop; hit; ttl=60"}, body: rangeBody,
			want: []string{"Content-Range", absent, "Content-Length", "20"}},
		{hdr: []string{"Range", "bytes=-3"}, status: 206, hits: 1, cs: []string{"zerohop; hit"}, body: "hij",
			want: []string{"Content-Range", "bytes 17-19/20", "Content-Length", "3", "Etag", `"r1"`, "Accept-Ranges", "bytes"}},
		{hdr: []string{"Range", "bytes=15-"}, status: 206, hits: 1, body: "fghij", want: []string{"Content-Range", "bytes 15-19/20"}},
		{hdr: []string{"Range", "bytes=10-1000"}, status: 206, hits: 1, body: "abcdefghij", want: []string{"Content-Range", "bytes 10-19/20"}},
		{hdr: []string{"Range", "bytes=-100"}, status: 206, hits: 1, body: rangeBody, want: []string{"Content-Range", "bytes 0-19/20"}},
		// §15.5.17: nothing satisfiable.
		{hdr: []string{"Range", "bytes=20-"}, status: 416, hits: 1, cs: []string{"zerohop; hit"}, noBody: true,
			want: []string{"Content-Range", "bytes */20", "Content-Length", "0", "Content-Type", absent}},
		{hdr: []string{"Range", "bytes=-0"}, status: 416, hits: 1, noBody: true, want: []string{"Content-Range", "bytes */20"}},
		// §14.2: unknown units and invalid specifiers are ignored.
		{hdr: []string{"Range", "items=0-1"}, hits: 1, body: rangeBody, want: []string{"Content-Range", absent}},
		{hdr: []string{"Range", "bytes=5-2"}, hits: 1, body: rangeBody},
		// §13.1.5 If-Range.
		{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r1"`}, status: 206, hits: 1, body: "01"},
		{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r0"`}, hits: 1, body: rangeBody, want: []string{"Content-Range", absent}},
		{hdr: []string{"Range", "bytes=0-1", "If-Range", `W/"r1"`}, hits: 1, body: rangeBody},
		{hdr: []string{"Range", "bytes=0-1", "If-Range", lm}, status: 206, hits: 1, body: "01"},
		{hdr: []string{"Range", "bytes=0-1", "If-Range", clk.Ago(2 * time.Hour)}, hits: 1, body: rangeBody},
		// §14.2: only GET.
		{method: http.MethodHead, hdr: []string{"Range", "bytes=0-1"}, hits: 1, cs: []string{"hit"}, noBody: true,
			want: []string{"Content-Length", "20", "Accept-Ranges", "bytes", "Content-Range", absent}},
		// §13.2.2: If-None-Match is evaluated before Range.
		{hdr: []string{"Range", "bytes=0-1", "If-None-Match", `"r1"`}, status: 304, hits: 1, noBody: true, want: []string{"Content-Range", absent}},
		// Stale: revalidated without the Range; the 304 freshens the
		// stored response and the range is cut from it.
		{advance: 61 * time.Second, hdr: []string{"Range", "bytes=0-3"}, status: 206, hits: 2, body: "0123",
			cs:    []string{"fwd=stale", "fwd-status=304", "stored"},
			want:  []string{"Content-Range", "bytes 0-3/20", "Accept-Ranges", "bytes"},
			upHdr: []string{"Range", absent, "If-None-Match", `"r1"`}},
		{hdr: []string{"Range", "bytes=4-5"}, status: 206, hits: 2, cs: []string{"hit; ttl=60"}, body: "45"},
	})
}

// TestRangeMissIfRange: on a miss the app's If-Range is evaluated against
// the fetched representation, not forwarded.
func TestRangeMissIfRange(t *testing.T) {
	clk := newClock()
	h := newHarness(t, harnessOptions{clock: clk, handler: rangeOrigin("Cache-Control", "max-age=60")(clk)})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=0-1", "If-Range", `"old"`}, hits: 1, body: rangeBody, cs: []string{"stored"},
			want: []string{"Content-Range", absent}, upHdr: []string{"Range", absent, "If-Range", absent}},
		{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r1"`}, status: 206, hits: 1, cs: []string{"hit"}, body: "01"},
	})
}

// TestRangeMultipart: several ranges of a stored response are answered
// with multipart/byteranges (RFC 9110 §14.6), parts in request order;
// abusive sets get the whole 200.
func TestRangeMultipart(t *testing.T) {
	clk := newClock()
	h := newHarness(t, harnessOptions{clock: clk, handler: rangeOrigin("Cache-Control", "max-age=60")(clk)})
	check := func(r *result, want ...string) {
		t.Helper()
		if r.StatusCode != 206 {
			t.Fatalf("status = %d; want 206 (%q)", r.StatusCode, r.cacheStatus())
		}
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type = %q; want multipart/byteranges", r.Header.Get("Content-Type"))
		}
		if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
			t.Errorf("Content-Length = %q; body is %d bytes", cl, len(r.body))
		}
		if r.Header.Get("Content-Range") != "" {
			t.Errorf("Content-Range %q on a multipart answer", r.Header.Get("Content-Range"))
		}
		mr := multipart.NewReader(strings.NewReader(r.body), params["boundary"])
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if i != len(want)/2 {
					t.Errorf("%d parts; want %d", i, len(want)/2)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if i >= len(want)/2 {
				t.Fatalf("extra part %q", b)
			}
			if cr := p.Header.Get("Content-Range"); cr != want[2*i] || string(b) != want[2*i+1] {
				t.Errorf("part %d = %q %q; want %q %q", i, cr, b, want[2*i], want[2*i+1])
			}
			if ct := p.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("part %d Content-Type = %q", i, ct)
			}
		}
	}
	// The miss stores the whole body, then answers from it.
	r := h.get("/m", "Range", "bytes=10-12,0-1")
	check(r, "bytes 10-12/20", "abc", "bytes 0-1/20", "01")
	if !strings.Contains(r.cacheStatus(), "stored") {
		t.Errorf("Cache-Status = %q; want stored", r.cacheStatus())
	}
	r = h.get("/m", "Range", "bytes=0-0, 5-6, -2")
	check(r, "bytes 0-0/20", "0", "bytes 5-6/20", "56", "bytes 18-19/20", "ij")
	if !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("Cache-Status = %q; want hit", r.cacheStatus())
	}
	// Unsatisfiable members are dropped; one left is a single part.
	r = h.get("/m", "Range", "bytes=0-1,50-60")
	if r.StatusCode != 206 || r.body != "01" || r.Header.Get("Content-Range") != "bytes 0-1/20" {
		t.Errorf("one satisfiable range = %d %q %q", r.StatusCode, r.Header.Get("Content-Range"), r.body)
	}
	// Overlapping ranges adding up to more than the representation.
	r = h.get("/m", "Range", "bytes=0-19,0-19")
	if r.StatusCode != 200 || r.body != rangeBody {
		t.Errorf("overlapping ranges = %d %q; want the whole 200", r.StatusCode, r.body)
	}
	if h.up.hits.Load() != 1 {
		t.Errorf("upstream requests = %d; want 1", h.up.hits.Load())
	}
}

// TestRangeNotStored: when the whole response cannot be stored (no-store),
// a single range is still cut from the stream, and nothing is stored.
func TestRangeNotStored(t *testing.T) {
	clk := newClock()
	h := newHarness(t, harnessOptions{clock: clk, handler: rangeOrigin("Cache-Control", "no-store")(clk)})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=2-5"}, status: 206, hits: 1, body: "2345", notCS: []string{"stored"}, cs: []string{"fwd=uri-miss", "fwd-status=200"},
			want: []string{"Content-Range", "bytes 2-5/20", "Content-Length", "4", "Accept-Ranges", "bytes"}, upHdr: []string{"Range", absent}},
		{hdr: []string{"Range", "bytes=18-"}, status: 206, hits: 2, body: "ij"},
		{hdr: []string{"Range", "bytes=30-"}, status: 416, hits: 3, noBody: true, want: []string{"Content-Range", "bytes */20"}},
		// Several ranges are not cut from a stream: the whole 200.
		{hdr: []string{"Range", "bytes=0-1,4-5"}, hits: 4, body: rangeBody},
		{hits: 5, body: rangeBody},
	})
}

// TestRangeBeyondMaxObject: a range starting past cache.max_object_size
// goes upstream as sent (the representation is too large to store), and
// the 206 that comes back is passed through and never stored; a range
// within the limit is fetched whole and cut, the too-large body not
// stored.
func TestRangeBeyondMaxObject(t *testing.T) {
	clk := newClock()
	h := newHarness(t, harnessOptions{clock: clk, handler: rangeOrigin("Cache-Control", "max-age=60")(clk),
		config: func(c *config.Config) { c.Cache.MaxObjectSize = 10 }})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=15-"}, status: 206, hits: 1, body: "fghij", cs: []string{"fwd-status=206"}, notCS: []string{"stored"},
			want: []string{"Content-Range", "bytes 15-19/20"}, upHdr: []string{"Range", "bytes=15-"}},
		{hdr: []string{"Range", "bytes=15-"}, status: 206, hits: 2, body: "fghij", notCS: []string{"hit"}},
		{hdr: []string{"Range", "bytes=0-3"}, status: 206, hits: 3, body: "0123", cs: []string{"fwd-status=200", "too-large"}, notCS: []string{"stored"},
			want: []string{"Content-Range", "bytes 0-3/20"}, upHdr: []string{"Range", absent}},
		{hits: 4, body: rangeBody, notCS: []string{"hit", "stored"}},
	})
}

// TestUpstreamPartialNeverStored: a 206 from the upstream, even one with
// explicit freshness and even to a request without Range, is never stored
// as if it were the complete response (RFC 9111 §3.3).
func TestUpstreamPartialNeverStored(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Range", "bytes 0-4/20")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "01234")
	}})
	runSteps(t, h, []step{
		{status: 206, hits: 1, body: "01234", cs: []string{"fwd-status=206", "detail=partial"}, notCS: []string{"stored"}},
		{status: 206, hits: 2, body: "01234", notCS: []string{"hit", "stored"}},
		{hdr: []string{"Range", "bytes=0-1"}, status: 206, hits: 3, body: "01234", notCS: []string{"hit", "stored"}},
	})
}

// TestRangeAcceptRangesNone: an origin's Accept-Ranges: none is respected;
// the whole 200 is sent, from the cache too.
func TestRangeAcceptRangesNone(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Accept-Ranges", "none")
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, rangeBody)
	}})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=0-1"}, hits: 1, body: rangeBody, cs: []string{"stored"}, want: []string{"Accept-Ranges", "none"}},
		{hdr: []string{"Range", "bytes=0-1"}, hits: 1, body: rangeBody, cs: []string{"hit"}, want: []string{"Accept-Ranges", "none", "Content-Range", absent}},
	})
}

// TestRangeOtherStatus: Range applies to a 200 only; a stored 404 is sent
// as it is.
func TestRangeOtherStatus(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "not here")
	}})
	runSteps(t, h, []step{
		{hdr: []string{"Range", "bytes=0-1"}, status: 404, hits: 1, body: "not here", cs: []string{"stored"}, want: []string{"Content-Range", absent, "Accept-Ranges", absent}},
		{hdr: []string{"Range", "bytes=0-1"}, status: 404, hits: 1, body: "not here", cs: []string{"hit"}, want: []string{"Content-Range", absent, "Accept-Ranges", absent}},
	})
}

// TestRangeCompressed: ranges of a representation the proxy compressed
// are ranges of its encoded bytes (the selected representation, RFC 9110
// §14.1.1), with the encoded variant's own ETag for If-Range; several
// ranges of it get the whole 200.
func TestRangeCompressed(t *testing.T) {
	// Text that does not compress to almost nothing.
	var tb strings.Builder
	for i := range 300 {
		fmt.Fprintf(&tb, "%d:%x ", i, uint32(i)*2654435761)
	}
	text := "zerohop " + tb.String()
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"t1"`)
		io.WriteString(w, text)
	}})
	gz := hdr("Accept-Encoding", "gzip")
	part := h.do("GET", "/c", hdr("Accept-Encoding", "gzip", "Range", "bytes=0-99"), nil)
	if part.StatusCode != 206 || part.Header.Get("Content-Encoding") != "gzip" || len(part.body) != 100 {
		t.Fatalf("miss: %d %q %d bytes (%q)", part.StatusCode, part.Header.Get("Content-Encoding"), len(part.body), part.cacheStatus())
	}
	whole := h.do("GET", "/c", gz, nil)
	if whole.StatusCode != 200 || !strings.Contains(whole.cacheStatus(), "hit") {
		t.Fatalf("whole: %d %q", whole.StatusCode, whole.cacheStatus())
	}
	if want := "bytes 0-99/" + strconv.Itoa(len(whole.body)); part.Header.Get("Content-Range") != want {
		t.Errorf("Content-Range = %q; want %q", part.Header.Get("Content-Range"), want)
	}
	if part.body != whole.body[:100] {
		t.Error("the range is not the start of the encoded body")
	}
	zr, err := gzip.NewReader(strings.NewReader(whole.body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != text {
		t.Error("stored encoded body does not decode to the text")
	}
	etag := whole.Header.Get("Etag")
	tail := h.do("GET", "/c", hdr("Accept-Encoding", "gzip", "Range", "bytes=100-", "If-Range", etag), nil)
	if tail.StatusCode != 206 || part.body+tail.body != whole.body {
		t.Errorf("tail with If-Range %s: %d, %d bytes", etag, tail.StatusCode, len(tail.body))
	}
	multi := h.do("GET", "/c", hdr("Accept-Encoding", "gzip", "Range", "bytes=0-1,10-11"), nil)
	if multi.StatusCode != 200 || multi.body != whole.body {
		t.Errorf("several ranges of an encoded body: %d; want the whole 200", multi.StatusCode)
	}
	plain := h.do("GET", "/c", hdr("Range", "bytes=0-6"), nil)
	if plain.StatusCode != 206 || plain.body != "zerohop" || plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("identity variant: %d %q %q", plain.StatusCode, plain.Header.Get("Content-Encoding"), plain.body)
	}
	if got := h.up.hits.Load(); got != 2 {
		t.Errorf("upstream requests = %d; want 2 (one per coding)", got)
	}
}

// TestRangeCoalesced: concurrent Range misses for one URL collapse into
// one full fetch; every client gets its own range.
func TestRangeCoalesced(t *testing.T) {
	const clients = 8
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, rangeBody)
	}})
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for i := range clients {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", h.url("/slow"), nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", i, i+1))
			resp, err := h.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 206 || string(b) != rangeBody[i:i+2] {
				errs <- fmt.Sprintf("client %d: %d %q", i, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := h.up.hits.Load(); got != 1 {
		t.Errorf("upstream requests = %d; want 1", got)
	}
}

// TestRangeStaleIfError: a stale response served because the upstream
// failed answers the range too.
func TestRangeStaleIfError(t *testing.T) {
	h := newHarness(t, harnessOptions{handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if n > 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, rangeBody)
	}})
	runSteps(t, h, []step{
		{hits: 1, body: rangeBody},
		{advance: 20 * time.Second, hdr: []string{"Range", "bytes=1-2"}, status: 206, hits: 2, body: "12",
			cs: []string{"fwd=stale", "fwd-status=503", "stale-if-error"}, want: []string{"Content-Range", "bytes 1-2/20"}},
	})
}
