package invalidate

import "errors"

// Errors returned by this package. Callers test them with errors.Is; the
// returned errors wrap them with the path or the cause.
var (
	// ErrIncomplete means the bytes hold the start of a record but not all
	// of it: either a writer is still appending it or it is a torn tail.
	ErrIncomplete = errors.New("invalidate: incomplete record")
	// ErrCorrupt means the bytes are not a record: a bad magic, an
	// impossible length or a checksum mismatch.
	ErrCorrupt = errors.New("invalidate: corrupt record")
	// ErrVersion means a checksummed record of a format version this build
	// does not know; it is skipped whole.
	ErrVersion = errors.New("invalidate: unsupported record version")
	// ErrMalformed means a record whose checksum is valid but whose fields
	// are inconsistent (an origin longer than the record).
	ErrMalformed = errors.New("invalidate: malformed record")
	// ErrNoRecord means a reader has consumed every complete record for now.
	ErrNoRecord = errors.New("invalidate: no complete record yet")
	// ErrUnknownKind means a record of a kind or mode this build does not
	// know. Consumers count and skip it; it is never applied.
	ErrUnknownKind = errors.New("invalidate: unknown record kind or mode")
	// ErrBadPayload means a payload that does not fit its kind (a key that is
	// not an absolute URL, an empty tag, a payload on an "all" record).
	ErrBadPayload = errors.New("invalidate: bad payload")
	// ErrTooLarge means an origin or payload over the format's limits.
	ErrTooLarge = errors.New("invalidate: record over size limit")
	// ErrChanged means the log file at the path is not the one the caller
	// expected (it was rotated or replaced meanwhile).
	ErrChanged = errors.New("invalidate: log file changed")
	// ErrClosed means the log was closed.
	ErrClosed = errors.New("invalidate: log closed")
	// ErrUnsupported means this platform lacks file locking.
	ErrUnsupported = errors.New("invalidate: unsupported on this platform")
	// ErrGap means a follower found that records it had not read were
	// rotated away: they are lost to it, and it should compensate (purge
	// everything).
	ErrGap = errors.New("invalidate: records lost to rotation")
	// ErrSeqExhausted means the log's last sequence number is MaxSeq: the
	// next record cannot be numbered without wrapping. Only a forged record
	// can bring a log there; the tailer rotates such records away.
	ErrSeqExhausted = errors.New("invalidate: sequence numbers exhausted")
)
