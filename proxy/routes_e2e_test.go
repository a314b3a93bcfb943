package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// routeUpstream serves everything cacheable and echoes what it got.
func routeUpstream(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("X-Seen-Path", r.URL.Path)
	w.Header().Set("X-Seen-Query", r.URL.RawQuery)
	w.Header().Set("X-Seen-Host", r.Host)
	w.Header().Set("X-Remove-Me", "origin")
	fmt.Fprintf(w, "body %d", n)
}

// both runs f against a harness behind the fast path and one on net/http
// alone, built with the same configuration.
func both(t *testing.T, handler handlerFunc, cfg func(*config.Config), f func(t *testing.T, h *harness)) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			h := newHarness(t, harnessOptions{handler: handler, plainServer: plain, config: cfg})
			f(t, h)
		})
	}
}

func tagged(name string, m config.Match) config.Route {
	return config.Route{Name: name, Match: m, Cluster: "main",
		ResponseHeaderOps: &config.HeaderOps{Set: map[string]string{"X-Route": name}}}
}

// TestRouteMatchersBothPaths sends requests that each one matcher kind
// selects, twice: a miss (the general path routes it) and a hit (on the
// fast path, its own routing); both must pick the same route, which
// marks its responses.
func TestRouteMatchersBothPaths(t *testing.T) {
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{
			tagged("regex", config.Match{PathRegex: `/items/[0-9]+`}),
			tagged("exact", config.Match{PathExact: "/exact"}),
			tagged("hdr-present", config.Match{PathPrefix: "/h/p", HeaderRules: []config.FieldMatch{{Name: "X-Canary", Present: true}}}),
			tagged("hdr-exact", config.Match{PathPrefix: "/h/e", HeaderRules: []config.FieldMatch{{Name: "X-Env", Exact: "prod"}}}),
			tagged("hdr-prefix", config.Match{PathPrefix: "/h/x", HeaderRules: []config.FieldMatch{{Name: "User-Agent", Prefix: "curl/"}}}),
			tagged("hdr-regex", config.Match{PathPrefix: "/h/r", HeaderRules: []config.FieldMatch{{Name: "X-V", Regex: "v[23]"}}}),
			tagged("hdr-inverted", config.Match{PathPrefix: "/h/", HeaderRules: []config.FieldMatch{{Name: "X-Env", Exact: "prod", Invert: true}}}),
			tagged("q-present", config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "debug", Present: true}}}),
			tagged("q-exact", config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "v", Exact: "2"}}}),
			tagged("q-regex", config.Match{PathPrefix: "/q/", Query: []config.FieldMatch{{Name: "id", Regex: "[0-9]+"}}}),
			tagged("host", config.Match{Host: "api.example.com"}),
			tagged("wildcard", config.Match{Host: "*.example.com"}),
			tagged("method", config.Match{Methods: []string{"GET", "HEAD"}, PathPrefix: "/m/"}),
			tagged("rest", config.Match{}),
		}
	}
	cases := []struct {
		path string
		kv   []string
		want string
	}{
		{"/items/42", nil, "regex"},
		{"/items/42/x", nil, "rest"},
		{"/exact", nil, "exact"},
		{"/exact/", nil, "rest"},
		{"/h/p1", []string{"X-Canary", "1"}, "hdr-present"},
		{"/h/p2", []string{"X-Env", "dev"}, "hdr-inverted"},
		{"/h/e1", []string{"X-Env", "prod"}, "hdr-exact"},
		{"/h/x1", []string{"User-Agent", "curl/8.5"}, "hdr-prefix"},
		{"/h/x2", []string{"User-Agent", "wget", "X-Env", "prod"}, "rest"},
		{"/h/r1", []string{"X-V", "v3"}, "hdr-regex"},
		{"/h/r2", []string{"X-V", "v33", "X-Env", "prod"}, "rest"},
		{"/q/a?debug", nil, "q-present"},
		{"/q/b?v=2", nil, "q-exact"},
		{"/q/c?v=3&id=7", nil, "q-regex"},
		{"/q/d?id=x", nil, "rest"},
		{"/any", []string{"Host", "api.example.com"}, "host"},
		{"/any", []string{"Host", "a.b.example.com:8080"}, "wildcard"},
		{"/m/1", nil, "method"},
	}
	both(t, routeUpstream, cfg, func(t *testing.T, h *harness) {
		for _, c := range cases {
			kv := c.kv
			miss := h.get(c.path, kv...)
			hit := h.get(c.path, kv...)
			if g := miss.Header.Get("X-Route"); g != c.want {
				t.Errorf("%s %v: miss routed to %q, want %q", c.path, c.kv, g, c.want)
			}
			if g := hit.Header.Get("X-Route"); g != c.want {
				t.Errorf("%s %v: hit routed to %q, want %q", c.path, c.kv, g, c.want)
			}
			if !strings.Contains(hit.cacheStatus(), "hit") {
				t.Errorf("%s: second request %q, want a hit", c.path, hit.cacheStatus())
			}
		}
	})
}

