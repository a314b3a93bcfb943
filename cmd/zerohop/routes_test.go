package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRoutesInTheBinary runs the real binary with a file using the route
// keys of docs/routes.md: a regex route with a header rule and a query
// condition, a rewrite, header operations, a direct response, a redirect,
// a route cache key and targeted cache control, against a loopback origin.
func TestRoutesInTheBinary(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("CDN-Cache-Control", "max-age=300")
		fmt.Fprintf(w, "%s?%s env=%s tenant=%s", r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Env"), r.Header.Get("X-Tenant"))
	}))
	defer origin.Close()
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: svc
    endpoints: [{url: %q}]
routes:
  - name: items
    match:
      path_regex: "/v[0-9]+/items/[0-9]+"
      header_rules: [{name: X-Canary, present: true, invert: true}]
      query: [{name: debug, present: true, invert: true}]
    cluster: svc
    rewrite: {path_regex: "^/v[0-9]+/(.*)$", path_substitution: "/api/$1"}
    request_header_ops: {set: {X-Env: prod}}
    response_header_ops: {set: {X-Route: items}}
    cache: {key: {headers: [X-Tenant], query: {drop: [utm_source], sort: true}}}
  - name: health
    match: {path_exact: /healthz}
    direct_response: {status: 200, body: "ok"}
  - name: old
    match: {path_prefix: /old/}
    redirect: {status: 301, path_prefix: /new/}
  - name: rest
    cluster: svc
`, origin.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(target string, kv ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+d.listen+target, nil)
		for i := 0; i+1 < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	r, body := get("/v2/items/7?b=1&utm_source=x&a=2", "X-Tenant", "t1")
	if body != "/api/items/7?b=1&utm_source=x&a=2 env=prod tenant=t1" || r.Header.Get("X-Route") != "items" {
		t.Fatalf("items: %q %v", body, r.Header)
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Cdn-Cache-Control") != "" {
		t.Errorf("items: Cache-Control %q, CDN-Cache-Control %q; want the origin's and none",
			r.Header.Get("Cache-Control"), r.Header.Get("Cdn-Cache-Control"))
	}
	r, body2 := get("/v2/items/7?a=2&b=1", "X-Tenant", "t1")
	if body2 != body || !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Errorf("same key: %q %q, want a hit (CDN-Cache-Control over no-store)", body2, r.Header.Get("Cache-Status"))
	}
	if _, b := get("/v2/items/7?a=2&b=1", "X-Tenant", "t2"); !strings.HasSuffix(b, "tenant=t2") {
		t.Errorf("another tenant: %q, want its own response", b)
	}
	if r, b := get("/v2/items/7", "X-Canary", "1"); r.Header.Get("X-Route") != "" || b != "/v2/items/7? env= tenant=" {
		t.Errorf("canary: %q %v, want the rest route unchanged", b, r.Header)
	}
	if r, b := get("/healthz"); r.StatusCode != 200 || b != "ok" {
		t.Errorf("healthz: %d %q", r.StatusCode, b)
	}
	if r, _ := get("/old/x?y=1"); r.StatusCode != 301 || r.Header.Get("Location") != "http://"+d.listen+"/new/x?y=1" {
		t.Errorf("redirect: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("origin asked %d times, want 3", n)
	}
}
