package proxy_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// BenchmarkTracing is the per-request cost of span export (tracing.otlp,
// sampling ratio 1): a fresh hit (the fast path) and a miss (no-store, as
// BenchmarkMiss), with tracing off, on, and on with a ratio that samples
// nothing (what a sampled-out request costs). On, every request becomes a
// server span and one span per phase, handed to the SDK's batch processor
// and exported over OTLP/HTTP to a real receiver on loopback, which reads
// and drops the batches (its cost, per batch of up to 512 spans, is in
// the process's figures too). One client connection, one GET at a time.
func BenchmarkTracing(b *testing.B) {
	for _, kind := range []struct{ name, cc string }{{"hit", "max-age=31536000"}, {"miss", "no-store"}} {
		for _, mode := range []string{"off", "on", "sampled-out"} {
			on := mode != "off"
			b.Run(kind.name+"/"+mode, func(b *testing.B) {
				origin := newMissOrigin(b, kind.cc)
				var rcv *otlpSink
				if on {
					rcv = newOTLPSink(b)
				}
				h := newHarness(b, harnessOptions{origin: origin, accessLog: slog.NewJSONHandler(io.Discard, nil),
					config: func(c *config.Config) {
						if rcv != nil {
							c.Tracing.OTLP = &config.OTLP{Endpoint: rcv.url, Protocol: config.OTLPHTTP}
						}
						if mode == "sampled-out" { // on, but (almost) no request sampled
							ratio := 1e-12
							c.Tracing.SamplingRatio = &ratio
						}
					}})
				c := newMissClient(b, h.addr(), "GET /item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\n\r\n")
				c.run(b)
				b.StopTimer()
				h.close() // flushes the exporter
				if rcv != nil {
					if mode == "on" && b.N > 100 && rcv.batches.Load() == 0 {
						b.Fatalf("the receiver got no spans")
					}
					b.ReportMetric(float64(rcv.bytes.Load())/float64(b.N+1), "otlp-B/op")
				}
			})
		}
	}
}

// otlpSink is an OTLP/HTTP receiver that counts and drops what it gets.
type otlpSink struct {
	url            string
	batches, bytes atomic.Int64
}

func newOTLPSink(b *testing.B) *otlpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.bytes.Add(n)
		s.batches.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return s
}
