// Package invalidate is zerohop's invalidation log: the one path by which
// every writer (the Go client, the zerohop purge command, the admin
// endpoint, the fan-out bridge) asks the sidecar to purge its cache.
//
// # Log
//
// The log is an append-only file of checksummed records (docs/invalidation.md
// specifies every byte, for writers in other languages). Each [Record] purges
// one URL and its Vary variants ([KindKey]), every URL under a prefix
// ([KindPrefix]), every response with a surrogate key ([KindTag]) or everything
// ([KindAll]), either deleting ([Hard]) or marking stale so that
// stale-while-revalidate serves while one refresh runs ([Soft]).
//
// Any number of processes, in any containers sharing the file, append at once
// through [Log.Append]: under the file's exclusive flock an appender reads what
// was appended since it last looked, numbers its record one past the last
// sequence number and writes it with a single write on an O_APPEND descriptor.
// Sequence numbers are therefore strictly increasing in the file, across all
// writers.
//
// # Reading
//
// A [Reader] iterates records from an offset. Bytes that are not a record
// (garbage, a checksum mismatch) are skipped to the next magic that starts a
// valid record, and counted. An incomplete record at the end is "not yet":
// a writer may be appending it; once a valid record follows it, it was torn
// by a crash and is skipped, and counted. A [Follower] adds rotation and
// replacement of the file at the path; the tailer (package tail) and the
// fan-out bridge (package redisbridge) are built on it.
//
// # Read-your-purge
//
// The sidecar applies records in order ([Applier]: each record decodes once
// into a [Purge] with [ParsePurge], which every cache tier applies through
// the [Purger] interface) and publishes the last applied sequence number in the cache file's header. [WaitApplied] polls it,
// so Append followed by WaitApplied returns once the purge is visible to every
// reader of the cache.
//
// This package imports only the standard library, golang.org/x/sys and the
// shm package, so that apps can append without the sidecar's dependencies.
package invalidate
