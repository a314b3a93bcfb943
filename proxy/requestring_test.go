package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

func TestRequestRing(t *testing.T) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range RecentRequests + 100 {
		a := accessEntry{reqID: fmt.Sprint(i), listener: "l", method: "GET", host: "h", target: "/t",
			status: 200, route: "r", cacheLabel: "hit", d: time.Millisecond}
		switch {
		case i%10 == 0:
			a.status, a.cacheLabel, a.route, a.d = 502, "uri-miss", "api", 150*time.Millisecond
		case i == RecentRequests+99:
			a.target = strings.Repeat("x", 500) // truncated, not refused
		}
		p.recordTimeline(&a)
	}
	all := p.Requests(RequestFilter{})
	if len(all) != RecentRequests || all[0].RequestID != fmt.Sprint(RecentRequests+99) || len(all[0].Target) != 128 {
		t.Fatalf("recent: %d kept, newest %+v", len(all), all[0])
	}
	slowKept, slowAll := 0, 0 // slow requests among the kept, and among all
	for i := range RecentRequests + 100 {
		if i%10 == 0 {
			slowAll++
			if i >= 100 {
				slowKept++
			}
		}
	}
	for _, tt := range []struct {
		name string
		f    RequestFilter
		want int
	}{
		{"route", RequestFilter{Route: "api"}, slowKept},
		{"5xx", RequestFilter{StatusClass: 5}, slowKept},
		{"status", RequestFilter{Status: 200}, RecentRequests - slowKept},
		{"cache", RequestFilter{Cache: "hit"}, RecentRequests - slowKept},
		{"min duration", RequestFilter{MinDuration: 100 * time.Millisecond}, slowKept},
		{"slow ring", RequestFilter{Slow: true}, min(SlowRequests, slowAll)},
		{"limit", RequestFilter{Limit: 5}, 5},
	} {
		if got := p.Requests(tt.f); len(got) != tt.want {
			t.Errorf("%s: %d records; want %d", tt.name, len(got), tt.want)
		}
	}
	if got := p.Requests(RequestFilter{Slow: true})[0]; got.Status != 502 || got.DurationMs != 150 {
		t.Errorf("slow record %+v", got)
	}
	var none *Proxy = &Proxy{}
	if none.Requests(RequestFilter{}) != nil {
		t.Error("a proxy without rings returned records")
	}
}

// TestRequestRingAllocs: recording a request allocates nothing.
func TestRequestRingAllocs(t *testing.T) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := accessEntry{reqID: "0123456789abcdef", listener: "l", method: "GET", host: "api.example", target: "/items/42",
		status: 200, route: "items", cacheLabel: "hit", d: 200 * time.Millisecond}
	if n := testing.AllocsPerRun(1000, func() { p.recordTimeline(&a) }); n != 0 {
		t.Fatalf("add allocates %v times per request", n)
	}
}
