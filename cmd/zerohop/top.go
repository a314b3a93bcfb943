package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"
)

// topSample is one reading of the admin endpoint: /stats and /metrics.
type topSample struct {
	at    time.Time
	stats struct {
		Cache struct {
			State          string `json:"state"`
			FileBytes      int64  `json:"file_bytes"`
			Entries        uint64 `json:"entries"`
			ArenaLiveBytes uint64 `json:"arena_live_bytes"`
			Heartbeat      struct {
				AgeSeconds float64 `json:"age_seconds"`
			} `json:"heartbeat"`
		} `json:"cache"`
		App struct {
			Processes int `json:"processes"`
		} `json:"app"`
		Invalidation *struct {
			AppliedSeq uint64 `json:"applied_seq"`
		} `json:"invalidation"`
		Store *struct {
			Entries   int64 `json:"entries"`
			DiskBytes int64 `json:"disk_bytes"`
		} `json:"store"`
	}
	fams map[string]*dto.MetricFamily
}

// topSnapshot is what `zerohop top` shows, and prints with --json. Rates
// are per second over the interval between two readings.
type topSnapshot struct {
	Time            time.Time `json:"time"`
	IntervalSeconds float64   `json:"interval_seconds"`
	// Requests per second by where they were answered.
	Requests struct {
		AppSharedMemory float64 `json:"app_shared_memory"` // the app's client, from the mapping (no hop)
		SidecarCache    float64 `json:"sidecar_cache"`     // the sidecar, from shared memory
		Store           float64 `json:"store"`             // the sidecar, from the store
		Upstream        float64 `json:"upstream"`          // the sidecar, everything else
		Total           float64 `json:"total"`
	} `json:"requests_per_second"`
	HitRatio             float64      `json:"hit_ratio"` // (app shared memory + sidecar cache + store) / total, over the interval
	AppServedBytesPerSec float64      `json:"app_served_bytes_per_second"`
	SidecarWrittenPerSec float64      `json:"cache_written_bytes_per_second"`
	Cache                topCache     `json:"cache"`
	App                  topApp       `json:"app"`
	InvalidationLagBytes float64      `json:"invalidation_lag_bytes"`
	InvalidationSeq      uint64       `json:"invalidation_applied_seq"`
	Routes               []topRoute   `json:"routes"`
	Clusters             []topCluster `json:"clusters"`
	Limits               topLimits    `json:"limits"`
	Store                *topStore    `json:"store,omitempty"`
}

type topCache struct {
	State               string  `json:"state"`
	Entries             uint64  `json:"entries"`
	FileBytes           int64   `json:"file_bytes"`
	ArenaLiveBytes      uint64  `json:"arena_live_bytes"`
	Fill                float64 `json:"fill"` // arena_live_bytes / file_bytes
	InsertsPerSec       float64 `json:"inserts_per_second"`
	EvictionsPerSec     float64 `json:"evictions_per_second"`
	ReclaimedPerSec     float64 `json:"reclaimed_per_second"`
	HeartbeatAgeSeconds float64 `json:"heartbeat_age_seconds"`
}

type topApp struct {
	Processes         int                `json:"processes"`
	BypassesPerSec    map[string]float64 `json:"bypasses_per_second"`
	MissesPerSec      float64            `json:"misses_per_second"`
	WriterStalePerSec float64            `json:"writer_stale_per_second"`
	CorruptPerSec     float64            `json:"corrupt_per_second"`
}

type topRoute struct {
	Route          string  `json:"route"`
	RequestsPerSec float64 `json:"requests_per_second"`
	HitRatio       float64 `json:"hit_ratio"`
	ErrorRatio     float64 `json:"error_ratio"` // 5xx share
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
}

type topCluster struct {
	Cluster        string  `json:"cluster"`
	ErrorsPerSec   float64 `json:"errors_per_second"`
	RefusalsPerSec float64 `json:"refusals_per_second"`
}

type topLimits struct {
	ConnectionsOpen          float64 `json:"connections_open"`
	ConnectionsRefusedPerSec float64 `json:"connections_refused_per_second"`
	EgressRefusedPerSec      float64 `json:"egress_refused_per_second"`
	FilterAnswersPerSec      float64 `json:"filter_answers_per_second"`
}

type topStore struct {
	Entries    int64   `json:"entries"`
	DiskBytes  int64   `json:"disk_bytes"`
	HitsPerSec float64 `json:"hits_per_second"`
}

// topSource reads the admin endpoint.
type topSource struct {
	base  string
	token string
	hc    *http.Client
}

func (s *topSource) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.base+path, nil)
	if err != nil {
		return nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %s", path, resp.Status)
	}
	return b, err
}

