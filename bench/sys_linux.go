package bench

import "syscall"

// childAttr has the kernel kill a peer server if the bench process dies
// first, so that no nginx or Redis outlives an interrupted run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
