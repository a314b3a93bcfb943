package proxy

import (
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
)

var (
	benchReqID = []byte("6f1c0e9a3b2d4c5e00000000000004d2")
	benchTP    = []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
)

// hitEntry is what the fast path's fresh hit hands to record.
func hitEntry() accessEntry {
	var ph timeline.Phases
	ph.Mark(timeline.Filters, 200, 900)
	ph.Mark(timeline.Cache, 900, 2500)
	return accessEntry{
		listener: "ingress", method: "GET", host: "app.local", target: "/catalog/items?page=2",
		status: 200, route: "catalog", cacheLabel: "hit", bytes: 1024, d: 4 * time.Microsecond,
		start: time.Now(), phases: ph, reqIDb: benchReqID, tpb: benchTP,
	}
}

// BenchmarkRecordTimeline is the cost of recording one request's
// timeline: the ring's share of Proxy.record (tracing off).
func BenchmarkRecordTimeline(b *testing.B) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	a := hitEntry()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.recordTimeline(&a)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.recordTimeline(&a)
			}
		})
	})
}

// TestRecordTimelineAllocs holds recording (tracing off) and the whole
// of record without an access log to no allocation: the fast path's hit
// must stay allocation-free.
func TestRecordTimelineAllocs(t *testing.T) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := hitEntry()
	p.record(&a) // the metrics' label sets, made once
	// The entry is made in the loop, as the fast path makes it on its
	// stack: record must not make it escape.
	if n := testing.AllocsPerRun(200, func() { a := hitEntry(); p.record(&a) }); n != 0 {
		t.Errorf("record allocates %v times per request; want 0", n)
	}
	got := p.Requests(RequestFilter{Route: "catalog"})
	if len(got) == 0 {
		t.Fatal("nothing recorded")
	}
	r := got[0]
	if r.Target != a.target || r.RequestID != string(a.reqIDb) || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || r.Cache != "hit" {
		t.Errorf("recorded %+v", r)
	}
	if len(r.Phases) != 2 || r.Phases[0].Name != "filters" || r.Phases[1].Name != "cache" {
		t.Errorf("phases %+v", r.Phases)
	}
}
