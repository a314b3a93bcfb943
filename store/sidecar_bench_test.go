package store

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// These benchmarks put the store behind a minimal sidecar-like HTTP
// handler on loopback, to compare what the proxy will see: a hit served
// from shared memory, a hit served from the second tier (promotion), and
// the miss path (upstream fetch and store) with and without persistence.

// serveEntry writes a cached entry as the proxy's serveEntry does.
func serveEntry(w http.ResponseWriter, e *shm.Entry) {
	h := w.Header()
	for it := shm.NewHeaderIter(e.Headers); it.Next(); {
		name := string(it.Name())
		h[name] = append(h[name], string(it.Value()))
	}
	h.Set("Age", "0")
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	w.Write(e.Body)
}

// keyOf maps a request path /N to genKey(N).
func keyOf(r *http.Request) (int, []byte) {
	id, _ := strconv.Atoi(r.URL.Path[1:])
	return id, genKey(id)
}

var bufPoolBench = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func hitHandler(tier *atomic.Pointer[Tier]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, key := keyOf(r)
		bp := bufPoolBench.Get().(*[]byte)
		defer bufPoolBench.Put(bp)
		e, out, ok := tier.Load().GetStale((*bp)[:0], key)
		*bp = out
		if !ok {
			http.Error(w, "miss", http.StatusBadGateway)
			return
		}
		serveEntry(w, &e)
	})
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkSidecarHit compares a request served from shared memory with
// one served from the second tier (each request a different key that only
// the store holds, promoted on the way). The target: second tier at most
// 2x the shared-memory hit.
func BenchmarkSidecarHit(b *testing.B) {
	s, keys := benchGetStore(b)
	for _, mode := range []string{"shm", "second-tier"} {
		b.Run(mode, func(b *testing.B) {
			var tier atomic.Pointer[Tier]
			fresh := func(fill bool) {
				w := openShm(b, b.TempDir(), nil)
				t := NewTier(w, s)
				if fill {
					now := time.Now().UnixMilli()
					for id := range keys {
						if err := w.Put(genItem(id, 1, now, 24*time.Hour, benchMinBody, benchMaxBody)); err != nil {
							b.Fatal(err)
						}
					}
				}
				if old := tier.Swap(t); old != nil {
					old.w.Close()
				}
			}
			fresh(mode == "shm")
			srv := httptest.NewServer(hitHandler(&tier))
			defer srv.Close()
			c := srv.Client()
			c.Transport.(*http.Transport).MaxIdleConnsPerHost = 4
			get(b, c, srv.URL+"/1") // connect
			p0 := s.Stats().Promoted
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := i % len(keys)
				if mode == "second-tier" && n == 0 && i > 0 {
					b.StopTimer()
					fresh(false)
					b.StartTimer()
				}
				get(b, c, srv.URL+"/"+strconv.Itoa(n))
			}
			b.StopTimer()
			if mode == "second-tier" && s.Stats().Promoted-p0 < uint64(b.N)-1 {
				b.Fatalf("promoted %d of %d", s.Stats().Promoted-p0, b.N)
			}
		})
	}
}

// BenchmarkMissPath measures the miss path's throughput (parallel
// clients): the sidecar misses, fetches from the upstream, stores the
// response and answers, with the store (write-behind persistence) and
// without (memory only). The target: persistence costs at most 5%.
func BenchmarkMissPath(b *testing.B) {
	body := genBody(1, 1, 2048, 2048)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(body)
	}))
	defer up.Close()
	for _, mode := range []string{"memory-only", "persistent"} {
		b.Run(mode, func(b *testing.B) {
			w := openShm(b, b.TempDir(), nil)
			var s *Store
			if mode == "persistent" {
				o := testOpts(b, nil)
				o.Queue = 1024 // the default
				o.CPUShare = 0 // the default governor
				if v, err := strconv.ParseFloat(os.Getenv("ZEROHOP_BENCH_CPUSHARE"), 64); err == nil {
					o.CPUShare = v
				}
				s = mustOpen(b, b.TempDir(), o)
			}
			tier := NewTier(w, s)
			uc := up.Client()
			uc.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			var seq atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				_, key := keyOf(r)
				bp := bufPoolBench.Get().(*[]byte)
				defer bufPoolBench.Put(bp)
				if e, out, ok := tier.GetStale((*bp)[:0], key); ok {
					*bp = out
					serveEntry(rw, &e)
					return
				}
				resp, err := uc.Get(up.URL + r.URL.Path)
				if err != nil {
					http.Error(rw, err.Error(), http.StatusBadGateway)
					return
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				now := time.Now().UnixMilli()
				h := resp.Header.Clone()
				h.Del("Date")
				tier.Put(&shm.Item{Key: key, Status: resp.StatusCode, Header: h, Body: data,
					StoredMs: now, ExpiresMs: now + 3600_000})
				for k, v := range h {
					rw.Header()[k] = v
				}
				rw.WriteHeader(resp.StatusCode)
				rw.Write(data)
			}))
			defer srv.Close()
			c := srv.Client()
			c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			base := seq.Add(1) << 40
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := base + n.Add(1)
					get(b, c, fmt.Sprint(srv.URL, "/", id))
				}
			})
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
			if s != nil {
				st := s.Stats()
				b.ReportMetric(float64(st.Dropped)/float64(b.N)*100, "%dropped")
				b.ReportMetric(float64(st.DroppedBusy)/float64(b.N)*100, "%shed")
			}
		})
	}
}
