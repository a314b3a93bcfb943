// Package store is zerohop's persistent tier: a Pebble database on a
// persistent volume behind the shared-memory cache (package shm), so that
// a restarted sidecar comes back warm and a shared-memory miss can still
// be served without going upstream.
//
// # Writing
//
// [Store.Put] copies an item into a versioned, checksummed record and
// queues it; one goroutine compresses bodies (zstd, skipping content that
// is already compressed) and commits batches. Put never blocks: a full
// queue, a volume under [Options.MinFree], or a CPU-saturated process
// (see [Options.CPUShare]) drops the Put and counts it. Expired entries
// are swept, and [Options.MaxDisk] evicts the least recently and least
// often used entries.
//
// # Invalidations
//
// Invalidations ([Store.Purge], applying an invalidate.Purge: the store is
// an invalidate.Purger) are never dropped and apply in order with the Puts
// queued before them; reads honour them as soon as they are made. A tag
// index makes a tag purge cost proportional to the tagged entries.
// [Store.SetAppliedSeq] right after a purge persists the invalidation log's
// position in the same batch ([Store.AppliedSeq]).
//
// # Tiers
//
// [Tier] couples an shm.Writer and a Store: it puts into both, promotes a
// shared-memory miss that the store holds, applies invalidations to both
// in one order, and refills a new cache file ([Store.Refill]) freshest and
// most-used first, without undoing anything the proxy stored or purged
// meanwhile.
//
// docs/store.md describes the on-disk layout, the ordering guarantees and
// the crash semantics.
package store
