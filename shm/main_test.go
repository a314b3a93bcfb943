package shm_test

import (
	"os/exec"
	"testing"

	"github.com/zerohop/zerohop/internal/testproc"
)

// Multi-process tests re-run this test binary as a child (internal/testproc).

func registerRole(name string, f func() int) { testproc.Register(name, f) }

func roleCommand(role string, env ...string) *exec.Cmd { return testproc.Command(role, env...) }

func TestMain(m *testing.M) { testproc.Main(m) }
