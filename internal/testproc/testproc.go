// Package testproc runs parts of a test binary in child processes, for
// tests that need real processes (a writer and its readers, a crashed
// tailer): a role registered from an init function runs when the binary
// is re-executed with the role's name in the environment.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Env is the environment variable naming the role a child runs.
const Env = "ZEROHOP_TEST_ROLE"

var roles = map[string]func() int{}

// Register adds a role; f's result is the child's exit code. Call it from
// an init function.
func Register(name string, f func() int) {
	if _, dup := roles[name]; dup {
		panic("testproc: duplicate role " + name)
	}
	roles[name] = f
}

// Command returns a command running role in a child process of the test
// binary, with extra environment variables (KEY=VALUE).
func Command(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), Env+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// Main is TestMain: in a child it runs the role and exits with its result;
// otherwise it runs the tests.
func Main(m *testing.M) {
	if role := os.Getenv(Env); role != "" {
		f, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "testproc: unknown role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f())
	}
	os.Exit(m.Run())
}
