package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy"
)

const timelineToken = "timeline-token-0123456789"

// adminGet GETs path on d's admin endpoint with the bearer token.
func adminGet(t *testing.T, d *daemon, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.admin+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// adminMetric is daemon.metric through the admin token.
func adminMetric(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	_, b := adminGet(t, d, "/metrics", timelineToken)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func timelines(t *testing.T, d *daemon, query string) []proxy.RequestRecord {
	t.Helper()
	code, b := adminGet(t, d, "/requests?"+query, timelineToken)
	if code != http.StatusOK {
		t.Fatalf("/requests?%s: %d %s", query, code, b)
	}
	var out struct{ Requests []proxy.RequestRecord }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("/requests: %v\n%s", err, b)
	}
	return out.Requests
}

func phase(r proxy.RequestRecord, name string) (start, dur float64, ok bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.StartMs, p.DurationMs, true
		}
	}
	return 0, 0, false
}

// TestRequestTimelineCoalescing runs the real binary against a slow
// loopback upstream, sends two concurrent misses for one URL (the second
// waits on the first's fetch), and reads both timelines at the admin
// endpoint and with `zerohop log`: the leader's connect, upstream,
// transfer and store phases, the follower's coalescing wait; then the
// filters (route, status, cache, min_duration), the admin token, and
// bad filters refused.
func TestRequestTimelineCoalescing(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "slow body")
	}))
	defer up.Close()
	defer once.Do(func() { close(release) })
	cfgPath := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
admin: {token: %s}
tracing: {slow_threshold: 50ms}
clusters:
  - name: svc
    endpoints: [{url: %q}]
routes:
  - {name: slow, match: {path_prefix: /slow}, cluster: svc}
  - {name: other, cluster: svc}
`, timelineToken, up.URL)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := launchDaemon(t, t.TempDir(), "ZEROHOP_CONFIG="+cfgPath)
	if !d.waitReady(t, 20*time.Second) {
		t.Fatalf("exited: %v\n%s", d.err, d.stderr)
	}

	get := func(path string) (int, string) {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + d.listen + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Request-Id")
	}
	type result struct {
		code int
		id   string
	}
	results := make(chan result, 2)
	go func() { c, id := get("/slow/item"); results <- result{c, id} }()
	// The second miss joins the first's fetch once that one is upstream
	// (the upstream holds it until released).
	time.Sleep(100 * time.Millisecond) // let the first reach the upstream
	go func() { c, id := get("/slow/item"); results <- result{c, id} }()
	waitFor(t, func() bool { return adminMetric(t, d, "zerohop_cache_coalesced_total") >= 1 }, "the second miss to wait on the first")
	time.Sleep(150 * time.Millisecond) // a wait long enough to show
	once.Do(func() { close(release) })
	for range 2 {
		if r := <-results; r.code != 200 {
			t.Fatalf("GET /slow/item: %d %s", r.code, r.id)
		}
	}
	if c, _ := get("/other/missing"); c != 404 {
		t.Fatalf("GET /other/missing: %d", c)
	}

	recs := timelines(t, d, "route=slow")
	if len(recs) != 2 {
		t.Fatalf("route=slow: %d requests, want 2: %+v", len(recs), recs)
	}
	var leader, follower proxy.RequestRecord
	for _, r := range recs {
		if r.Cache == "hit" {
			follower = r
		} else {
			leader = r
		}
	}
	if leader.Cache != "uri-miss" && leader.Cache != "miss" || follower.Cache != "hit" {
		t.Fatalf("cache results %q and %q; want a miss and a (collapsed) hit", leader.Cache, follower.Cache)
	}
	_, wait, ok := phase(follower, "coalesce")
	if !ok || wait < 150 {
		t.Errorf("the follower's timeline shows no coalescing wait of at least 150ms: %+v", follower)
	}
	if _, _, ok := phase(follower, "upstream"); ok {
		t.Errorf("the follower went upstream: %+v", follower)
	}
	for _, name := range []string{"cache", "connect", "upstream", "transfer", "store"} {
		if _, _, ok := phase(leader, name); !ok {
			t.Errorf("the leader's timeline lacks %s: %+v", name, leader)
		}
	}
	if _, up, _ := phase(leader, "upstream"); up < 100 {
		t.Errorf("the leader's upstream phase is %vms; the upstream held it for longer", up)
	}
	if leader.Method != "GET" || leader.Target != "/slow/item" || leader.Status != 200 || leader.Upstream == "" || leader.RequestID == "" {
		t.Errorf("leader: %+v", leader)
	}

	// Filters.
	if r := timelines(t, d, "status=4xx"); len(r) != 1 || r[0].Route != "other" || r[0].Status != 404 {
		t.Errorf("status=4xx: %+v", r)
	}
	if r := timelines(t, d, "status=404&route=slow"); len(r) != 0 {
		t.Errorf("status=404&route=slow: %+v", r)
	}
	if r := timelines(t, d, "cache=hit"); len(r) != 1 || r[0].RequestID != follower.RequestID {
		t.Errorf("cache=hit: %+v", r)
	}
	if r := timelines(t, d, "min_duration=100ms"); len(r) != 2 {
		t.Errorf("min_duration=100ms: %d requests, want the 2 slow ones", len(r))
	}
	if r := timelines(t, d, "limit=1"); len(r) != 1 || r[0].Route != "other" {
		t.Errorf("limit=1: %+v; want the newest", r)
	}
	if r := timelines(t, d, "slow=1"); len(r) != 2 {
		t.Errorf("slow=1: %d requests, want the 2 above tracing.slow_threshold", len(r))
	}
	for _, q := range []string{"status=6xx", "min_duration=soon", "limit=-1"} {
		if code, _ := adminGet(t, d, "/requests?"+q, timelineToken); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	if code, _ := adminGet(t, d, "/requests", ""); code != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d, want 401", code)
	}

	// zerohop log: the admin address from the environment, the token
	// from a flag.
	zlog := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"log", "--admin-token", timelineToken}, args...)...)
		cmd.Env = append(os.Environ(), "ZEROHOP_ADMIN="+d.admin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := zlog("--route", "slow", "--cache", "hit")
	if err != nil {
		t.Fatalf("zerohop log: %v\n%s", err, out)
	}
	if !strings.Contains(out, "PHASES") || !strings.Contains(out, follower.RequestID) || !strings.Contains(out, "coalesce ") ||
		strings.Contains(out, leader.RequestID) {
		t.Errorf("zerohop log --route slow --cache hit:\n%s", out)
	}
	out, err = zlog("--status", "5xx")
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("zerohop log --status 5xx: %v\n%s", err, out)
	}
	out, err = zlog("--json", "--min-duration", "100ms", "--route", "slow")
	var js struct{ Requests []proxy.RequestRecord }
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || len(js.Requests) != 2 {
		t.Errorf("zerohop log --json --min-duration 100ms: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "log", "--admin", d.admin)
	cmd.Env = append(os.Environ(), "ZEROHOP_ADMIN_TOKEN=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("zerohop log without the token: %v\n%s", err, out)
	}
	if out, err := zlog("--status", "abc"); err == nil || !strings.Contains(out, "status") {
		t.Errorf("zerohop log --status abc: %v\n%s", err, out)
	}
}
