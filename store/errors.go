package store

import "errors"

// Errors returned by Open and the store's methods. Callers test them with
// errors.Is; the returned errors wrap them with the directory and the cause.
var (
	// ErrCorrupt means the Pebble directory (MANIFEST, WAL, tables) or the
	// store's own metadata could not be read.
	ErrCorrupt = errors.New("store: corrupt store directory")
	// ErrForeign means the directory is not a zerohop store: files that are
	// not Pebble's, a Pebble database without the store's marker key, or a
	// marker with a format version this build does not understand.
	ErrForeign = errors.New("store: not a zerohop store")
	// ErrNotWritable means the directory cannot be written (permissions, a
	// read-only mount).
	ErrNotWritable = errors.New("store: directory not writable")
	// ErrNoSpace means the volume is full, or has less free space than
	// Options.MinFree.
	ErrNoSpace = errors.New("store: not enough space on the store volume")
	// ErrLocked means another process has the store open.
	ErrLocked = errors.New("store: store directory locked by another process")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrFailed means a write to Pebble failed and the store stopped
	// writing; it wraps the cause (often ErrNoSpace). The store's trust
	// file is removed, so the next Open starts empty rather than serve
	// entries whose invalidation may be missing.
	ErrFailed = errors.New("store: failed")
	// ErrBusy means a refill is already running.
	ErrBusy = errors.New("store: refill already running")
)
