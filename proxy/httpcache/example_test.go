package httpcache_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
)

// A proxy stores a response, then answers later requests for it.
func Example() {
	sent := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	received := sent.Add(time.Second)

	req, _ := http.NewRequest(http.MethodGet, "https://api.example/items", nil)
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{
		"Cache-Control": {"public, max-age=60, stale-while-revalidate=30"},
		"Date":          {sent.Format(http.TimeFormat)},
		"Etag":          {`"v1"`},
	}}

	if ok, reason := httpcache.Storable(req, resp, httpcache.StoreOptions{}); !ok {
		fmt.Println("not stored:", reason)
		return
	}
	entry := httpcache.NewEntry(resp.StatusCode, resp.Header, sent, received, httpcache.FreshnessOptions{})

	for _, after := range []time.Duration{10 * time.Second, 75 * time.Second, 2 * time.Minute} {
		now := received.Add(after)
		cc := httpcache.ParseRequestCacheControl(http.Header{})
		action := httpcache.Decide(cc, &entry, now)
		status := httpcache.CacheStatus{TTL: entry.TTL(now), HasTTL: true}
		if action == httpcache.ServeFresh || action == httpcache.ServeStaleRevalidate {
			status.Hit = true
		} else {
			status.Fwd = httpcache.FwdStale
		}
		fmt.Printf("%-22s Age: %-3s Cache-Status: %s\n", action, httpcache.FormatAge(entry.Age(now)), status)
	}

	validation := http.Header{}
	httpcache.AddValidators(validation, resp.Header)
	fmt.Println("If-None-Match:", validation.Get("If-None-Match"))
	// Output:
	// serve-fresh            Age: 11  Cache-Status: zerohop; hit; ttl=49
	// serve-stale-revalidate Age: 76  Cache-Status: zerohop; hit; ttl=-16
	// revalidate             Age: 121 Cache-Status: zerohop; fwd=stale; ttl=-61
	// If-None-Match: "v1"
}
