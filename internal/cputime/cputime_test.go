package cputime

import (
	"runtime"
	"testing"
)

func TestProcessAdvances(t *testing.T) {
	if _, ok := process(); !ok {
		t.Skip("CPU time not measured on " + runtime.GOOS)
	}
	start := Process()
	x := 0
	for i := 0; Process()-start < 5e6 && i < 1e9; i++ { // until 5 ms of CPU (the bound fits a 32-bit int)
		x += i
	}
	if d := Process() - start; d < 5e6 {
		t.Fatalf("CPU time advanced %v after a busy loop; want at least 5ms", d)
	}
	_ = x
}
