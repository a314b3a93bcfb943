package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInjectCommandReports runs `zerohop inject` on files with a mistake
// and with a missing ConfigMap: the error names the file and line, the
// warning goes to stderr while the injected manifests go to stdout.
func TestInjectCommandReports(t *testing.T) {
	dir := t.TempDir()
	d, err := os.ReadFile("../../deploy/kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, d, 0o644)
	os.WriteFile(bad, []byte("kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: app\n      imag: nginx\n"), 0o644)

	cmd := exec.Command(bin, "inject", good)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("inject: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `warning: ConfigMap "zerohop" is not in the input`) {
		t.Errorf("stderr lacks the ConfigMap warning: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "kind: Deployment") || strings.Contains(stdout.String(), "warning") {
		t.Errorf("stdout is not just the manifests:\n%s", stdout.String())
	}

	out, err := exec.Command(bin, "inject", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad.yaml: inject: line 6: document 1 (Pod p): unknown field \"imag\"") {
		t.Errorf("inject bad.yaml: %v\n%s", err, out)
	}
}
