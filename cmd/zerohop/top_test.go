package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadDaemon starts a sidecar with an origin of five cacheable URLs and a
// goroutine that keeps fetching them through it until the test ends; it
// returns the daemon and the count of requests made.
func loadDaemon(t *testing.T) (*daemon, *atomic.Int64) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "top body")
	}))
	t.Cleanup(origin.Close)
	d := startDaemon(t)
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := d.client()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(fmt.Sprintf("%s/top/%d", origin.URL, i%5))
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			n.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	for n.Load() < 10 {
		time.Sleep(10 * time.Millisecond)
	}
	return d, &n
}

// TestTopJSON checks `zerohop top --json` against a scripted load: the
// requests are there, served from the sidecar's cache after five misses.
func TestTopJSON(t *testing.T) {
	d, n := loadDaemon(t)
	before := n.Load()
	out, err := exec.Command(bin, "top", "--json", "--admin", d.admin, "--interval", "1s").Output()
	if err != nil {
		t.Fatalf("top --json: %v\n%s", err, out)
	}
	made := float64(n.Load() - before)
	var s struct {
		IntervalSeconds float64 `json:"interval_seconds"`
		Requests        struct {
			SidecarCache float64 `json:"sidecar_cache"`
			Upstream     float64 `json:"upstream"`
			Total        float64 `json:"total"`
		} `json:"requests_per_second"`
		HitRatio float64 `json:"hit_ratio"`
		Cache    struct {
			State   string `json:"state"`
			Entries uint64 `json:"entries"`
		} `json:"cache"`
		Routes []struct {
			Route          string  `json:"route"`
			RequestsPerSec float64 `json:"requests_per_second"`
			P50Ms          float64 `json:"p50_ms"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The window holds at most the requests made while top ran.
	if s.Requests.Total <= 0 || s.Requests.Total*s.IntervalSeconds > made+1 || s.Requests.Upstream != 0 || s.HitRatio != 1 {
		t.Errorf("requests %+v, hit ratio %v over %.2fs; the load made %v requests meanwhile", s.Requests, s.HitRatio, s.IntervalSeconds, made)
	}
	if s.Cache.State != "live" || s.Cache.Entries != 5 {
		t.Errorf("cache %+v", s.Cache)
	}
	if len(s.Routes) != 1 || s.Routes[0].Route != "(none)" || s.Routes[0].RequestsPerSec != s.Requests.Total || s.Routes[0].P50Ms <= 0 {
		t.Errorf("routes %+v", s.Routes)
	}

	out, err = exec.Command(bin, "top", "--once", "--admin", d.admin, "--interval", "500ms").Output()
	if err != nil || !strings.Contains(string(out), "REQUESTS/s") || !strings.Contains(string(out), "entries 5") ||
		!strings.Contains(string(out), "hit ratio 100.0%") {
		t.Errorf("top --once: %v\n%s", err, out)
	}
}

// TestTopInTmux runs the live view in a real terminal (tmux) against the
// scripted load, reads the screen, and quits it with q.
func TestTopInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	d, _ := loadDaemon(t)
	sock := fmt.Sprintf("zerohop-top-test-%d", os.Getpid()) // a private server, stopped below
	run := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { run("kill-server") })
	if out, err := run("new-session", "-d", "-s", "top", "-x", "160", "-y", "40",
		bin+" top --admin "+d.admin+" --interval 300ms"); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	var screen string
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen, _ = run("capture-pane", "-p", "-t", "top")
		if strings.Contains(screen, "entries 5") && strings.Contains(screen, "hit ratio 100.0%") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed the load:\n%s", screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"zerohop top", "REQUESTS/s", "sidecar cache", "CACHE", "live", "ROUTE", "(none)", "q: quit"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	run("send-keys", "-t", "top", "q")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := run("has-session", "-t", "top"); err != nil {
			break // top exited, and its session with it
		}
		if time.Now().After(deadline) {
			screen, _ = run("capture-pane", "-p", "-t", "top")
			t.Fatalf("top did not quit on q:\n%s", screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
