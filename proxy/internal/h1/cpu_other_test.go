//go:build !unix

package h1

import "time"

// cpuTime is not measured on this platform.
func cpuTime() time.Duration { return 0 }
