// Package cputime reads the CPU time this process has used, for
// benchmarks that report CPU per operation beside wall time.
package cputime

import "time"

// Process is the process's user+system CPU time so far, or 0 where it is
// not measured (then every difference is 0 and callers report nothing).
func Process() time.Duration {
	ns, ok := process()
	if !ok {
		return 0
	}
	return time.Duration(ns)
}
