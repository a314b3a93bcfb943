package sidecar

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/shm/appcounters"
)

// StatsVersion is the version of the /stats document. Fields are only
// added within a version; a rename or a change of unit bumps it.
const StatsVersion = 1

// Stats is the /stats document (docs/stats.md): a point-in-time snapshot
// for scripts and `zerohop top`. Names carry their unit (_bytes,
// _seconds); counters since the cache file was created end in _total;
// times are RFC 3339 in UTC. /metrics has the same figures for
// Prometheus, with rates and labels.
type Stats struct {
	Version      int           `json:"version"`
	Time         time.Time     `json:"time"`
	Cache        CacheStats    `json:"cache"`
	SidecarReads ReadStats     `json:"sidecar_reads"`
	App          AppStats      `json:"app"`
	Invalidation *InvalStats   `json:"invalidation,omitempty"`
	Store        *StoreSummary `json:"store,omitempty"`
}

// CacheStats describes the shared cache file, as its header says.
type CacheStats struct {
	Dir       string `json:"dir"`
	FileBytes int64  `json:"file_bytes"` // the configured file size
	State     string `json:"state"`      // init, live, clean, abandoned
	Heartbeat struct {
		Time       time.Time `json:"time"`        // the writer's last heartbeat
		AgeSeconds float64   `json:"age_seconds"` // how long ago, when this snapshot was taken
	} `json:"heartbeat"`
	AdoptGeneration uint32 `json:"adopt_generation"` // writers that adopted the file after its creator
	Entries         uint64 `json:"entries"`          // live index slots
	// ArenaLiveBytes is the span of the arena between the reclaim horizon
	// and the write position: what entries (live or dead, not yet
	// reclaimed) occupy.
	ArenaLiveBytes         uint64 `json:"arena_live_bytes"`
	InsertsTotal           uint64 `json:"inserts_total"`
	ReplacesTotal          uint64 `json:"replaces_total"`
	DeletesTotal           uint64 `json:"deletes_total"`
	EvictionsTotal         uint64 `json:"evictions_total"`
	ReclaimedTotal         uint64 `json:"reclaimed_total"`
	RegionsReclaimedTotal  uint64 `json:"regions_reclaimed_total"`
	PurgesTotal            uint64 `json:"purges_total"`
	WrittenBytesTotal      uint64 `json:"written_bytes_total"`
	RejectedTotal          uint64 `json:"rejected_total"`
	InvalidationSeqApplied uint64 `json:"invalidation_seq_applied"` // last log record applied to the file
}

// ReadStats counts the sidecar's own lookups in the shared file (the app's
// are its client's, not these), since the sidecar started.
type ReadStats struct {
	HitsTotal        uint64 `json:"hits_total"`
	MissesTotal      uint64 `json:"misses_total"`
	ExpiredTotal     uint64 `json:"expired_total"`
	TornRetriesTotal uint64 `json:"torn_retries_total"`
	TornTotal        uint64 `json:"torn_total"`
	OverrunsTotal    uint64 `json:"overruns_total"`
	CorruptTotal     uint64 `json:"corrupt_total"`
	CollisionsTotal  uint64 `json:"collisions_total"`
	WriterStaleTotal uint64 `json:"writer_stale_total"`
	FaultsTotal      uint64 `json:"faults_total"`
	RemapsTotal      uint64 `json:"remaps_total"`
}

// AppStats are the counters the app processes' clients publish
// (docs/format.md, "App counters"): live processes plus those departed.
type AppStats struct {
	Processes              int               `json:"processes"`
	DepartedProcessesTotal uint64            `json:"departed_processes_total"`
	Counters               map[string]uint64 `json:"counters"` // "<name>_total", as in appcounters.Names
	RefusedFilesTotal      map[string]uint64 `json:"refused_files_total"`
}

// InvalStats is the invalidation log as the sidecar's tailer follows it.
type InvalStats struct {
	Log          string `json:"log"`
	AppliedSeq   uint64 `json:"applied_seq"` // last record applied (shared memory and store)
	AppliedTotal uint64 `json:"applied_total"`
	SkippedTotal uint64 `json:"skipped_total"` // unknown kinds, bad payloads, skipped
}

