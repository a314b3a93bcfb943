package sidecar

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/store"
)

// openStore opens the persistent tier when cfg asks for one. If it cannot
// be opened and memory_only_on_error is set, the sidecar keeps serving from
// shared memory alone, loudly: a crash loop would lose the shared-memory
// tier too.
func (s *Sidecar) openStore(cfg *config.Config) (*store.Store, error) {
	if cfg.Store.Path == "" {
		return nil, nil
	}
	st, err := store.Open(cfg.Store.Path, &store.Options{
		MaxDisk: int64(cfg.Store.MaxDisk),
		Queue:   cfg.Store.Queue,
		Logger:  s.log,
	})
	if err != nil {
		if !cfg.Store.MemoryOnlyOnError {
			return nil, fmt.Errorf("sidecar: store: %w", err)
		}
		s.log.Error("persistent store unavailable: running MEMORY-ONLY, restarts will start cold",
			"path", cfg.Store.Path, "err", err)
		return nil, nil
	}
	return st, nil
}

// startRefill refills a new or rebuilt cache file from the store in the
// background, while the proxy serves.
func (s *Sidecar) startRefill(ctx context.Context) {
	if s.store == nil || s.cache.Stats().AdoptGen != 0 {
		return // no store, or the file was adopted warm
	}
	s.refilling.Store(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.refilling.Store(false)
		s.log.Info("warm start: refilling the cache from the store while serving")
		lastTenth := -1
		n, err := s.tier.Refill(ctx, func(done, total int) {
			if total <= 0 {
				return
			}
			if tenth := done * 10 / total; tenth != lastTenth {
				lastTenth = tenth
				s.log.Info("warm start: refill progress", "done", done, "total", total, "percent", tenth*10)
			}
		})
		s.log.Info("warm start: refilled the cache from the store", "entries", n, "err", err)
	}()
}

// refillReady reports whether /readyz may say ready: the configured share
// of a running refill is done.
func (s *Sidecar) refillReady() bool {
	want := s.cfg.Store.ReadyAfterRefill
	return want <= 0 || s.store == nil || !s.refilling.Load() || s.store.RefillProgress().Fraction() >= want
}

// storeApply wraps the applier for a sidecar with a store: once the store
// has failed it distrusts itself (it empties on the next open), so nothing
// purged can come back from it, and a purge it refuses is applied to shared
// memory all the same and not retried.
func (s *Sidecar) storeApply(apply func(invalidate.Record) error) func(invalidate.Record) error {
	return func(rec invalidate.Record) error {
		err := apply(rec)
		if err != nil && !errors.Is(err, invalidate.ErrUnknownKind) && !errors.Is(err, invalidate.ErrBadPayload) &&
			s.store.Err() != nil {
			s.log.Warn("invalidation not persisted: the store has failed", "seq", rec.Seq, "err", err)
			return nil
		}
		return err // retried by the tailer
	}
}

// storePersist makes the invalidations applied so far durable before the
// tailer publishes them: it records seq as the store's AppliedSeq and
// flushes (commits and fsyncs) everything queued. Purges are rare, so this
// is one fsync per batch of records; cached Puts are never synced one by
// one. A failed store distrusts itself (it empties on the next Open), so
// nothing purged can come back from it: that is not an error here.
func (s *Sidecar) storePersist(ctx context.Context, seq uint64) error {
	s.store.SetAppliedSeq(seq)
	err := s.store.Flush(ctx)
	if err != nil && s.store.Err() != nil {
		return nil
	}
	return err
}

// storeCollector exports the store's counters at scrape time.
type storeCollector struct{ s *store.Store }

var (
	storeOpsDesc   = prometheus.NewDesc("zerohop_store_ops_total", "Persistent store operations.", []string{"op"}, nil)
	storeBytesDesc = prometheus.NewDesc("zerohop_store_bytes", "Persistent store sizes.", []string{"what"}, nil)
	storeRefill    = prometheus.NewDesc("zerohop_store_refill_progress", "Share of the warm-start refill done (1 when finished).", nil, nil)
	storeFailed    = prometheus.NewDesc("zerohop_store_failed", "1 if the store has failed and persistence is off.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeOpsDesc, storeBytesDesc, storeRefill, storeFailed} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for op, v := range map[string]uint64{"written": st.Written, "dropped": st.Dropped, "evicted": st.Evicted,
		"expired": st.Expired, "corrupt": st.Corrupt, "hits": st.Hits, "misses": st.Misses, "promoted": st.Promoted} {
		ch <- prometheus.MustNewConstMetric(storeOpsDesc, prometheus.CounterValue, float64(v), op)
	}
	ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(st.DiskBytes), "disk")
	ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(st.LiveBytes), "live")
	ch <- prometheus.MustNewConstMetric(storeRefill, prometheus.GaugeValue, c.s.RefillProgress().Fraction())
	failed := 0.0
	if c.s.Err() != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(storeFailed, prometheus.GaugeValue, failed)
}
