package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/config"
)

func isHit(r *result) bool { return strings.Contains(r.cacheStatus(), "hit") }

// TestRouteCacheKeyParts: a route's key drops a tracking parameter and
// sorts the query, and selects by a request header. Requests that differ
// only in the dropped parameter or the order share an entry; requests
// that differ in the selected header do not. The upstream still gets the
// query as sent. The app's Go client, which knows nothing of routes,
// finds the entry under a normal target with the right header, misses
// (never a wrong hit) with another header value, and misses a target it
// cannot normalise, which the sidecar then answers from the cache.
func TestRouteCacheKeyParts(t *testing.T) {
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{{Name: "main", Cluster: "main", Cache: &config.RouteCache{Enabled: true,
			Key: &config.CacheKey{Headers: []string{"X-Tenant"},
				Query: &config.QueryKey{Drop: []string{"utm_source"}, Sort: true}}}}}
	}
	up := func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "%s for %s #%d", r.URL.RawQuery, r.Header.Get("X-Tenant"), n)
	}
	both(t, up, cfg, func(t *testing.T, h *harness) {
		first := h.get("/k?b=2&a=1&utm_source=mail", "X-Tenant", "t1")
		if first.body != "b=2&a=1&utm_source=mail for t1 #1" || isHit(first) {
			t.Fatalf("first: %q %q; want a miss with the query sent as is", first.body, first.cacheStatus())
		}
		for _, target := range []string{"/k?a=1&utm_source=ads&b=2", "/k?a=1&b=2", "/k?b=2&a=1"} {
			if r := h.get(target, "X-Tenant", "t1"); !isHit(r) || r.body != first.body {
				t.Errorf("%s t1: %q %q, want a hit of the first", target, r.body, r.cacheStatus())
			}
		}
		if r := h.get("/k?a=1&b=2", "X-Tenant", "t2"); isHit(r) || !strings.HasSuffix(r.body, "for t2 #2") {
			t.Errorf("t2: %q %q, want its own miss", r.body, r.cacheStatus())
		}
		if r := h.get("/k?a=1&b=3", "X-Tenant", "t1"); isHit(r) {
			t.Errorf("b=3: a hit %q; a kept parameter differs", r.body)
		}

		c, err := zerohop.Open(h.dir, &zerohop.Options{Sidecar: h.addr()})
		if err != nil {
			t.Skipf("no mapping for the client: %v", err)
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for _, tt := range []struct {
			target, tenant string
			hit            bool
		}{
			{"/k?a=1&b=2", "t1", true},
			{"/k?a=1&b=2", "t2", true},
			{"/k?a=1&b=2", "t3", false}, // never stored: a miss, not t1's entry
			{"/k?a=1&b=2", "", false},
			{"/k?b=2&a=1", "t1", false}, // not normal: the client cannot tell, and misses
			{"/k?a=1&b=2&utm_source=x", "t1", false},
		} {
			hd := http.Header{}
			if tt.tenant != "" {
				hd.Set("X-Tenant", tt.tenant)
			}
			e, _, ok := c.Get(buf, "GET", "http", h.addr(), tt.target, hd)
			if ok != tt.hit {
				t.Errorf("client %s %q: hit %v, want %v", tt.target, tt.tenant, ok, tt.hit)
			}
			if ok && !strings.HasSuffix(string(e.Body), "for "+tt.tenant+" #"+map[string]string{"t1": "1", "t2": "2"}[tt.tenant]) {
				t.Errorf("client %s %q: wrong entry %q", tt.target, tt.tenant, e.Body)
			}
		}
		if n := h.up.hits.Load(); n != 3 {
			t.Errorf("upstream asked %d times, want 3", n)
		}
	})
}

