package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/shm"
)

// metrics are the proxy's Prometheus series. Label values are bounded:
// listener, route and cluster names come from the configuration, cache is
// a Cache-Status fwd value or "hit", and code is a status class.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	// upstreamRefusals counts what a misbehaving upstream was refused
	// (see upstreamguard.go).
	upstreamRefusals *prometheus.CounterVec
	notStored        *prometheus.CounterVec
	stored           prometheus.Counter
	coalesced        prometheus.Counter
	refreshes        prometheus.Counter
	reloads          prometheus.Counter
	egressRefused    *prometheus.CounterVec // forward destinations refused (egress.go)
	tunnelIdle       prometheus.Counter
	filterAnswers    *prometheus.CounterVec // early answers of route filters (filter.go)
	tls              tlsMetrics             // certificate file reloads (tls.go)
	ejections        *prometheus.CounterVec // outlier ejections, by cluster and endpoint (balance.go)
	healthChecks     *prometheus.CounterVec // active health check results (health.go)
	dnsFailures      *prometheus.CounterVec // dns_refresh resolutions that failed (dns.go)
	res              resilienceMetrics      // breakers, retries, mirrors (resilience_metrics.go)
	series           sync.Map               // seriesKey -> *series
	notStoredC       sync.Map               // reason -> prometheus.Counter
}

// notStoredInc counts a response not stored for reason, looking the
// labelled counter up once per reason rather than hashing its label on
// every uncacheable response.
func (m *metrics) notStoredInc(reason string) {
	c, ok := m.notStoredC.Load(reason)
	if !ok {
		c, _ = m.notStoredC.LoadOrStore(reason, m.notStored.WithLabelValues(reason))
	}
	c.(prometheus.Counter).Inc()
}

func newMetrics(reg prometheus.Registerer, cache *shm.Writer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_requests_total", Help: "Requests handled by the sidecar.",
		}, []string{"listener", "route", "cache", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zerohop_request_duration_seconds", Help: "Time from request to the end of the response.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"listener", "route", "cache"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_upstream_errors_total", Help: "Upstream exchanges that failed (connect, reset, timeout).",
		}, []string{"cluster"}),
		upstreamRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_upstream_refusals_total",
			Help: "Upstream misbehaviour refused: connections closed for unsolicited bytes, bodies aborted after body_idle_timeout, responses failed for too many 1xx.",
		}, []string{"cluster", "reason"}),
		notStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_cache_not_stored_total", Help: "Cacheable-method responses not stored, by reason.",
		}, []string{"reason"}),
		stored:    prometheus.NewCounter(prometheus.CounterOpts{Name: "zerohop_cache_stored_total", Help: "Responses stored in the shared cache."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "zerohop_cache_coalesced_total", Help: "Misses that waited for an in-flight fetch of the same URL."}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{Name: "zerohop_cache_background_refreshes_total", Help: "Background revalidations (stale-while-revalidate)."}),
		reloads:   prometheus.NewCounter(prometheus.CounterOpts{Name: "zerohop_config_reloads_total", Help: "Configuration reloads applied."}),
	}
	m.egressRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_egress_refused_total",
		Help: "Forward-mode requests and CONNECT tunnels refused for their destination, by reason (self, loopback, link_local, metadata).",
	}, []string{"listener", "reason"})
	m.tunnelIdle = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "zerohop_tunnel_idle_closed_total", Help: "CONNECT tunnels closed after forward.tunnel_idle_timeout without traffic.",
	})
	m.filterAnswers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_filter_answers_total", Help: "Requests a route filter answered itself, before the cache, by route, filter and status.",
	}, []string{"route", "filter", "code"})
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_outlier_ejections_total", Help: "Endpoints ejected by outlier detection.",
	}, []string{"cluster", "endpoint"})
	m.healthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_health_checks_total", Help: "Active health checks of endpoints, by result (success, failure).",
	}, []string{"cluster", "endpoint", "result"})
	m.dnsFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_dns_failures_total", Help: "Resolutions of endpoint names (dns_refresh) that failed; the last addresses stay in use.",
	}, []string{"cluster"})
	cs := []prometheus.Collector{m.requests, m.duration, m.upstreamErrors, m.upstreamRefusals, m.notStored, m.stored, m.coalesced, m.refreshes, m.reloads,
		m.egressRefused, m.tunnelIdle, m.filterAnswers, m.ejections, m.healthChecks, m.dnsFailures}
	cs = append(cs, m.tls.init()...)
	m.res = newResilienceMetrics()
	cs = append(cs, m.res.collectors()...)
	if cache != nil {
		cs = append(cs, shmCollector{cache})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type seriesKey struct {
	listener, route, cache string
	class                  int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// observe counts a request. The label lookup (hashing four strings) is
// done once per label set, not per request.
func (m *metrics) observe(listener, route, cache string, code int, d time.Duration) {
	k := seriesKey{listener, route, cache, code / 100}
	s, ok := m.series.Load(k)
	if !ok {
		s, _ = m.series.LoadOrStore(k, &series{
			requests: m.requests.WithLabelValues(listener, route, cache, strconv.Itoa(code/100)+"xx"),
			duration: m.duration.WithLabelValues(listener, route, cache),
		})
	}
	ss := s.(*series)
	ss.requests.Inc()
	ss.duration.Observe(d.Seconds())
}

// shmCollector exports the counters the cache writer keeps in the file
// header, read at scrape time.
type shmCollector struct{ w *shm.Writer }

var shmDescs = map[string]*prometheus.Desc{}

func shmDesc(name, help string) *prometheus.Desc {
	if d, ok := shmDescs[name]; ok {
		return d
	}
	d := prometheus.NewDesc("zerohop_shm_"+name, help, nil, nil)
	shmDescs[name] = d
	return d
}

var shmSeries = []struct {
	name, help string
	counter    bool
	get        func(shm.Stats, shm.ReadStats) uint64
}{
	{"entries", "Live entries in the shared cache.", false, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Entries }},
	{"inserts_total", "Entries written.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Inserts }},
	{"replaces_total", "Inserts that replaced the same key.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Replaces }},
	{"deletes_total", "Entries removed by delete or purge.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Deletes }},
	{"evictions_total", "Entries pushed out of a full bucket pair.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Evictions }},
	{"reclaimed_total", "Entries whose arena region was reused.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Reclaimed }},
	{"bytes_written_total", "Bytes written to the arena.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.BytesWritten }},
	{"rejected_total", "Entries over a configured limit.", true, func(s shm.Stats, _ shm.ReadStats) uint64 { return s.Rejected }},
	{"sidecar_hits_total", "Lookups by the sidecar that hit.", true, func(_ shm.Stats, r shm.ReadStats) uint64 { return r.Hits }},
	{"sidecar_misses_total", "Lookups by the sidecar that missed.", true, func(_ shm.Stats, r shm.ReadStats) uint64 { return r.Misses }},
	{"corrupt_total", "Lookups whose copy failed verification.", true, func(_ shm.Stats, r shm.ReadStats) uint64 { return r.Corrupt }},
}

func init() {
	for _, s := range shmSeries {
		shmDesc(s.name, s.help)
	}
}

func (c shmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range shmSeries {
		ch <- shmDescs[s.name]
	}
}

func (c shmCollector) Collect(ch chan<- prometheus.Metric) {
	st, rs := c.w.Stats(), c.w.ReadStats()
	for _, s := range shmSeries {
		t := prometheus.GaugeValue
		if s.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(shmDescs[s.name], t, float64(s.get(st, rs)))
	}
}
