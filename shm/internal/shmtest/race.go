//go:build race

package shmtest

// Race reports whether this binary was built with the race detector. The
// multi-process tests run their children from the same binary, roughly ten
// times slower under -race, and scale their throughput floors by it.
const Race = true