// TestRouteRewrites checks what the upstream sees of each rewrite, and
// that the cache key stays the request as received.
func TestRouteRewrites(t *testing.T) {
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "prefix", Match: config.Match{PathPrefix: "/old/"}, Cluster: "main",
				Rewrite: &config.Rewrite{PathPrefix: "/new/v2/"}},
			{Name: "exact", Match: config.Match{PathExact: "/login"}, Cluster: "main",
				Rewrite: &config.Rewrite{PathPrefix: "/auth/login", Host: "auth.internal"}},
			{Name: "regex", Match: config.Match{PathPrefix: "/users/"}, Cluster: "main",
				Rewrite: &config.Rewrite{PathRegex: `^/users/([0-9]+)/posts/([0-9]+)$`, PathSubstitution: "/posts/$2?user=$1", KeepHost: true}},
			{Name: "plain", Cluster: "main"},
		}
	}
	both(t, routeUpstream, cfg, func(t *testing.T, h *harness) {
		for _, c := range []struct {
			target, host          string
			path, query, seenHost string
		}{
			{"/old/a/b?x=1", "app.local", "/new/v2/a/b", "x=1", h.up.hostport()},
			{"/login", "app.local", "/auth/login", "", "auth.internal"},
			{"/users/7/posts/9", "app.local:81", "/posts/9?user=7", "", "app.local:81"},
			{"/users/7/other", "app.local", "/users/7/other", "", "app.local"},
			{"/plain", "app.local", "/plain", "", h.up.hostport()},
		} {
			r := h.get(c.target, "Host", c.host)
			if r.StatusCode != 200 {
				t.Fatalf("%s: status %d", c.target, r.StatusCode)
			}
			if g := r.Header.Get("X-Seen-Path"); g != c.path {
				t.Errorf("%s: upstream saw path %q, want %q", c.target, g, c.path)
			}
			if g := r.Header.Get("X-Seen-Query"); g != c.query {
				t.Errorf("%s: upstream saw query %q, want %q", c.target, g, c.query)
			}
			if g := r.Header.Get("X-Seen-Host"); g != c.seenHost {
				t.Errorf("%s: upstream saw Host %q, want %q", c.target, g, c.seenHost)
			}
			// Stored under the request as the app sent it.
			if again := h.get(c.target, "Host", c.host); !strings.Contains(again.cacheStatus(), "hit") || again.body != r.body {
				t.Errorf("%s: second request %q %q, want a hit of %q", c.target, again.cacheStatus(), again.body, r.body)
			}
		}
	})
}

// TestRouteHeaderOps checks request_header_ops upstream (misses only, not
// the key) and response_header_ops on misses, hits and the proxy's own
// answers, on both paths.
func TestRouteHeaderOps(t *testing.T) {
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{{Name: "main", Cluster: "main",
			RequestHeaderOps: &config.HeaderOps{
				Set:    map[string]string{"X-Env": "prod"},
				Add:    map[string]string{"X-Tag": "zerohop"},
				Remove: []string{"X-Debug"},
			},
			ResponseHeaderOps: &config.HeaderOps{
				Set:    map[string]string{"X-Frame-Options": "DENY"},
				Add:    map[string]string{"Vary-Note": "added"},
				Remove: []string{"X-Remove-Me", "X-Seen-Host"},
			},
			ResponseHeaders: map[string]string{"X-Served-By": "zerohop"},
		}}
	}
	echo := func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("X-Got-Env", strings.Join(r.Header.Values("X-Env"), "|"))
		w.Header().Set("X-Got-Tag", strings.Join(r.Header.Values("X-Tag"), "|"))
		w.Header().Set("X-Got-Debug", r.Header.Get("X-Debug"))
		w.Header().Set("Vary-Note", "origin")
		routeUpstream(w, r, n)
	}
	both(t, echo, cfg, func(t *testing.T, h *harness) {
		kv := []string{"X-Env", "dev", "X-Tag", "app", "X-Debug", "1"}
		miss := h.get("/ops", kv...)
		hit := h.get("/ops", kv...)
		if !strings.Contains(hit.cacheStatus(), "hit") {
			t.Fatalf("second request: %q, want a hit", hit.cacheStatus())
		}
		if g := miss.Header.Get("X-Got-Env") + " " + miss.Header.Get("X-Got-Tag") + " " + miss.Header.Get("X-Got-Debug"); g != "prod app|zerohop " {
			t.Errorf("upstream saw X-Env, X-Tag, X-Debug = %q, want \"prod app|zerohop \"", g)
		}
		for name, r := range map[string]*result{"miss": miss, "hit": hit} {
			if g := r.Header.Get("X-Frame-Options"); g != "DENY" {
				t.Errorf("%s: X-Frame-Options %q", name, g)
			}
			if g := r.Header.Values("Vary-Note"); strings.Join(g, "|") != "origin|added" {
				t.Errorf("%s: Vary-Note %q, want origin then added", name, g)
			}
			if _, ok := r.Header["X-Remove-Me"]; ok {
				t.Errorf("%s: X-Remove-Me was not removed", name)
			}
			if _, ok := r.Header["X-Seen-Host"]; ok {
				t.Errorf("%s: X-Seen-Host was not removed", name)
			}
			if g := r.Header.Get("X-Served-By"); g != "zerohop" {
				t.Errorf("%s: response_headers alongside: X-Served-By %q", name, g)
			}
		}
		if h.up.hits.Load() != 1 {
			t.Errorf("upstream asked %d times, want 1", h.up.hits.Load())
		}
	})
}

