package tail_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Multi-process tests re-run this test binary as a child with roleEnv set.
const roleEnv = "ZEROHOP_TAIL_ROLE"

var roles = map[string]func() int{}

func registerRole(name string, f func() int) { roles[name] = f }

func roleCommand(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		f, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f())
	}
	os.Exit(m.Run())
}
