//go:build !linux && !darwin && !freebsd && !windows

package store

import "time"

// freeSpace is unknown here: the disk-full checks rely on write errors alone.
func freeSpace(dir string) (int64, bool) { return 0, false }

// processCPU is unknown here: the CPU governor never sheds writes.
func processCPU() time.Duration { return 0 }