// TestDirectResponseAndRedirect checks routes that answer by themselves:
// no upstream request, the same answer on both paths, the response
// phase applied, and redirects built from the request.
func TestDirectResponseAndRedirect(t *testing.T) {
	cfg := func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "health", Match: config.Match{PathExact: "/healthz"},
				DirectResponse: &config.DirectResponse{Status: 200, Body: "ok\n"}},
			{Name: "gone", Match: config.Match{PathPrefix: "/gone/"},
				DirectResponse:    &config.DirectResponse{Status: 410, Body: `{"error":"gone"}`, ContentType: "application/json"},
				ResponseHeaderOps: &config.HeaderOps{Set: map[string]string{"X-Route": "gone"}}},
			{Name: "empty", Match: config.Match{PathExact: "/empty"}, DirectResponse: &config.DirectResponse{Status: 204}},
			{Name: "https", Match: config.Match{PathPrefix: "/secure/"},
				Redirect: &config.Redirect{Status: 301, Scheme: "https"}},
			{Name: "moved", Match: config.Match{PathPrefix: "/v1/"},
				Redirect: &config.Redirect{Status: 308, Host: "api.example.com", PathPrefix: "/v2/"}},
			{Name: "exact", Match: config.Match{PathExact: "/old"},
				Redirect: &config.Redirect{Status: 302, Path: "/new", StripQuery: true}},
			{Name: "main", Cluster: "main"},
		}
	}
	both(t, routeUpstream, cfg, func(t *testing.T, h *harness) {
		for _, c := range []struct {
			method, target                     string
			status                             int
			body, ctype, location, extraHeader string
		}{
			{"GET", "/healthz", 200, "ok\n", "text/plain; charset=utf-8", "", ""},
			{"HEAD", "/healthz", 200, "", "text/plain; charset=utf-8", "", ""},
			{"POST", "/gone/x", 410, `{"error":"gone"}`, "application/json", "", "gone"},
			{"GET", "/empty", 204, "", "", "", ""},
			{"GET", "/secure/a?b=c", 301, "", "", "https://app.local/secure/a?b=c", ""},
			{"GET", "/v1/items/1?x=%2F", 308, "", "", "http://api.example.com/v2/items/1?x=%2F", ""},
			{"GET", "/old?q=1", 302, "", "", "http://app.local/new", ""},
		} {
			for i := range 2 { // the second time, nothing is cached either
				r := h.do(c.method, c.target, hdr("Host", "app.local"), nil)
				if r.StatusCode != c.status || r.body != c.body {
					t.Errorf("%s %s #%d: %d %q, want %d %q", c.method, c.target, i, r.StatusCode, r.body, c.status, c.body)
				}
				if g := r.Header.Get("Content-Type"); g != c.ctype {
					t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.target, g, c.ctype)
				}
				if g := r.Header.Get("Location"); g != c.location {
					t.Errorf("%s %s: Location %q, want %q", c.method, c.target, g, c.location)
				}
				if g := r.Header.Get("X-Route"); g != c.extraHeader {
					t.Errorf("%s %s: X-Route %q, want %q", c.method, c.target, g, c.extraHeader)
				}
				if r.Header.Get("X-Request-Id") == "" {
					t.Errorf("%s %s: no X-Request-Id", c.method, c.target)
				}
			}
		}
		if n := h.up.hits.Load(); n != 0 {
			t.Errorf("the upstream got %d requests; routes that answer by themselves must not ask it", n)
		}
	})
}