func (s *topSource) sample(ctx context.Context) (*topSample, error) {
	sm := &topSample{at: time.Now()}
	b, err := s.get(ctx, "/stats")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &sm.stats); err != nil {
		return nil, fmt.Errorf("/stats: %w", err)
	}
	b, err = s.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if sm.fams, err = p.TextToMetricFamilies(bytesReader(b)); err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	return sm, nil
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sum adds the series of family name whose labels pass keep (nil: all).
func (s *topSample) sum(name string, keep func(map[string]string) bool) float64 {
	var v float64
	for _, m := range s.fams[name].GetMetric() {
		if keep == nil || keep(labelsOf(m)) {
			v += valueOf(m)
		}
	}
	return v
}

// by groups family name's series by one label.
func (s *topSample) by(name, label string, keep func(map[string]string) bool) map[string]float64 {
	out := map[string]float64{}
	for _, m := range s.fams[name].GetMetric() {
		l := labelsOf(m)
		if keep == nil || keep(l) {
			out[l[label]] += valueOf(m)
		}
	}
	return out
}

// buckets returns the duration histogram's cumulative buckets per route.
func (s *topSample) buckets() map[string]map[float64]float64 {
	out := map[string]map[float64]float64{}
	for _, m := range s.fams["zerohop_request_duration_seconds"].GetMetric() {
		r := labelsOf(m)["route"]
		if out[r] == nil {
			out[r] = map[float64]float64{}
		}
		inf := false
		for _, b := range m.GetHistogram().GetBucket() {
			out[r][b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf { // the text format lists +Inf; a parser may leave it to the count
			out[r][math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

// quantile interpolates within the bucket holding q, as PromQL's
// histogram_quantile does; cum maps upper bounds to cumulative counts.
func quantile(q float64, cum map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 || cum[bounds[len(bounds)-1]] <= 0 {
		return 0
	}
	total := cum[bounds[len(bounds)-1]]
	rank := q * total
	lower, prev := 0.0, 0.0
	for _, b := range bounds {
		if cum[b] >= rank {
			if math.IsInf(b, 1) {
				return lower // above the largest bound: report the bound
			}
			if cum[b] == prev {
				return b
			}
			return lower + (b-lower)*(rank-prev)/(cum[b]-prev)
		}
		lower, prev = b, cum[b]
	}
	return lower
}

func isHit(l map[string]string) bool  { return l["cache"] == "hit" }
func notHit(l map[string]string) bool { return l["cache"] != "hit" }
func is5xx(l map[string]string) bool  { return l["code"] == "5xx" }

// topCompute derives the snapshot from two readings.
func topCompute(prev, cur *topSample) topSnapshot {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		dt = 1
	}
	rate := func(name string, keep func(map[string]string) bool) float64 {
		return max(0, cur.sum(name, keep)-prev.sum(name, keep)) / dt
	}
	var s topSnapshot
	s.Time, s.IntervalSeconds = cur.at.UTC(), dt
	rq := &s.Requests
	rq.AppSharedMemory = rate("zerohop_app_hits_total", nil)
	rq.SidecarCache = rate("zerohop_requests_total", isHit)
	rq.Store = rate("zerohop_store_ops_total", func(l map[string]string) bool { return l["op"] == "hits" })
	rq.Upstream = max(0, rate("zerohop_requests_total", notHit)-rq.Store)
	rq.Total = rq.AppSharedMemory + rq.SidecarCache + rq.Store + rq.Upstream
	if rq.Total > 0 {
		s.HitRatio = (rq.AppSharedMemory + rq.SidecarCache + rq.Store) / rq.Total
	}
	s.AppServedBytesPerSec = rate("zerohop_app_served_bytes_total", nil)
	s.SidecarWrittenPerSec = rate("zerohop_shm_bytes_written_total", nil)
	cs := cur.stats.Cache
	s.Cache = topCache{State: cs.State, Entries: cs.Entries, FileBytes: cs.FileBytes, ArenaLiveBytes: cs.ArenaLiveBytes,
		InsertsPerSec: rate("zerohop_shm_inserts_total", nil), EvictionsPerSec: rate("zerohop_shm_evictions_total", nil),
		ReclaimedPerSec: rate("zerohop_shm_reclaimed_total", nil), HeartbeatAgeSeconds: cs.Heartbeat.AgeSeconds}
	if cs.FileBytes > 0 {
		s.Cache.Fill = float64(cs.ArenaLiveBytes) / float64(cs.FileBytes)
	}
	s.App = topApp{Processes: cur.stats.App.Processes, BypassesPerSec: map[string]float64{},
		MissesPerSec: rate("zerohop_app_misses_total", nil), WriterStalePerSec: rate("zerohop_app_writer_stale_total", nil),
		CorruptPerSec: rate("zerohop_app_corrupt_total", nil)}
	pb := prev.by("zerohop_app_bypasses_total", "reason", nil)
	for r, v := range cur.by("zerohop_app_bypasses_total", "reason", nil) {
		s.App.BypassesPerSec[r] = max(0, v-pb[r]) / dt
	}
	s.InvalidationLagBytes = cur.sum("zerohop_invalidation_lag_bytes", nil)
	if iv := cur.stats.Invalidation; iv != nil {
		s.InvalidationSeq = iv.AppliedSeq
	}
	// Routes: rate, hit ratio, 5xx share and latency over the interval.
	pr, cr := prev.by("zerohop_requests_total", "route", nil), cur.by("zerohop_requests_total", "route", nil)
	ph, ch := prev.by("zerohop_requests_total", "route", isHit), cur.by("zerohop_requests_total", "route", isHit)
	pe, ce := prev.by("zerohop_requests_total", "route", is5xx), cur.by("zerohop_requests_total", "route", is5xx)
	pbk, cbk := prev.buckets(), cur.buckets()
	for route, v := range cr {
		n := max(0, v-pr[route])
		row := topRoute{Route: route, RequestsPerSec: n / dt}
		if route == "" {
			row.Route = "(none)"
		}
		if n > 0 {
			row.HitRatio = max(0, ch[route]-ph[route]) / n
			row.ErrorRatio = max(0, ce[route]-pe[route]) / n
		}
		d := map[float64]float64{}
		for b, c := range cbk[route] {
			d[b] = max(0, c-pbk[route][b])
		}
		row.P50Ms, row.P99Ms = 1000*quantile(0.5, d), 1000*quantile(0.99, d)
		s.Routes = append(s.Routes, row)
	}
	sort.Slice(s.Routes, func(i, j int) bool {
		if s.Routes[i].RequestsPerSec != s.Routes[j].RequestsPerSec {
			return s.Routes[i].RequestsPerSec > s.Routes[j].RequestsPerSec
		}
		return s.Routes[i].Route < s.Routes[j].Route
	})
	pce, cce := prev.by("zerohop_upstream_errors_total", "cluster", nil), cur.by("zerohop_upstream_errors_total", "cluster", nil)
	pcr, ccr := prev.by("zerohop_upstream_refusals_total", "cluster", nil), cur.by("zerohop_upstream_refusals_total", "cluster", nil)
	clusters := map[string]bool{}
	for c := range cce {
		clusters[c] = true
	}
	for c := range ccr {
		clusters[c] = true
	}
	for c := range clusters {
		s.Clusters = append(s.Clusters, topCluster{Cluster: c, ErrorsPerSec: max(0, cce[c]-pce[c]) / dt,
			RefusalsPerSec: max(0, ccr[c]-pcr[c]) / dt})
	}
	sort.Slice(s.Clusters, func(i, j int) bool { return s.Clusters[i].Cluster < s.Clusters[j].Cluster })
	s.Limits = topLimits{ConnectionsOpen: cur.sum("zerohop_connections_open", nil),
		ConnectionsRefusedPerSec: rate("zerohop_connections_refused_total", nil),
		EgressRefusedPerSec:      rate("zerohop_egress_refused_total", nil),
		FilterAnswersPerSec:      rate("zerohop_filter_answers_total", nil)}
	if st := cur.stats.Store; st != nil {
		s.Store = &topStore{Entries: st.Entries, DiskBytes: st.DiskBytes, HitsPerSec: rq.Store}
	}
	return s
}

// fmtRate prints a per-second rate compactly.
func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 10 || v == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

func newTopCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of one sidecar and its app: requests and hits by where they were served, cache, routes, limits",
		Description: "Reads the admin endpoint (/stats and /metrics) once a second. Keys: q quits.\n" +
			"--once prints one snapshot as text, --json as JSON (rates over one --interval).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:9901", EnvVars: []string{"ZEROHOP_ADMIN"}, Usage: "the sidecar's admin `ADDR`"},
			&cli.StringFlag{Name: "admin-token", EnvVars: []string{"ZEROHOP_ADMIN_TOKEN"}, Usage: "bearer `TOKEN` of the admin endpoint"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh interval, and the window of --once and --json"},
			&cli.BoolFlag{Name: "once", Usage: "print one snapshot and exit"},
			&cli.BoolFlag{Name: "json", Usage: "print one snapshot as JSON and exit"},
		},
		Action: func(c *cli.Context) error {
			src := &topSource{base: "http://" + c.String("admin"), token: c.String("admin-token"),
				hc: &http.Client{Timeout: 5 * time.Second}}
			iv := c.Duration("interval")
			if iv <= 0 {
				return cli.Exit("top: --interval must be positive", 2)
			}
			if c.Bool("once") || c.Bool("json") {
				snap, err := topOnce(c.Context, src, iv)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, snap)
				}
				_, err = io.WriteString(c.App.Writer, renderTop(snap, c.String("admin"), 100))
				return err
			}
			return runTopTUI(c.Context, src, iv, c.String("admin"))
		},
	}
}

// topOnce takes two readings interval apart.
func topOnce(ctx context.Context, src *topSource, interval time.Duration) (topSnapshot, error) {
	a, err := src.sample(ctx)
	if err != nil {
		return topSnapshot{}, err
	}
	select {
	case <-time.After(interval):
	case <-ctx.Done():
		return topSnapshot{}, ctx.Err()
	}
	b, err := src.sample(ctx)
	if err != nil {
		return topSnapshot{}, err
	}
	return topCompute(a, b), nil
}
