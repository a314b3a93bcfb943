package shm

import "errors"

// Errors returned by Open, OpenWriter and the writer's methods. Callers test
// them with errors.Is; the returned errors wrap them with the path and cause.
var (
	// ErrBadMagic means the file is not a zerohop cache file.
	ErrBadMagic = errors.New("shm: not a zerohop cache file")
	// ErrVersion means the file's major format version is not one this
	// build understands (a newer writer made it).
	ErrVersion = errors.New("shm: unsupported format version")
	// ErrCorrupt means the header or layout is inconsistent.
	ErrCorrupt = errors.New("shm: corrupt cache file")
	// ErrTruncated means the file is shorter than its header says.
	ErrTruncated = errors.New("shm: truncated cache file")
	// ErrNotReady means no live writer has published the file yet.
	ErrNotReady = errors.New("shm: cache file not ready")
	// ErrLocked means another writer holds the directory's writer lock.
	ErrLocked = errors.New("shm: cache directory locked by another writer")
	// ErrNoSpace means the volume could not hold a file of the configured size.
	ErrNoSpace = errors.New("shm: not enough space on the cache volume")
	// ErrTooLarge means a key, header block or entry is over a configured limit.
	ErrTooLarge = errors.New("shm: entry over configured limit")
	// ErrClosed means the reader or writer was closed.
	ErrClosed = errors.New("shm: closed")
	// ErrUnsupported means this platform lacks a facility the cache needs:
	// off Linux, Open and OpenWriter return it.
	ErrUnsupported = errors.New("shm: unsupported on this platform")
	// ErrOptions means an option is out of range.
	ErrOptions = errors.New("shm: invalid options")
)
