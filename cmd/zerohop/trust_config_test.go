package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLimitsRefused checks that a file setting `limits:` is refused by both
// validate and run. The key used to be parsed and enforced nothing: ten
// requests over a `rate: 1` limit all passed while validate said ok.
func TestLimitsRefused(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "limits.yaml")
	os.WriteFile(f, []byte("limits:\n  - {name: per-ip, rate: 1}\n"), 0o644)
	const want = "limits.yaml:1: limits: not supported yet"

	out, err := exec.Command(bin, "validate", f).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("validate: %v; want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("validate output lacks %q:\n%s", want, out)
	}

	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "ZEROHOP_CONFIG="+f, "ZEROHOP_LISTEN="+freeAddr(t),
		"ZEROHOP_ADMIN=off", "ZEROHOP_CACHE_DIR="+t.TempDir(), "ZEROHOP_CACHE_SIZE=32MiB")
	done := make(chan struct{})
	var runOut []byte
	go func() { runOut, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("run with limits: still running after 20s; want a refusal\n%s", runOut)
	}
	if err == nil {
		t.Errorf("run with limits: exit 0; want an error")
	}
	if !strings.Contains(string(runOut), "limits: not supported yet") {
		t.Errorf("run output lacks the reason:\n%s", runOut)
	}
}
