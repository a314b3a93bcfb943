package main

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	// 100 observations: 50 at or under 1ms, 40 more under 10ms, 10 more under 100ms.
	cum := map[float64]float64{0.001: 50, 0.01: 90, 0.1: 100, math.Inf(1): 100}
	for _, tt := range []struct{ q, want float64 }{
		{0.5, 0.001},
		{0.7, 0.001 + 0.009*20/40},
		{0.99, 0.01 + 0.09*9/10},
	} {
		if got := quantile(tt.q, cum); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v; want %v", tt.q, got, tt.want)
		}
	}
	if got := quantile(0.5, map[float64]float64{}); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := quantile(0.99, map[float64]float64{0.1: 1, math.Inf(1): 100}); got != 0.1 {
		t.Errorf("beyond the last bound: %v; want the bound", got)
	}
}
