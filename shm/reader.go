package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edsrzf/mmap-go"
)

// FileName is the cache file's name inside the cache directory.
const FileName = "cache.shm"

// LockName is the writer lock file's name inside the cache directory.
const LockName = "cache.lock"

// ReaderOptions configure a Reader. The zero value is usable.
type ReaderOptions struct {
	// MaxWriterSilence is how old the writer's heartbeat may be before the
	// reader stops serving hits (the writer applies invalidations, so a hit
	// from an abandoned file could be a purged response). Default 2s.
	MaxWriterSilence time.Duration
	// RecheckInterval is how often, at most, a reader that is not serving
	// looks at the path for a replaced file. Default 100ms.
	RecheckInterval time.Duration
	// UnmapGrace is how long a replaced mapping stays mapped for lookups
	// still copying from it. Default 5s.
	UnmapGrace time.Duration
	// Offline serves entries whatever the writer's state and heartbeat:
	// for inspecting a file no writer owns (tools, golden tests). Never set
	// it in an app: with no writer, invalidations are not applied.
	Offline bool
}

func (o *ReaderOptions) withDefaults() ReaderOptions {
	var r ReaderOptions
	if o != nil {
		r = *o
	}
	if r.MaxWriterSilence <= 0 {
		r.MaxWriterSilence = 2 * time.Second
	}
	if r.RecheckInterval <= 0 {
		r.RecheckInterval = 100 * time.Millisecond
	}
	if r.UnmapGrace <= 0 {
		r.UnmapGrace = 5 * time.Second
	}
	return r
}

// Reader reads a cache file mapped read-only. It never writes to the
// mapping and takes no locks on the hit path; it is safe for concurrent use.
type Reader struct {
	path string
	opts ReaderOptions

	cur       atomic.Pointer[mapped]
	nextCheck atomic.Int64 // unix ms before which the slow path is skipped
	closed    atomic.Bool
	silenceMs int64      // opts.MaxWriterSilence in ms
	mu        sync.Mutex // serialises remaps
	c         readCounters
}

// mapped is one mapping of one file.
type mapped struct {
	*view
	mm mmap.MMap
	id fileID
}

// Open opens the cache file in dir for reading. It fails if the file is
// missing, not a cache file, of a newer major version, truncated or not yet
// published by a writer, and with ErrUnsupported off Linux.
func Open(dir string, opts *ReaderOptions) (*Reader, error) {
	r := &Reader{path: filepath.Join(dir, FileName), opts: opts.withDefaults()}
	if !shared {
		return nil, fmt.Errorf("shm: open %s: %w: the cache is memory shared on one Linux host", r.path, ErrUnsupported)
	}
	r.silenceMs = r.opts.MaxWriterSilence.Milliseconds()
	m, err := mapReadOnly(r.path)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

func mapReadOnly(path string) (m *mapped, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shm: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: stat %s: %w", path, err)
	}
	if fi.Size() < HeaderSize {
		return nil, fmt.Errorf("shm: %s: %w: %d bytes", path, ErrTruncated, fi.Size())
	}
	mm, err := mmap.Map(f, mmap.RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			mm.Unmap()
		}
	}()
	// The file may be truncated under us between Stat and the header reads.
	if ferr := guard(func() { m, err = newMapped(mm, statID(fi)) }); ferr != nil {
		return nil, fmt.Errorf("shm: %s: %w", path, ferr)
	}
	if err != nil {
		return nil, fmt.Errorf("shm: %s: %w", path, err)
	}
	if s := State(m.state.Load()); s == StateInit {
		return nil, fmt.Errorf("shm: %s: %w", path, ErrNotReady)
	}
	return m, nil
}

func newMapped(mm mmap.MMap, id fileID) (*mapped, error) {
	v, err := newView(mm)
	if err != nil {
		return nil, err
	}
	return &mapped{view: v, mm: mm, id: id}, nil
}

// errFault is a memory fault inside the mapping, caught by guard.
var errFault = errors.New("memory fault reading the cache file (truncated or vanished)")

// guard runs f with faults turned into an error: a truncated file raises
// SIGBUS on access, which must be a miss, never a crash.
func guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			if _, ok := p.(interface{ Addr() uintptr }); ok {
				err = errFault
				return
			}
			panic(p)
		}
	}()
	f()
	return nil
}

// Get looks key up and copies the entry into dst, growing it if it is too
// small (pass a buffer of the largest expected entry for zero allocations).
// It returns a hit only for an entry fresh at nowMs (unix ms) from a live
// writer. The Entry aliases the returned buffer.
func (r *Reader) Get(dst, key []byte, nowMs int64) (e Entry, out []byte, hit bool) {
	out, hit = r.get(&e, dst, key, nowMs, nowMs)
	return e, out, hit
}

// GetStale is Get without the freshness check: stale entries are returned
// too, for callers that apply their own policy (stale-if-error, say).
func (r *Reader) GetStale(dst, key []byte, nowMs int64) (e Entry, out []byte, hit bool) {
	out, hit = r.get(&e, dst, key, 0, nowMs)
	return e, out, hit
}