// TestTargetedCacheControl: CDN-Cache-Control and Zerohop-Cache-Control
// (RFC 9213) decide storing and freshness ahead of Cache-Control, and
// never reach the app, on a miss or a hit, on either path; a field not on
// cache.targeted_fields is passed through and not obeyed.
func TestTargetedCacheControl(t *testing.T) {
	up := func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/cdn":
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("CDN-Cache-Control", "max-age=60")
		case "/zerohop":
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Set("CDN-Cache-Control", "max-age=600")
			w.Header().Set("Zerohop-Cache-Control", "no-store")
		case "/short":
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("Zerohop-Cache-Control", "max-age=5")
		case "/invalid":
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("Zerohop-Cache-Control", "Max-Age=1,,")
		}
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	}
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: up, plainServer: plain})
			for _, tt := range []struct {
				path        string
				hitAfter    bool   // the second request is a hit
				cc          string // the Cache-Control the app sees
				staleAfter5 bool
			}{
				{"/cdn", true, "no-store", false},
				{"/zerohop", false, "public, max-age=600", false},
				{"/short", true, "max-age=600", true},
				{"/invalid", true, "max-age=600", false},
			} {
				a, b := h.get(tt.path), h.get(tt.path)
				for i, r := range []*result{a, b} {
					if r.Header.Get("Cdn-Cache-Control") != "" || r.Header.Get("Zerohop-Cache-Control") != "" {
						t.Errorf("%s #%d: targeted fields reached the app: %v", tt.path, i, r.Header)
					}
					if g := r.Header.Get("Cache-Control"); g != tt.cc {
						t.Errorf("%s #%d: Cache-Control %q, want the origin's %q", tt.path, i, g, tt.cc)
					}
				}
				if isHit(b) != tt.hitAfter {
					t.Errorf("%s: second request %q, want hit=%v", tt.path, b.cacheStatus(), tt.hitAfter)
				}
			}
			h.clock.Advance(6 * time.Second)
			if r := h.get("/short"); isHit(r) {
				t.Errorf("/short after 6s: %q; Zerohop-Cache-Control max-age=5 must win over max-age=600", r.cacheStatus())
			}
			if r := h.get("/cdn"); !isHit(r) {
				t.Errorf("/cdn after 6s: %q, want a hit", r.cacheStatus())
			}
		})
	}
	t.Run("configured list", func(t *testing.T) {
		h := newHarness(t, harnessOptions{handler: up, config: func(c *config.Config) {
			c.Cache.TargetedFields = []string{"Zerohop-Cache-Control"}
		}})
		a, b := h.get("/cdn"), h.get("/cdn")
		if a.Header.Get("Cdn-Cache-Control") != "max-age=60" || isHit(b) {
			t.Errorf("CDN-Cache-Control off the list: got %q and a second %q; want it passed through and not obeyed (no-store)",
				a.Header.Get("Cdn-Cache-Control"), b.cacheStatus())
		}
	})
}

// TestRouteDefaultTTL: a route's default_ttl gives a lifetime to responses
// whose origin gave none, and only to those.
func TestRouteDefaultTTL(t *testing.T) {
	up := func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Query().Get("ma") != "" {
			w.Header().Set("Cache-Control", "max-age="+r.URL.Query().Get("ma"))
		}
		fmt.Fprintf(w, "#%d", n)
	}
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "ttl", Match: config.Match{PathPrefix: "/ttl/"}, Cluster: "main", Cache: &config.RouteCache{Enabled: true, DefaultTTL: 30 * time.Second}},
			{Name: "main", Cluster: "main"},
		}
	}
	both(t, up, cfg, func(t *testing.T, h *harness) {
		h.get("/ttl/none")
		h.get("/ttl/own?ma=5")
		h.get("/plain")
		if r := h.get("/ttl/none"); !isHit(r) {
			t.Errorf("/ttl/none: %q, want a hit (default_ttl)", r.cacheStatus())
		}
		if r := h.get("/plain"); isHit(r) {
			t.Errorf("/plain: %q; no default_ttl, no freshness: not stored", r.cacheStatus())
		}
		h.clock.Advance(10 * time.Second)
		if r := h.get("/ttl/none"); !isHit(r) {
			t.Errorf("/ttl/none after 10s: %q, want a hit", r.cacheStatus())
		}
		if r := h.get("/ttl/own?ma=5"); isHit(r) {
			t.Errorf("/ttl/own after 10s: %q; the origin's max-age=5 stands", r.cacheStatus())
		}
		h.clock.Advance(25 * time.Second)
		if r := h.get("/ttl/none"); isHit(r) {
			t.Errorf("/ttl/none after 35s: %q, want stale", r.cacheStatus())
		}
	})
}
