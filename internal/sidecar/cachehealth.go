package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/shm/safefile"
)

// registerFileSafety exports how many paths in the shared volume this
// process refused to follow (a symlink or FIFO where its own file should
// be).
func (s *Sidecar) registerFileSafety() {
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "zerohop_unsafe_file_refusals_total",
		Help: "Paths in the shared volume refused instead of followed: a symlink, FIFO or other non-regular file where the sidecar's own file should be.",
	}, func() float64 { return float64(safefile.Refused()) }))
}
