package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppCountersInMetrics runs two real app processes using the Go
// client against a real sidecar: their shared-memory hits, bytes and
// bypasses sum in the sidecar's /metrics; a SIGKILLed app's counters stay
// in the totals; a garbage counters file is ignored and counted; an app
// that closes its client cleanly is folded in too.
func TestAppCountersInMetrics(t *testing.T) {
	const body = "twelve bytes"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, body)
	}))
	defer origin.Close()
	d := startDaemon(t)
	url := origin.URL + "/counted"
	for range 2 { // a miss that stores, then a sidecar hit
		resp, err := d.client().Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	app := filepath.Join(t.TempDir(), "counterapp")
	if out, err := exec.Command("go", "build", "-o", app, "./testdata/counterapp").CombinedOutput(); err != nil {
		t.Fatalf("build counterapp: %v\n%s", err, out)
	}
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		done  chan error
	}
	run := func(n int) *proc {
		cmd := exec.Command(app, d.dir, url, fmt.Sprint(n))
		cmd.Env = append(os.Environ(), "ZEROHOP_SIDECAR="+d.listen)
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
		t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		go func() { p.done <- cmd.Wait() }()
		if want := fmt.Sprintf("published %d\n", n); err != nil || line != want {
			t.Fatalf("counterapp: %q, %v; want %q", line, err, want)
		}
		return p
	}
	a, b := run(100), run(50)

	// The sidecar reads the files at scrape time: no waiting needed.
	want := func(what string, series string, v float64) {
		t.Helper()
		if got := d.metric(t, series); got != v {
			t.Errorf("%s: %s = %v; want %v", what, series, got, v)
		}
	}
	check := func(what string, procs, departed float64) {
		t.Helper()
		want(what, "zerohop_app_hits_total", 150)
		want(what, "zerohop_app_served_bytes_total", 150*float64(len(body)))
		want(what, `zerohop_app_bypasses_total{reason="method"}`, 2)
		want(what, "zerohop_app_misses_total", 0)
		want(what, "zerohop_app_lookup_hits_total", 150)
		want(what, "zerohop_app_processes", procs)
		want(what, "zerohop_app_departed_processes_total", departed)
	}
	check("two apps", 2, 0)

	// SIGKILL: no Close, no last publish; what was published stays.
	a.cmd.Process.Kill()
	<-a.done
	a.done <- nil // for the cleanup
	check("after one app was killed", 1, 1)

	// Garbage under a counters file name: ignored, counted once.
	garbage := filepath.Join(d.dir, "inval", "app-999-garbage.counters")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("garbage ", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		check("with a garbage file", 1, 1)
		want("with a garbage file", `zerohop_app_counter_files_refused_total{reason="invalid"}`, 1)
	}

	// A clean exit: Close publishes a last time and releases the file.
	b.stdin.Close()
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("counterapp exit: %v", err)
		}
		b.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("counterapp did not exit")
	}
	check("after both apps left", 0, 2)
	left, _ := filepath.Glob(filepath.Join(d.dir, "inval", "app-*.counters"))
	if len(left) != 0 {
		t.Errorf("counters files left behind: %v", left)
	}
}
