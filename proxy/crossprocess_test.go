package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/zerohop/zerohop/proxy"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/config"
)

// The cross-process test re-runs this test binary as the "app": with
// helperEnv set, TestHelperClientProcess opens the cache directory with
// the Go client, GETs each URL and prints what it got.
const (
	helperEnv    = "ZEROHOP_PROXY_TEST_HELPER"
	helperPrefix = "ZEROHOP_HELPER_RESULT "
)

// helperResult is one response as the app process saw it.
type helperResult struct {
	URL         string
	Status      int
	Body        string
	CacheStatus string
	Err         string
}

// TestCrossProcessHit: after a cacheable miss through the sidecar, another
// process using clients/go/zerohop gets the response from shared memory
// without a request reaching the sidecar; a URL that is not cached still
// goes through the sidecar.
func TestCrossProcessHit(t *testing.T) {
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/shared" {
			w.Header().Set("Cache-Control", "max-age=300")
		} else {
			w.Header().Set("Cache-Control", "no-store")
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s v%d", r.URL.Path, n)
	}})
	if r := h.get("/shared"); !strings.Contains(r.cacheStatus(), "stored") {
		t.Fatalf("priming request: Cache-Status %q; want stored", r.cacheStatus())
	}
	proxied, upstream := proxy.RequestsSeen(h.p), h.up.hits.Load()

	results := runHelper(t, map[string]string{
		"ZH_DIR":     h.dir,
		"ZH_SIDECAR": h.addr(),
		"ZH_URLS":    h.url("/shared") + " " + h.url("/private"),
	})
	tests := []struct {
		name    string
		body    string
		cs      []string
		proxied int64 // requests the sidecar got from the helper so far
	}{
		{"a stored URL is a hit from shared memory", "/shared v1", []string{"hit", "detail=shm"}, 0},
		{"an uncached URL goes through the sidecar", "/private v2", []string{"fwd=uri-miss"}, 1},
	}
	if len(results) != len(tests) {
		t.Fatalf("helper results = %d; want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[i]
			if r.Err != "" || r.Status != 200 || r.Body != tt.body {
				t.Errorf("got %d %q (err %q); want 200 %q", r.Status, r.Body, r.Err, tt.body)
			}
			for _, sub := range tt.cs {
				if !strings.Contains(r.CacheStatus, sub) {
					t.Errorf("Cache-Status = %q; want %q", r.CacheStatus, sub)
				}
			}
		})
	}
	if got := proxy.RequestsSeen(h.p) - proxied; got != 1 {
		t.Errorf("requests that reached the sidecar from the app process = %d; want 1 (only the uncached URL)", got)
	}
	if got := h.up.hits.Load() - upstream; got != 1 {
		t.Errorf("upstream requests from the app process = %d; want 1", got)
	}
}

// runHelper runs TestHelperClientProcess in a child process with env and
// returns its results.
func runHelper(t *testing.T, env map[string]string) []helperResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	var results []helperResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
			var r helperResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("helper output %q: %v", line, err)
			}
			results = append(results, r)
		}
	}
	return results
}

// TestHelperClientProcess is the app side of TestCrossProcessHit. It only
// runs in the child process.
func TestHelperClientProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for TestCrossProcessHit; runs only in its child process")
	}
	c, err := zerohop.Open(os.Getenv("ZH_DIR"), &zerohop.Options{Sidecar: os.Getenv("ZH_SIDECAR")})
	if err != nil {
		t.Fatalf("zerohop.Open: %v", err)
	}
	defer c.Close()
	client := &http.Client{Transport: c.Transport(), Timeout: wait}
	for _, u := range strings.Fields(os.Getenv("ZH_URLS")) {
		r := helperResult{URL: u}
		resp, err := client.Get(u)
		if err != nil {
			r.Err = err.Error()
		} else {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.Status, r.Body, r.CacheStatus = resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
			if err != nil {
				r.Err = err.Error()
			}
		}
		line, _ := json.Marshal(r)
		fmt.Println(helperPrefix + string(line))
	}
}
