package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/redisbridge"
	"github.com/zerohop/zerohop/invalidate/tail"
	"github.com/zerohop/zerohop/shm/safefile"
)

// invalidation is the sidecar's side of the invalidation log: it tails the
// log, applies records to the cache (and the store), optionally bridges
// them across pods through Redis, and appends the admin endpoint's purges.
type invalidation struct {
	path    string
	applier *invalidate.Applier
	tailer  *tail.Tailer
	bridge  *redisbridge.Bridge
	log     *invalidate.Log // appender for admin purges
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startInvalidation starts tailing cfg's invalidation log. With a store,
// records are applied through the tier, reaching shared memory and the
// store in order.
func (s *Sidecar) startInvalidation(cfg *config.Config, withStore bool) error {
	iv := &invalidation{path: cfg.Invalidation.Log}
	// The directory is shared with the app, which appends purges: setgid
	// and group-writable, so containers running as other users in the
	// pod's fsGroup can write.
	if err := os.MkdirAll(filepath.Dir(iv.path), 0o2775); err != nil {
		return fmt.Errorf("sidecar: invalidation log: %w", err)
	}
	// The umask strips group write from MkdirAll's mode; set it explicitly,
	// through a descriptor: the cache volume is writable by the app, and a
	// symlink planted in place of the directory must not redirect the log,
	// the checkpoint or this chmod elsewhere.
	if err := safefile.ChmodDir(filepath.Dir(iv.path), 0o2775); err != nil {
		if errors.Is(err, safefile.ErrUnsafe) {
			return fmt.Errorf("sidecar: invalidation log: %w", err)
		}
		s.log.Warn("invalidation log: cannot make the directory group-writable", "err", err)
	}
	// Records reach shared memory and the store (if any) in order, through
	// the tier; the record's own sequence number never reaches the store
	// (storePersist records the tailer's position).
	iv.applier = invalidate.NewApplier(s.tier)
	apply := iv.applier.Apply
	if withStore {
		apply = s.storeApply(apply)
	}
	ctx, cancel := context.WithCancel(context.Background())
	iv.cancel = cancel
	var hold func() uint64
	if rc := cfg.Invalidation.Redis; rc != nil {
		redis.SetLogger(redisLogger{s.log})
		br, err := redisbridge.New(redisbridge.Options{
			Path: iv.path,
			Redis: &redis.Options{Addr: rc.Address, Username: rc.Username, Password: rc.Password,
				DB: rc.DB, DialTimeout: rc.DialTimeout},
			Stream: rc.Stream,
			Pod:    podName(),
			Logger: s.log,
		})
		if err != nil {
			cancel()
			return fmt.Errorf("sidecar: redis bridge: %w", err)
		}
		iv.bridge, hold = br, br.Hold
		iv.wg.Add(1)
		go func() {
			defer iv.wg.Done()
			if err := br.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("redis bridge stopped", "err", err)
			}
		}()
	}
	topts := tail.Options{Path: iv.path, Apply: apply, Publish: s.cache.SetInvalidation, Hold: hold, Logger: s.log}
	if withStore {
		// A purge is published (acknowledged) only once the store has it
		// on disk; at start, what the store lost is replayed from the log.
		topts.Persist = s.storePersist
		topts.DurableSeq = s.store.AppliedSeq()
		if s.store.Stats().Entries == 0 {
			topts.DurableSeq = math.MaxUint64 // nothing to resurrect
		}
	}
	tl, err := tail.New(topts)
	if err != nil {
		cancel()
		return fmt.Errorf("sidecar: invalidation tailer: %w", err)
	}
	iv.tailer = tl
	iv.wg.Add(1)
	go func() {
		defer iv.wg.Done()
		if err := tl.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("invalidation tailer stopped", "err", err)
		}
	}()
	// Serve (and refill from the store) only once the log is applied:
	// after a crash, purges the store had not synced are replayed first.
	select {
	case <-tl.Ready():
	case <-time.After(catchUpWait):
		s.log.Warn("invalidation log not applied yet; serving anyway", "waited", catchUpWait)
	}
	lg, err := invalidate.OpenLog(iv.path, &invalidate.LogOptions{Origin: "admin@" + podName(), Applied: tl})
	if err != nil {
		cancel()
		return fmt.Errorf("sidecar: invalidation log: %w", err)
	}
	iv.log = lg
	// Let the pod's group append. Through a descriptor opened without
	// following a symlink: the app may have replaced the log with a link
	// to a file the sidecar can write, whose mode must stay as it is.
	if err := safefile.Chmod(iv.path, 0o664); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("invalidation log: refusing the file at the log path; purges fail until it is a regular file",
			"path", iv.path, "err", err)
	}
	s.inval = iv
	s.reg.MustRegister(invalidationCollector{iv})
	return nil
}