// StoreSummary is the Pebble store, when one is configured.
type StoreSummary struct {
	Path          string `json:"path"`
	Entries       int64  `json:"entries"`
	LiveBytes     int64  `json:"live_bytes"`
	DiskBytes     int64  `json:"disk_bytes"`
	QueuedPuts    int    `json:"queued_puts"`
	WrittenTotal  uint64 `json:"written_total"`
	DroppedTotal  uint64 `json:"dropped_total"` // queue full, no space, or shed
	HitsTotal     uint64 `json:"hits_total"`
	MissesTotal   uint64 `json:"misses_total"`
	PromotedTotal uint64 `json:"promoted_total"`
	EvictedTotal  uint64 `json:"evicted_total"`
	ExpiredTotal  uint64 `json:"expired_total"`
	CorruptTotal  uint64 `json:"corrupt_total"`
	LowSpace      bool   `json:"low_space"`
	Failed        bool   `json:"failed"`
	AppliedSeq    uint64 `json:"applied_seq"` // last invalidation committed to the store
	RefillRunning bool   `json:"refill_running"`
}

// snapshotStats builds the /stats document.
func (s *Sidecar) snapshotStats(now time.Time) Stats {
	c, r := s.cache.Stats(), s.cache.ReadStats()
	st := Stats{Version: StatsVersion, Time: now.UTC()}
	cs := &st.Cache
	cs.Dir = s.cache.Dir()
	s.mu.Lock()
	cs.FileBytes = int64(s.cfg.Cache.Size)
	s.mu.Unlock()
	cs.State = c.State.String()
	if c.HeartbeatMs > 0 {
		hb := time.UnixMilli(int64(c.HeartbeatMs)).UTC()
		cs.Heartbeat.Time = hb
		cs.Heartbeat.AgeSeconds = max(0, now.Sub(hb).Seconds())
	}
	cs.AdoptGeneration = c.AdoptGen
	cs.Entries = c.Entries
	if c.Head >= c.Tail {
		cs.ArenaLiveBytes = c.Head - c.Tail
	}
	cs.InsertsTotal, cs.ReplacesTotal, cs.DeletesTotal = c.Inserts, c.Replaces, c.Deletes
	cs.EvictionsTotal, cs.ReclaimedTotal, cs.RegionsReclaimedTotal = c.Evictions, c.Reclaimed, c.RegionsReclaimed
	cs.PurgesTotal, cs.WrittenBytesTotal, cs.RejectedTotal = c.Purges, c.BytesWritten, c.Rejected
	cs.InvalidationSeqApplied = c.InvalSeq
	st.SidecarReads = readStats(r)
	if s.apps != nil {
		a := s.apps.Scan()
		st.App = AppStats{Processes: a.Live, DepartedProcessesTotal: a.Departed, Counters: map[string]uint64{},
			RefusedFilesTotal: a.Refused}
		for i, n := range appcounters.Names {
			st.App.Counters[n+"_total"] = a.Totals[i]
		}
	}
	if iv := s.inval; iv != nil && iv.tailer != nil {
		t := iv.tailer.Stats()
		st.Invalidation = &InvalStats{Log: iv.path, AppliedSeq: t.AppliedSeq, AppliedTotal: t.Applied,
			SkippedTotal: t.UnknownKinds + t.BadPayloads + t.Skipped}
	}
	if s.store != nil {
		x := s.store.Stats()
		st.Store = &StoreSummary{Path: s.cfg.Store.Path, Entries: x.Entries, LiveBytes: x.LiveBytes, DiskBytes: x.DiskBytes,
			QueuedPuts: x.Queued, WrittenTotal: x.Written, DroppedTotal: x.Dropped + x.DroppedNoSpace + x.DroppedBusy,
			HitsTotal: x.Hits, MissesTotal: x.Misses, PromotedTotal: x.Promoted, EvictedTotal: x.Evicted,
			ExpiredTotal: x.Expired, CorruptTotal: x.Corrupt, LowSpace: x.LowSpace, Failed: x.Failed,
			AppliedSeq: x.AppliedSeq, RefillRunning: s.refilling.Load()}
	}
	return st
}

func readStats(r shm.ReadStats) ReadStats {
	return ReadStats{HitsTotal: r.Hits, MissesTotal: r.Misses, ExpiredTotal: r.Expired,
		TornRetriesTotal: r.TornRetries, TornTotal: r.Torn, OverrunsTotal: r.Overruns, CorruptTotal: r.Corrupt,
		CollisionsTotal: r.Collisions, WriterStaleTotal: r.WriterStale, FaultsTotal: r.Faults, RemapsTotal: r.Remaps}
}

// handleStats serves the /stats document.
func (s *Sidecar) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s.snapshotStats(time.Now()))
}
