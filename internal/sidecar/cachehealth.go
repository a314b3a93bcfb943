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
	s.reg.MustRegister(cacheHealthCollector{s})
}

// cacheReady reports whether the cache file is intact: a damaged header
// makes /readyz fail until the rebuilt file has verified.
func (s *Sidecar) cacheReady() (bool, string) {
	if s.cache == nil {
		return false, "no cache"
	}
	h := s.cache.Health()
	return h.Healthy, h.LastProblem
}

// cacheHealthCollector exports the cache writer's header checks.
type cacheHealthCollector struct{ s *Sidecar }

var (
	cacheCorruptDesc  = prometheus.NewDesc("zerohop_cache_header_corruptions_total", "Damaged cache file headers noticed by the writer (each rebuilds the file).", nil, nil)
	cacheRebuildDesc  = prometheus.NewDesc("zerohop_cache_rebuilds_total", "Cache files rebuilt after header damage; result ok or error (retried).", []string{"result"}, nil)
	cacheRepairedDesc = prometheus.NewDesc("zerohop_cache_buckets_repaired_total", "Index buckets found with an odd sequence counter left by another writer, cleared and made even.", nil, nil)
)

func (c cacheHealthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheCorruptDesc
	ch <- cacheRebuildDesc
	ch <- cacheRepairedDesc
}

func (c cacheHealthCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.s.cache
	if w == nil {
		return
	}
	h := w.Health()
	ch <- prometheus.MustNewConstMetric(cacheCorruptDesc, prometheus.CounterValue, float64(h.HeaderCorruptions))
	ch <- prometheus.MustNewConstMetric(cacheRebuildDesc, prometheus.CounterValue, float64(h.Rebuilds), "ok")
	ch <- prometheus.MustNewConstMetric(cacheRebuildDesc, prometheus.CounterValue, float64(h.RebuildErrors), "error")
	ch <- prometheus.MustNewConstMetric(cacheRepairedDesc, prometheus.CounterValue, float64(h.BucketsRepaired))
}