// catchUpWait bounds how long Start waits for the tailer to apply the log
// it found before serving.
const catchUpWait = time.Minute

// stop ends the tailer and the bridge and waits for them.
func (iv *invalidation) stop() {
	iv.cancel()
	iv.wg.Wait()
	iv.log.Close()
}

// maxPurgeTimeout bounds the admin purge's timeout= parameter.
const maxPurgeTimeout = 5 * time.Minute

// handlePurge is POST /purge on the admin endpoint: key=URL, prefix=URL,
// tag=T or all=1, optionally soft=1 (mark stale) and wait=0 (do not wait
// for the record to be applied; default: wait up to timeout=5s). It
// appends to the same log every other writer uses and answers the record's
// sequence number.
func (s *Sidecar) handlePurge(w http.ResponseWriter, r *http.Request) {
	if s.inval == nil {
		http.Error(w, "invalidation is not running", http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mode := invalidate.Hard
	if on(r.Form.Get("soft")) {
		mode = invalidate.Soft
	}
	rec, err := recordFrom(r.Form.Get("key"), r.Form.Get("prefix"), r.Form.Get("tag"), on(r.Form.Get("all")), mode)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	timeout := 5 * time.Second
	if t := r.Form.Get("timeout"); t != "" {
		if timeout, err = time.ParseDuration(t); err != nil {
			http.Error(w, "timeout: "+err.Error(), http.StatusBadRequest)
			return
		}
		// A timeout that has already passed would fail the append itself
		// and read as a server error; one of hours would hold a handler.
		if timeout <= 0 || timeout > maxPurgeTimeout {
			http.Error(w, fmt.Sprintf("timeout: must be between 1ns and %v, got %v", maxPurgeTimeout, timeout), http.StatusBadRequest)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	seq, err := s.inval.log.Append(ctx, rec)
	if err != nil {
		http.Error(w, "append: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.inval.tailer.Kick()
	applied := false
	if r.Form.Get("wait") != "0" {
		applied = invalidate.WaitApplied(ctx, s.inval.tailer, seq) == nil
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Form.Get("wait") != "0" && !applied {
		w.WriteHeader(http.StatusAccepted) // appended, not yet applied
	}
	json.NewEncoder(w).Encode(map[string]any{"seq": seq, "applied": applied})
}

func on(v string) bool { b, _ := strconv.ParseBool(v); return b }

// recordFrom builds and checks the record for exactly one of key, prefix,
// tag or all.
func recordFrom(key, prefix, tag string, all bool, mode invalidate.Mode) (invalidate.Record, error) {
	n := 0
	for _, set := range []bool{key != "", prefix != "", tag != "", all} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalidate.Record{}, errors.New("give exactly one of key=URL, prefix=URL, tag=T or all=1")
	}
	var rec invalidate.Record
	switch {
	case key != "":
		if _, _, _, err := invalidate.SplitURL(key); err != nil {
			return rec, err
		}
		rec = invalidate.KeyRecord(key, mode)
	case prefix != "":
		if _, _, _, err := invalidate.SplitPrefix(prefix); err != nil {
			return rec, err
		}
		rec = invalidate.PrefixRecord(prefix, mode)
	case tag != "":
		rec = invalidate.TagRecord(tag, mode)
	default:
		rec = invalidate.AllRecord(mode)
	}
	return rec, rec.Validate()
}

// podName identifies this sidecar in the records it appends and in the
// Redis stream: $POD_NAME (the downward API), else the host name.
func podName() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return h
}

// redisLogger routes go-redis's own messages (one per failed dial during
// an outage) to debug level.
type redisLogger struct {
	l interface{ Debug(string, ...any) }
}

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug("redis: " + fmt.Sprintf(format, v...))
}

// invalidationCollector exports the tailer's, the applier's and the
// bridge's counters at scrape time.
type invalidationCollector struct{ iv *invalidation }

var (
	invAppliedDesc = prometheus.NewDesc("zerohop_invalidation_applied_total", "Invalidation records applied.", nil, nil)
	invSeqDesc     = prometheus.NewDesc("zerohop_invalidation_applied_seq", "Sequence number of the last applied record.", nil, nil)
	invLagDesc     = prometheus.NewDesc("zerohop_invalidation_lag_bytes", "Bytes of the log not yet applied.", nil, nil)
	invSkipDesc    = prometheus.NewDesc("zerohop_invalidation_skipped_total", "Records skipped: unknown kind, bad payload, garbage, torn.", []string{"reason"}, nil)
	invRemovedDesc = prometheus.NewDesc("zerohop_invalidation_removed_total", "Cache entries removed or marked stale by invalidations.", nil, nil)
	invBridgeDesc  = prometheus.NewDesc("zerohop_invalidation_bridge_total", "Records through the Redis bridge.", []string{"direction"}, nil)
	invBridgeErrs  = prometheus.NewDesc("zerohop_invalidation_bridge_errors_total", "Redis bridge errors.", []string{"op"}, nil)
	invSeqJumps    = prometheus.NewDesc("zerohop_invalidation_seq_jumps_total", "Records whose sequence number was not believed (over the limit or an implausible jump): applied, never published.", nil, nil)
	invBadCkpt     = prometheus.NewDesc("zerohop_invalidation_bad_checkpoints_total", "Checkpoints discarded at start (unreadable or claiming more than the log holds).", nil, nil)
	invReplays     = prometheus.NewDesc("zerohop_invalidation_replays_total", "Starts that replayed the log because the store was behind the checkpoint.", nil, nil)
)

func (c invalidationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{invAppliedDesc, invSeqDesc, invLagDesc, invSkipDesc, invRemovedDesc, invBridgeDesc, invBridgeErrs,
		invSeqJumps, invBadCkpt, invReplays} {
		ch <- d
	}
}

func (c invalidationCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.iv.tailer.Stats()
	a := c.iv.applier.Stats()
	ch <- prometheus.MustNewConstMetric(invAppliedDesc, prometheus.CounterValue, float64(t.Applied))
	ch <- prometheus.MustNewConstMetric(invSeqDesc, prometheus.GaugeValue, float64(t.AppliedSeq))
	ch <- prometheus.MustNewConstMetric(invLagDesc, prometheus.GaugeValue, float64(t.LagBytes))
	ch <- prometheus.MustNewConstMetric(invSkipDesc, prometheus.CounterValue, float64(t.UnknownKinds), "unknown-kind")
	ch <- prometheus.MustNewConstMetric(invSkipDesc, prometheus.CounterValue, float64(t.BadPayloads), "bad-payload")
	ch <- prometheus.MustNewConstMetric(invSkipDesc, prometheus.CounterValue, float64(t.Skipped), "other")
	ch <- prometheus.MustNewConstMetric(invRemovedDesc, prometheus.CounterValue, float64(a.Removed))
	ch <- prometheus.MustNewConstMetric(invSeqJumps, prometheus.CounterValue, float64(t.SeqJumps))
	ch <- prometheus.MustNewConstMetric(invBadCkpt, prometheus.CounterValue, float64(t.BadCheckpoints))
	ch <- prometheus.MustNewConstMetric(invReplays, prometheus.CounterValue, float64(t.Replays))
	if c.iv.bridge != nil {
		b := c.iv.bridge.Stats()
		ch <- prometheus.MustNewConstMetric(invBridgeDesc, prometheus.CounterValue, float64(b.Published), "published")
		ch <- prometheus.MustNewConstMetric(invBridgeDesc, prometheus.CounterValue, float64(b.Received), "received")
		ch <- prometheus.MustNewConstMetric(invBridgeErrs, prometheus.CounterValue, float64(b.PublishErrors), "publish")
		ch <- prometheus.MustNewConstMetric(invBridgeErrs, prometheus.CounterValue, float64(b.ReadErrors), "read")
		ch <- prometheus.MustNewConstMetric(invBridgeErrs, prometheus.CounterValue, float64(b.AppendErrors), "append")
	}
}
