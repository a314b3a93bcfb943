package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionBash loads `zerohop completion bash` into a real bash and
// asks its completion function for commands and flags.
func TestCompletionBash(t *testing.T) {
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, tt := range []struct {
		words string // COMP_WORDS, the last being completed
		want  string
	}{
		{"zerohop pu", "purge"},
		{"zerohop purge --pre", "--prefix"},
		{"zerohop run --cache-s", "--cache-size"},
		{"zerohop completion z", "zsh"},
	} {
		script := `source <(zerohop completion bash)
COMP_WORDS=(` + tt.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1))
_zerohop_complete; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(sh, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("complete %q: %v, got %q; want %q", tt.words, err, out, tt.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for sh, want := range map[string]string{
		"zsh":  "compdef _zerohop zerohop",
		"fish": "complete -c zerohop",
	} {
		out, err := exec.Command(bin, "completion", sh).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("completion %s: %v, output lacks %q:\n%.300s", sh, err, want, out)
		}
	}
	if out, err := exec.Command(bin, "completion", "tcsh").CombinedOutput(); err == nil || !strings.Contains(string(out), "want one of bash, zsh, fish") {
		t.Errorf("completion tcsh: %v %s", err, out)
	}
}
