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

// TestReloadKeepsEjection runs the real binary with a cluster under
// outlier detection: an endpoint answering 503 is ejected, and a config
// reload that changes the cluster (a timeout, an endpoint removed) keeps
// it ejected, where a rebuilt cluster would have forgotten it.
func TestReloadKeepsEjection(t *testing.T) {
	var failA atomic.Bool
	failA.Store(true)
	newUp := func(name string, fail *atomic.Bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			if fail != nil && fail.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b, c := newUp("A", &failA), newUp("B", nil), newUp("C", nil)
	cfgPath := filepath.Join(t.TempDir(), "zerohop.yaml")
	write := func(timeout string, ups ...*httptest.Server) {
		var eps []string
		for _, u := range ups {
			eps = append(eps, fmt.Sprintf("{url: %q}", u.URL))
		}
		yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: svc
    endpoints: [%s]
    response_timeout: %s
    lb_policy: round_robin
    outlier_detection: {consecutive_5xx: 2, base_ejection_time: 10m, max_ejection_percent: 50}
routes:
  - {name: all, cluster: svc}
`, strings.Join(eps, ", "), timeout)
		if err := os.WriteFile(cfgPath+".tmp", []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(cfgPath+".tmp", cfgPath)
	}
	write("30s", a, b, c)
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfgPath)
	get := func() string {
		resp, err := http.Get("http://" + d.listen + "/x")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for range 6 { // round robin: A answers 503 twice
		get()
	}
	hostA := strings.TrimPrefix(a.URL, "http://")
	healthyA := fmt.Sprintf(`zerohop_endpoint_healthy{cluster="svc",endpoint=%q}`, hostA)
	if got := d.metric(t, healthyA); got != 0 {
		t.Fatalf("%s = %v after two 503s, want 0 (ejected)\n%s", healthyA, got, d.stderr)
	}
	if got := d.metric(t, fmt.Sprintf(`zerohop_outlier_ejections_total{cluster="svc",endpoint=%q}`, hostA)); got != 1 {
		t.Errorf("ejections %v, want 1", got)
	}
	failA.Store(false) // healthy again, but ejected for 10m
	reloads := d.metric(t, "zerohop_config_reloads_total")
	write("9s", a, b) // another timeout, C removed: the cluster is rebuilt
	waitFor(t, func() bool { return d.metric(t, "zerohop_config_reloads_total") > reloads }, "the reload")
	if got := d.metric(t, healthyA); got != 0 {
		t.Fatalf("after the reload %s = %v, want 0: the ejection was forgotten", healthyA, got)
	}
	if got := d.metric(t, fmt.Sprintf(`zerohop_endpoint_healthy{cluster="svc",endpoint=%q}`, strings.TrimPrefix(c.URL, "http://"))); got != -1 {
		t.Errorf("the removed endpoint still has a series (%v)", got)
	}
	for i := range 10 {
		if got := get(); got != "B" {
			t.Fatalf("request %d after the reload: %q, want B (A ejected, C removed)", i, got)
		}
	}
	if !strings.Contains(d.stderr.String(), "endpoint ejected") {
		t.Errorf("the ejection was not logged:\n%s", d.stderr)
	}
}
