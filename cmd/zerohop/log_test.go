package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLogCommand drives fast hits, a slow miss and an error through a
// real sidecar and reads them back with `zerohop log` and its filters.
func TestLogCommand(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(150 * time.Millisecond)
		case "/err":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	d := startDaemon(t)
	for _, p := range []string{"/fast", "/fast", "/fast", "/slow", "/err"} {
		resp, err := d.client().Get(origin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	type rec struct {
		Target     string  `json:"target"`
		Status     int     `json:"status"`
		Cache      string  `json:"cache"`
		DurationMs float64 `json:"duration_ms"`
		UpstreamMs float64 `json:"upstream_ms"`
		RequestID  string  `json:"request_id"`
	}
	logs := func(args ...string) []rec {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"log", "--json", "--admin", d.admin}, args...)...).Output()
		if err != nil {
			t.Fatalf("log %v: %v\n%s", args, err, out)
		}
		var doc struct{ Requests []rec }
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return doc.Requests
	}
	targets := func(rs []rec) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.Target)
		}
		return strings.Join(s, " ")
	}
	if got := targets(logs()); got != "/err /slow /fast /fast /fast" {
		t.Errorf("all, newest first: %q", got)
	}
	slow := logs("--min-duration", "100ms")
	if len(slow) != 1 || slow[0].Target != "/slow" || slow[0].DurationMs < 150 || slow[0].UpstreamMs < 150 || slow[0].RequestID == "" {
		t.Errorf("--min-duration 100ms: %+v", slow)
	}
	if got := targets(logs("--slow")); got != "/slow" {
		t.Errorf("--slow: %q", got)
	}
	if got := logs("--status", "5xx"); len(got) != 1 || got[0].Status != 503 {
		t.Errorf("--status 5xx: %+v", got)
	}
	if got := targets(logs("--cache", "hit")); got != "/fast /fast" {
		t.Errorf("--cache hit: %q", got)
	}
	if got := logs("--limit", "2"); len(got) != 2 {
		t.Errorf("--limit 2: %d", len(got))
	}
	out, err := exec.Command(bin, "log", "--admin", d.admin, "--status", "5xx").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "STATUS") || !strings.Contains(string(out), "503") {
		t.Errorf("log table: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "log", "--admin", d.admin, "--status", "5x").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "400 Bad Request") {
		t.Errorf("a bad filter: %v\n%s", err, out)
	}
}
