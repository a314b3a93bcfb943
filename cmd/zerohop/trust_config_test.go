package main_test

import (
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

// TestLimitsEnforced: the `limits:` key used to be parsed and enforce
// nothing (ten requests over a `rate: 1` limit all passed while validate
// said ok); then it was refused. Now validate accepts a limit, run
// enforces it (one request of ten passes), and a malformed limit is
// refused by both, with file, line and field.
func TestLimitsEnforced(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "limits.yaml")
	os.WriteFile(f, []byte("listeners:\n  - {name: forward, rate_limits: [per-ip]}\nlimits:\n  - {name: per-ip, rate: 1, period: 1h}\n"), 0o644)
	if out, err := exec.Command(bin, "validate", f).CombinedOutput(); err != nil {
		t.Errorf("validate: %v; want ok\n%s", err, out)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	d := startDaemon(t, "ZEROHOP_CONFIG="+f)
	c := d.client()
	var codes []int
	for range 10 {
		resp, err := c.Get(origin.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 429 429 429 429 429 429 429 429 429]" {
		t.Errorf("ten requests over a rate: 1 limit: %v; want one through", codes)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("limits:\n  - {name: per-ip, rate: 1, key: ip}\n"), 0o644)
	const want = `bad.yaml:2: limits[0].key: invalid key "ip"`
	out, err := exec.Command(bin, "validate", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Errorf("validate: %v; want exit status 1 and %q\n%s", err, want, out)
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "ZEROHOP_CONFIG="+bad, "ZEROHOP_LISTEN="+freeAddr(t),
		"ZEROHOP_ADMIN=off", "ZEROHOP_CACHE_DIR="+t.TempDir(), "ZEROHOP_CACHE_SIZE=32MiB")
	done := make(chan struct{})
	var runOut []byte
	go func() { runOut, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("run with a bad limit: still running after 20s; want a refusal\n%s", runOut)
	}
	if err == nil || !strings.Contains(string(runOut), want) {
		t.Errorf("run with a bad limit: %v; want an error naming %q\n%s", err, want, runOut)
	}
}
