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
