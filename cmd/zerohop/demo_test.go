package main_test

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the README's first command's program, zerohop demo: it
// exits 0, the origin sees only the misses, the client's hits are served
// from shared memory, and the sidecar's /metrics counts those hits from
// the app's counters file though they never reached it.
func TestDemo(t *testing.T) {
	cmd := exec.Command(bin, "demo")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("demo did not finish in 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	hits := regexp.MustCompile(`client stats: hits=(\d+) misses=(\d+)`).FindStringSubmatch(s)
	if hits == nil || hits[1] == "0" {
		t.Fatalf("demo: no client hits reported:\n%s", s)
	}
	if !strings.Contains(s, "zerohop_app_hits_total "+hits[1]+"\n") {
		t.Errorf("demo: the sidecar's zerohop_app_hits_total is not the client's %s hits:\n%s", hits[1], s)
	}
	if m := regexp.MustCompile(`origin requests: (\d+) \(for (\d+) app requests\)`).FindStringSubmatch(s); m == nil || len(m[1]) > 2 {
		t.Errorf("demo: the origin should see only a handful of misses:\n%s", s)
	}
}
