package zerohop_test

import (
	"bytes"
	"github.com/zerohop/zerohop/shm"
	"io"
	"net/http"
	"testing"
)

// BenchmarkClientGet is the zero-allocation lookup an app makes with its
// own buffer (the writer is in this process; shm's benchmarks measure the
// cross-process case).
func BenchmarkClientGet(b *testing.B) {
	f := setup(b)
	f.put(b, "/bench", nil)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := f.c.Get(buf, "GET", "http", "api.example", "/bench", nil); !ok {
			b.Fatalf("miss at %d: %+v %+v", i, f.c.Stats(), f.c.Reader().WriterStats())
		}
	}
}

// BenchmarkTransportHit is a whole http.Client round trip answered from
// shared memory, response headers and body included.
func BenchmarkTransportHit(b *testing.B) {
	f := setup(b)
	f.put(b, "/bench", func(it *shm.Item) { it.Body = bytes.Repeat([]byte("x"), 1024) })
	req, _ := http.NewRequest("GET", "http://api.example/bench", nil)
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := f.c.Transport().RoundTrip(req)
		if err != nil || resp.Header.Get("Cache-Status") == "" {
			b.Fatal("miss", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkClientGet1KiB is the app-hit-lookup scenario of the bench suite
// in one process: a 1 KiB body stored with the headers the sidecar keeps
// (about 1.3 KB of entry), looked up through Client.Get.
func BenchmarkClientGet1KiB(b *testing.B) {
	f := setup(b)
	f.put(b, "/cache/item", func(it *shm.Item) {
		it.Body = bytes.Repeat([]byte("x"), 1024)
		it.Header = http.Header{
			"Cache-Control":  {"public, max-age=3600"},
			"Content-Length": {"1024"},
			"Content-Type":   {"application/octet-stream"},
			"Date":           {"Sun, 22 Nov 2026 10:00:00 GMT"},
			"Etag":           {`"e1"`},
			"Last-Modified":  {"Sun, 22 Nov 2026 10:00:00 GMT"},
		}
	})
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := f.c.Get(buf, "GET", "http", "api.example", "/cache/item", nil); !ok {
			b.Fatalf("miss at %d: %+v", i, f.c.Stats())
		}
	}
}
