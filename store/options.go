package store

import (
	"log/slog"
	"time"
)

// Options configure a Store. Zero fields take the documented defaults.
type Options struct {
	// MaxDisk bounds the store's disk use in bytes. When the live data
	// (records and indexes, as encoded) passes 3/4 of it, or Pebble's own
	// disk usage passes all of it, the entries with the lowest score (least
	// recently and least often used) are evicted until the live data is
	// under 5/8 of it; the rest is headroom for Pebble's write-ahead log,
	// memtable flushes and compactions. Default 0: unbounded (the sidecar's
	// configuration defaults store.max_disk to 1 GiB).
	MaxDisk int64
	// Queue is the write-behind capacity in pending Puts. A Put beyond it
	// is dropped and counted. Invalidations are never dropped. Default 1024.
	Queue int
	// QueueBytes bounds the memory the pending Puts hold. Default 64 MiB.
	QueueBytes int64
	// CPUShare bounds the writer's share of the process's CPU while the
	// process is saturated (using at least 85% of GOMAXPROCS): past it,
	// Puts are shed (dropped, counted in DroppedBusy) until the writer's
	// share falls back, so that persistence costs the miss path at most
	// about this share of its throughput. An idle process persists
	// everything. Invalidations are never shed. Default 0.01; negative:
	// no bound.
	CPUShare float64
	// BatchSize is the number of queued operations the writer commits to
	// Pebble in one batch at most. Default 256.
	BatchSize int
	// BatchDelay is how long the writer waits for more operations after
	// the first one arrives, to commit fewer, larger batches. Flush does not
	// wait. Default 1ms; negative: no wait.
	BatchDelay time.Duration
	// SyncInterval is how often committed writes are fsynced. Commits are
	// not synced one by one: a process crash (kill -9) loses nothing that
	// was committed, a machine crash loses at most this much. Flush and
	// Close always sync. Default 1s.
	SyncInterval time.Duration
	// SweepInterval is how often expired entries are removed. Default 1m.
	SweepInterval time.Duration
	// UseFlushInterval is how often uses recorded by Get, Touch and
	// promotion are written to the score index. Default 5s.
	UseFlushInterval time.Duration
	// UseWeight is how much recency each doubling of an entry's uses is
	// worth in its score: score = last use (unix ms) + UseWeight ×
	// bit-length(uses). Default 10m.
	UseWeight time.Duration
	// RevalidateGrace keeps an entry that has a validator (ETag or
	// Last-Modified) this long past its last servable moment, so that it
	// can still be revalidated with a conditional request. Default 0.
	RevalidateGrace time.Duration
	// CompressMin is the smallest body that is zstd-compressed. Default
	// 256 bytes; negative: never compress.
	CompressMin int
	// EntropyCoding makes the zstd compression of bodies also
	// entropy-code (Huffman literals): about 20% smaller on text, but half
	// the decompression speed, which is what bounds a warm-start refill.
	// Default false: LZ matching only, still a standard zstd frame.
	EntropyCoding bool
	// MinFree is the free space the store keeps on its volume: Open fails
	// with ErrNoSpace below it, and while running below it Puts are dropped
	// (counted) while invalidations and evictions still apply. It is raised
	// to 4 × MemTableSize if lower, room for Pebble's flushes. Default
	// 64 MiB; negative: no check — then a volume that fills up can crash
	// the process (Pebble v2 panics when it cannot close a write-ahead log).
	MinFree int64
	// CacheSize is Pebble's block cache. Default 32 MiB.
	CacheSize int64
	// MemTableSize is Pebble's memtable size. Default 16 MiB, and at most
	// MaxDisk/16 (at least 256 KiB) when MaxDisk is set.
	MemTableSize int64
	// RefillBudget bounds the bytes Refill writes into the shared-memory
	// file, so that it stops before the ring starts overwriting the
	// freshest entries it wrote first. Default 3/4 of the cache file's
	// size.
	RefillBudget int64
	// CloseTimeout bounds Close's wait for the queue to drain and Pebble
	// to close. Default 10s.
	CloseTimeout time.Duration
	// ResetCorrupt makes Open move a corrupt store directory aside (renamed
	// with a ".corrupt-<unix>" suffix) and start an empty store, instead of
	// returning ErrCorrupt. Default false.
	ResetCorrupt bool
	// Logger receives open, refill, eviction and failure messages. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Queue <= 0 {
		r.Queue = 1024
	}
	if r.QueueBytes <= 0 {
		r.QueueBytes = 64 << 20
	}
	if r.CPUShare == 0 {
		r.CPUShare = 0.01
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 256
	}
	if r.BatchDelay == 0 {
		r.BatchDelay = time.Millisecond
	}
	if r.SyncInterval <= 0 {
		r.SyncInterval = time.Second
	}
	if r.SweepInterval <= 0 {
		r.SweepInterval = time.Minute
	}
	if r.UseFlushInterval <= 0 {
		r.UseFlushInterval = 5 * time.Second
	}
	if r.UseWeight <= 0 {
		r.UseWeight = 10 * time.Minute
	}
	if r.CompressMin == 0 {
		r.CompressMin = 256
	}
	if r.MinFree == 0 {
		r.MinFree = 64 << 20
	}
	if r.CacheSize <= 0 {
		r.CacheSize = 32 << 20
	}
	if r.MemTableSize <= 0 {
		r.MemTableSize = 16 << 20
		if r.MaxDisk > 0 {
			r.MemTableSize = min(r.MemTableSize, max(r.MaxDisk/16, 256<<10))
		}
	}
	if r.MinFree > 0 {
		r.MinFree = max(r.MinFree, 4*r.MemTableSize)
	}
	if r.CloseTimeout <= 0 {
		r.CloseTimeout = 10 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}
