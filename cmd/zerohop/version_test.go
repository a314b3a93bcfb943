package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionStamps builds the binary plain (no stamp: "dev", commit
// unknown) and with the Makefile's -ldflags. The build-info fallback (the
// toolchain's VCS stamp) is not exercised: this machine builds with
// -buildvcs=false and git worktrees get no stamp.
func TestVersionStamps(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"plain", nil, []string{"zerohop dev (commit unknown, go1.", "cache format 2."}},
		{"ldflags", []string{"-ldflags", "-X main.version=v9.8.7 -X main.commit=0123456789abcdef0123"},
			[]string{"zerohop v9.8.7 (commit 0123456789ab, go1."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "zerohop")
			cmd := exec.Command("go", append(append([]string{"build", "-o", out}, tt.args...), ".")...)
			cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, b)
			}
			got, err := exec.Command(out, "version").CombinedOutput()
			if err != nil {
				t.Fatalf("version: %v %s", err, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("version printed %q; want it to contain %q", got, w)
				}
			}
		})
	}
}
