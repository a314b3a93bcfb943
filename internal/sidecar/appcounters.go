package sidecar

import (
	"context"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/shm/appcounters"
)

// appScanInterval is how often departed apps' counters files are folded
// in and removed between scrapes, so that short-lived processes do not
// pile up against the file bound.
const appScanInterval = 5 * time.Second

// appCounterHelp documents each app counter; the metric is
// zerohop_app_<name>_total, except the bypass reasons.
var appCounterHelp = [appcounters.Count]string{
	appcounters.Hits:          "App requests answered from shared memory by the app's client (no hop to the sidecar).",
	appcounters.NotModified:   "Of the app's shared-memory answers, 304s to its conditional requests.",
	appcounters.Misses:        "App requests eligible for shared memory but not fresh there: sent to the sidecar.",
	appcounters.ServedBytes:   "Body bytes the app's client served from shared memory.",
	appcounters.LookupHits:    "App client lookups in shared memory that hit (every API, each Vary step).",
	appcounters.LookupMisses:  "App client lookups in shared memory that did not hit.",
	appcounters.LookupExpired: "App client lookups that found an entry no longer fresh.",
	appcounters.TornRetries:   "App client bucket re-reads because the writer was mid-update.",
	appcounters.Torn:          "App client lookups that gave up on an unstable bucket.",
	appcounters.Overruns:      "App client copies of an entry reclaimed before or during the copy.",
	appcounters.Corrupt:       "App client copies that failed verification.",
	appcounters.Collisions:    "App client lookups that found the same hash for a different key.",
	appcounters.WriterStale:   "App client lookups refused because the sidecar's heartbeat was stale (sent to the sidecar).",
	appcounters.Faults:        "Memory faults the app client caught (a truncated or vanished cache file).",
	appcounters.Remaps:        "Times the app client mapped a replaced cache file again.",
}

var (
	appBypassDesc = prometheus.NewDesc("zerohop_app_bypasses_total",
		"App requests not eligible for a shared-memory answer, sent to the sidecar, by reason.", []string{"reason"}, nil)
	appProcsDesc = prometheus.NewDesc("zerohop_app_processes",
		"App processes publishing counters now.", nil, nil)
	appDepartedDesc = prometheus.NewDesc("zerohop_app_departed_processes_total",
		"App processes whose last counters were folded into the totals after they exited.", nil, nil)
	appRefusedDesc = prometheus.NewDesc("zerohop_app_counter_files_refused_total",
		"Files in the counters directory ignored, by reason (unsafe, too_large, invalid, too_many, read).", []string{"reason"}, nil)
	appCounterDescs [appcounters.Count]*prometheus.Desc
	appBypassReason = map[int]string{
		appcounters.BypassMethod: "method", appcounters.BypassBody: "body",
		appcounters.BypassConditional: "conditional", appcounters.BypassNoCache: "no_cache",
	}
)

func init() {
	for i, h := range appCounterHelp {
		if h != "" {
			appCounterDescs[i] = prometheus.NewDesc("zerohop_app_"+appcounters.Names[i]+"_total", h, nil, nil)
		}
	}
}

// appCountersDir is where the clients publish: the invalidation log's
// directory, which the app mounts read-write.
func appCountersDir(cfg *config.Config) string { return filepath.Dir(cfg.Invalidation.Log) }

// registerAppCounters exports the app processes' counters on /metrics.
func (s *Sidecar) registerAppCounters(cfg *config.Config) {
	s.apps = appcounters.NewCollector(appCountersDir(cfg), 0)
	s.reg.MustRegister(appCollector{s.apps})
}

// startAppCounters folds departed apps in between scrapes until ctx ends.
func (s *Sidecar) startAppCounters(ctx context.Context) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(appScanInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.apps.Scan()
			case <-ctx.Done():
				return
			}
		}
	}()
}

type appCollector struct{ c *appcounters.Collector }

func (a appCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range appCounterDescs {
		if d != nil {
			ch <- d
		}
	}
	ch <- appBypassDesc
	ch <- appProcsDesc
	ch <- appDepartedDesc
	ch <- appRefusedDesc
}

func (a appCollector) Collect(ch chan<- prometheus.Metric) {
	snap := a.c.Scan()
	for i, d := range appCounterDescs {
		if d != nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(snap.Totals[i]))
		}
	}
	for i, r := range appBypassReason {
		ch <- prometheus.MustNewConstMetric(appBypassDesc, prometheus.CounterValue, float64(snap.Totals[i]), r)
	}
	ch <- prometheus.MustNewConstMetric(appProcsDesc, prometheus.GaugeValue, float64(snap.Live))
	ch <- prometheus.MustNewConstMetric(appDepartedDesc, prometheus.CounterValue, float64(snap.Departed))
	for _, r := range []string{appcounters.RefusedUnsafe, appcounters.RefusedTooLarge, appcounters.RefusedInvalid,
		appcounters.RefusedTooMany, appcounters.RefusedRead} {
		ch <- prometheus.MustNewConstMetric(appRefusedDesc, prometheus.CounterValue, float64(snap.Refused[r]), r)
	}
}
