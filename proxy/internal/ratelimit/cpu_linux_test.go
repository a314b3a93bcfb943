package ratelimit

import "syscall"

// processCPU is the process's user and system CPU time (ns), for the
// benchmarks' cpu-ns/op: on a shared machine it leaves out the time the
// process waited for a core.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
