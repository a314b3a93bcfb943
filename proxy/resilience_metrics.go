package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// resilienceMetrics count what the breakers, retries and mirrors
// decided. Labels are bounded: cluster names come from the
// configuration, the others are the constants of breaker.go, retry.go
// and mirror.go.
type resilienceMetrics struct {
	breakerRejections *prometheus.CounterVec // cluster, limit
	retries           *prometheus.CounterVec // cluster, outcome
	mirrors           *prometheus.CounterVec // cluster, outcome
	cache             sync.Map               // [3]string -> prometheus.Counter
}

func newResilienceMetrics() resilienceMetrics {
	return resilienceMetrics{
		breakerRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_breaker_rejections_total",
			Help: "Requests answered 503 at once because a circuit-breaker limit of their cluster was reached, by limit.",
		}, []string{"cluster", "limit"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_retries_total",
			Help: "Retry decisions: retried_<condition> (connect_failure, reset, timeout, status), or why a retriable failure was not retried (budget, overflow, retry_after, body_sent).",
		}, []string{"cluster", "outcome"}),
		mirrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_mirror_requests_total",
			Help: "Shadow copies of requests: sent (answered), failed, dropped (max_concurrent reached), skipped_body (requests with a body are not copied).",
		}, []string{"cluster", "outcome"}),
	}
}

func (m *resilienceMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.breakerRejections, m.retries, m.mirrors}
}

// counter looks a labelled counter up once per label pair.
func (m *resilienceMetrics) counter(v *prometheus.CounterVec, kind, cluster, outcome string) prometheus.Counter {
	k := [3]string{kind, cluster, outcome}
	c, ok := m.cache.Load(k)
	if !ok {
		c, _ = m.cache.LoadOrStore(k, v.WithLabelValues(cluster, outcome))
	}
	return c.(prometheus.Counter)
}

func (m *resilienceMetrics) retryInc(cluster, outcome string) {
	m.counter(m.retries, "r", cluster, outcome).Inc()
}

func (m *resilienceMetrics) mirrorInc(cluster, outcome string) {
	m.counter(m.mirrors, "m", cluster, outcome).Inc()
}
