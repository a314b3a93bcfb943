package timeline

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func entry(i int, route, cache string, status int, d time.Duration) *Entry {
	e := &Entry{Start: int64(i), Duration: d, Status: int32(status)}
	e.SetStrings("GET", cache, "l", route, "", "h", "/"+strconv.Itoa(i))
	e.SetRequestID("id-"+strconv.Itoa(i), nil)
	return e
}

// TestRingBounded: the ring keeps the newest entries up to its size,
// concurrent writers included, and returns them newest first.
func TestRingBounded(t *testing.T) {
	r := NewRing(64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				r.Add(entry(g*1000+i, "r", "hit", 200, 0))
			}
		}()
	}
	wg.Wait()
	all := r.Select(Query{})
	if len(all) != r.Cap() || r.Cap() != 64 {
		t.Fatalf("%d entries, cap %d; want 64", len(all), r.Cap())
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].seq <= all[i].seq {
			t.Fatalf("not newest first at %d", i)
		}
	}
	r.Add(entry(99999, "r", "hit", 200, 0))
	if got := r.Select(Query{Limit: 1}); len(got) != 1 || got[0].Record().RequestID != "id-99999" {
		t.Errorf("newest: %+v", got)
	}
}

func TestQuery(t *testing.T) {
	r := NewRing(16)
	r.Add(entry(1, "a", "hit", 200, time.Millisecond))
	r.Add(entry(2, "a", "miss", 503, 2*time.Second))
	r.Add(entry(3, "b", "uri-miss", 404, 300*time.Millisecond))
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{Query{}, "3 2 1"},
		{Query{Route: "a"}, "2 1"},
		{Query{Status: 5}, "2"},
		{Query{Status: 404}, "3"},
		{Query{Status: 4, Route: "a"}, ""},
		{Query{Cache: "hit"}, "1"},
		{Query{MinDuration: 300 * time.Millisecond}, "3 2"},
		{Query{Limit: 2}, "3 2"},
	} {
		var got []string
		for _, e := range r.Select(tt.q) {
			got = append(got, strconv.FormatInt(e.Start, 10))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%+v: %v, want %s", tt.q, got, tt.want)
		}
	}
}

// TestEntryStrings: long strings are cut to their field, a traceparent
// gives its trace id, and phases show in order with their offsets.
func TestEntryStrings(t *testing.T) {
	var e Entry
	long := strings.Repeat("x", 300)
	e.SetStrings(long, long, long, long, long, long, long)
	e.SetTraceID("", []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	e.Phases.Mark(Cache, time.Millisecond, 3*time.Millisecond)
	e.Phases.Mark(Coalesce, 3*time.Millisecond, 3*time.Millisecond)
	r := e.Record()
	if len(r.Target) != 128 || len(r.Method) != 8 || len(r.Route) != 48 || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("%+v", r)
	}
	if len(r.Phases) != 2 || r.Phases[0] != (PhaseRecord{"cache", 1, 2}) || r.Phases[1].Name != "coalesce" {
		t.Errorf("phases %+v", r.Phases)
	}
	var bad Entry
	bad.SetTraceID("garbage", nil)
	if bad.Record().TraceID != "" {
		t.Error("a malformed traceparent gave a trace id")
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]int{"503": 503, "5xx": 5, "2XX": 2, "200": 200} {
		if got, ok := ParseStatus(in); !ok || got != want {
			t.Errorf("%q: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "6xx", "99", "1000", "abc", "-1", "50"} {
		if _, ok := ParseStatus(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}
