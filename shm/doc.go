// Package shm is zerohop's shared-memory response cache: a versioned,
// hash-indexed file that one writer (the sidecar) fills and any number of
// processes read without locks and without ever writing to the mapping.
//
// # Layout
//
// A cache file is a 4 KiB header, an index of 128-byte buckets and an arena of
// fixed-size regions written as a log. docs/format.md specifies every byte; the
// constants in layout.go are the same numbers.
//
// # Protocol
//
// The [Writer] appends an immutable, checksummed entry to the arena and then
// publishes its position in a bucket slot under the bucket's sequence counter
// (a seqlock). A [Reader] snapshots the slot under that counter, copies the
// entry once into a buffer the caller owns, re-checks the reclaim horizon and
// verifies position, hash, full key and checksum on the copy. Anything torn,
// reclaimed or corrupt is a miss plus a counter, never a wrong response.
//
// # Caveats
//
// Entries returned by [Reader.Get] alias the caller's buffer and stay valid
// until that buffer is reused. Readers stop serving when the writer's heartbeat
// is older than [ReaderOptions.MaxWriterSilence]: the writer is what applies
// invalidations, so without it a hit could be a purged response.
package shm