// GetInto is Get filling *e instead of returning an Entry, which saves
// copying a 250-byte struct on a hit path of a couple of hundred
// nanoseconds. On a miss *e is the zero Entry.
func (r *Reader) GetInto(e *Entry, dst, key []byte, nowMs int64) ([]byte, bool) {
	out, hit := r.get(e, dst, key, nowMs, nowMs)
	if !hit {
		*e = Entry{}
	}
	return out, hit
}

// get fills *e on a hit; on a miss *e is left as it was or zeroed.
func (r *Reader) get(e *Entry, dst, key []byte, freshAt, nowMs int64) ([]byte, bool) {
	m := r.cur.Load()
	if m == nil {
		r.c.misses.Add(1)
		r.maybeRemap(nowMs)
		return dst, false
	}
	out, o := r.guardedLookup(m, e, dst, key, freshAt, nowMs)
	switch o {
	case outHit:
		r.c.hits.Add(1)
		return out, true
	case outFault:
		r.nextCheck.Store(0)
		fallthrough
	case outWriterStale:
		r.c.count(o)
		r.maybeRemap(nowMs)
		return dst, false
	}
	r.c.count(o)
	return out, false
}

// guardedLookup is the health check and the lookup under one fault guard
// (guard without its closure: this is the hit path). A fault zeroes *e.
func (r *Reader) guardedLookup(m *mapped, e *Entry, dst, key []byte, freshAt, nowMs int64) (out []byte, o outcome) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			if _, ok := p.(interface{ Addr() uintptr }); !ok {
				panic(p)
			}
			*e = Entry{}
			out, o = dst, outFault
		}
	}()
	if !r.live(m, nowMs) {
		return dst, outWriterStale
	}
	return m.lookup(e, dst, key, freshAt, &r.c)
}

// live reports whether m has a live writer with a recent heartbeat (or the
// reader is offline). It reads the mapping: call it under guard.
func (r *Reader) live(m *mapped, nowMs int64) bool {
	st := State(m.state.Load())
	return r.opts.Offline && st != StateAbandoned ||
		st == StateLive && nowMs-int64(m.heartbeat.Load()) <= r.silenceMs
}

// serving reports whether m has a live writer with a recent heartbeat; err
// is set when reading the header faulted.
func (r *Reader) serving(m *mapped, nowMs int64) (ok bool, err error) {
	err = guard(func() { ok = r.live(m, nowMs) })
	return ok, err
}

// maybeRemap, at most once per RecheckInterval, maps the file at the path
// again if it is a different file (a new writer replaced it) or if the
// current mapping faulted.
func (r *Reader) maybeRemap(nowMs int64) {
	if r.closed.Load() || nowMs < r.nextCheck.Load() || !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	r.nextCheck.Store(nowMs + r.opts.RecheckInterval.Milliseconds())
	cur := r.cur.Load()
	fi, err := os.Stat(r.path)
	if err != nil {
		return // vanished: keep missing until it comes back
	}
	if cur != nil && statID(fi) == cur.id && !r.faulted(cur) {
		return
	}
	m, err := mapReadOnly(r.path)
	if err != nil {
		return
	}
	r.cur.Store(m)
	r.c.remaps.Add(1)
	if cur != nil {
		// Lookups that loaded the old pointer may still be copying; a late
		// one faults into a counted miss at worst.
		time.AfterFunc(r.opts.UnmapGrace, func() { cur.mm.Unmap() })
	}
}

// faulted reports whether touching m's header faults (file truncated).
func (r *Reader) faulted(m *mapped) bool {
	return guard(func() { _ = m.state.Load(); _ = m.data[len(m.data)-1] }) != nil
}

// Stats returns this process's lookup statistics.
func (r *Reader) Stats() ReadStats { return r.c.snapshot() }

// WriterStats returns the counters the writer keeps in the file header.
func (r *Reader) WriterStats() (s Stats) {
	if m := r.cur.Load(); m != nil {
		guard(func() { s = m.writerStats() })
	}
	return s
}

// InvalidationSeq is the sequence number of the last invalidation record the
// writer has applied, for read-your-purge waits.
func (r *Reader) InvalidationSeq() (seq uint64) {
	if m := r.cur.Load(); m != nil {
		guard(func() { seq = m.invalSeq.Load() })
	}
	return seq
}

// Healthy reports whether the reader is serving hits at nowMs: the file is
// live and the writer's heartbeat is recent.
func (r *Reader) Healthy(nowMs int64) bool {
	m := r.cur.Load()
	if m == nil {
		return false
	}
	ok, _ := r.serving(m, nowMs)
	return ok
}

// Close unmaps the file. Lookups after Close miss.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Swap(true) {
		return nil
	}
	m := r.cur.Swap(nil)
	if m != nil {
		return m.mm.Unmap()
	}
	return nil
}
