package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/shm/safefile"
)

// TrustFile is the file whose presence says the store's contents can be
// trusted. It is created with a new store and removed when a write to
// Pebble fails (the store may then lack an invalidation that the shared
// memory tier applied); Open empties a store without it.
const TrustFile = "zerohop-store.ok"

// Store is the persistent tier. Its methods are safe for concurrent use.
type Store struct {
	dir      string
	opts     Options
	log      *slog.Logger
	db       *pebble.DB
	dec      *zstd.Decoder
	graceMs  int64
	weightMs int64

	// The write-behind queue: Puts, invalidations and flush markers in
	// the order they were made. One goroutine applies it to Pebble.
	qmu    sync.Mutex
	queue  []op
	qPuts  int
	qBytes int64
	qInval int
	notify chan struct{}
	urgent chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	// gate orders the shared-memory tier against the store: invalidations
	// (exclusive) apply to shm and enter the queue together; Tier.Put
	// (shared) puts into shm and enqueues together; promotion and refill
	// (exclusive) re-check invalidations and newer entries before putting
	// into shm. See docs/store.md, "Ordering".
	gate    sync.RWMutex
	invGen  uint64       // bumped by every invalidation enqueued
	nextInv uint64       // id of the next invalidation
	pend    []pendingInv // queued, not yet committed to Pebble
	pendF   *filter      // pend as a filter
	journal *filter      // invalidations since the running refill's snapshot
	// refillEmpty: the refill's target was empty at its start; refillPuts:
	// hotPuts then. Both guarded by the gate.
	refillEmpty bool
	refillPuts  uint64
	refillR     atomic.Bool    // a refill is running
	hotPuts     atomic.Uint64  // puts into shared memory through the Tier or promotion
	readers     sync.WaitGroup // refills, which hold iterators; Close waits

	umu  sync.Mutex
	uses map[string]use

	failed       atomic.Bool
	corruptFiles sync.Map // paths of corrupt tables already logged
	keys         keySet   // hashes of the keys held: cheap negative lookups
	failMu       sync.Mutex
	failErr      error
	failCh       chan struct{} // closed by the first failure
	lowSpace     atomic.Bool
	shedding     atomic.Bool   // the governor sheds Puts (CPUShare)
	keep         atomic.Uint64 // the share of Puts kept while shedding, of keepOne
	putSeq       atomic.Uint64
	busyNs       atomic.Int64 // time the writer spent applying operations

	entries    atomic.Int64
	liveBytes  atomic.Int64
	diskBytes  atomic.Int64
	appliedSeq atomic.Uint64

	c  counters
	rf refillCounters

	testNoSync bool // tests on a slow disk: Flush commits without fsync
}

type pendingInv struct {
	id  uint64
	inv inval
}

type use struct {
	n    uint32
	last int64
}

// maxUses bounds the in-memory use table between flushes.
const maxUses = 1 << 16

type counters struct {
	enqueued, dropped, droppedNoSpace, rejected atomic.Uint64
	written, commits, writeErrors               atomic.Uint64
	invalidations, deleted, softened            atomic.Uint64
	evicted, expired, corrupt                   atomic.Uint64
	hits, misses, promoted                      atomic.Uint64
	compressed, raw                             atomic.Uint64
	bodyIn, bodyStored                          atomic.Uint64
	syncs                                       atomic.Uint64
	visited                                     atomic.Uint64
	stalls                                      atomic.Uint64
	droppedBusy                                 atomic.Uint64
}

// Stats are the store's counters, for metrics.
type Stats struct {
	Queued              int    // Puts waiting to be written
	QueuedBytes         int64  // memory they hold
	QueuedInvalidations int    // invalidations waiting (never dropped)
	Enqueued            uint64 // Puts accepted into the queue
	Dropped             uint64 // Puts dropped: queue full
	DroppedNoSpace      uint64 // Puts dropped: volume under MinFree, or the store failed
	DroppedBusy         uint64 // Puts shed: the process is CPU-bound and the writer used its CPUShare
	Shedding            bool   // Puts are being shed now
	Rejected            uint64 // Puts over the record's limits
	Written             uint64 // Puts committed to Pebble
	Commits             uint64 // Pebble batches committed
	Syncs               uint64 // WAL fsyncs
	WriteErrors         uint64 // failed commits (the store then fails)
	WriteStalls         uint64 // Pebble write stalls (flushes behind)
	Invalidations       uint64 // invalidations applied to Pebble
	Deleted             uint64 // entries removed by invalidations
	Visited             uint64 // entries invalidations examined (their cost)
	Softened            uint64 // entries marked stale by soft invalidations
	Evicted             uint64 // entries removed by the disk bound
	Expired             uint64 // entries removed past their deadline
	Corrupt             uint64 // records that failed verification (removed)
	Hits                uint64 // Get and promotion hits
	Misses              uint64 // Get and promotion misses
	Promoted            uint64 // entries promoted into shared memory
	CompressedBodies    uint64 // bodies written zstd-compressed
	RawBodies           uint64 // bodies written as they are
	BodyBytesIn         uint64 // body bytes of the Puts written
	BodyBytesStored     uint64 // the same bodies as stored
	Entries             int64  // entries in the store
	LiveBytes           int64  // their encoded size (records and indexes)
	DiskBytes           int64  // Pebble's disk use, as of the last check
	AppliedSeq          uint64 // last invalidation-log sequence committed
	LowSpace            bool   // the volume is under MinFree
	Failed              bool   // a write failed; the store no longer writes
	Refill              RefillStats
}

// Open opens (or creates) the store in dir. It fails with ErrForeign,
// ErrCorrupt, ErrNotWritable, ErrNoSpace or ErrLocked (wrapped, with the
// cause) rather than touch a directory it cannot trust.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if dir == "" {
		return nil, errors.New("store: empty directory path")
	}
	s, err := open(dir, o)
	if err != nil && errors.Is(err, ErrCorrupt) && o.ResetCorrupt {
		aside := fmt.Sprintf("%s.corrupt-%d", filepath.Clean(dir), o.Now().Unix())
		o.Logger.Error("zerohop store: corrupt, moving it aside and starting empty", "dir", dir, "moved_to", aside, "err", err)
		if rerr := os.Rename(dir, aside); rerr != nil {
			return nil, fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
		}
		s, err = open(dir, o)
	}
	return s, err
}

func open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, classify(dir, err, false)
	}
	existing, err := inspectDir(dir)
	if err != nil {
		return nil, err
	}
	if err := probeWritable(dir); err != nil {
		return nil, classify(dir, err, existing)
	}
	if o.MinFree > 0 {
		if free, ok := freeSpace(dir); ok && free < o.MinFree {
			return nil, fmt.Errorf("%w: %s: %d bytes free, MinFree is %d", ErrNoSpace, dir, free, o.MinFree)
		}
	}
	s := &Store{
		dir: dir, opts: o, log: o.Logger,
		graceMs: o.RevalidateGrace.Milliseconds(), weightMs: o.UseWeight.Milliseconds(),
		notify: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		uses: map[string]use{}, pendF: &filter{}, failCh: make(chan struct{}),
	}
	s.keep.Store(keepOne)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBody+(1<<20)))
	if err != nil {
		return nil, fmt.Errorf("store: zstd: %w", err)
	}
	s.dec = dec
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:              cache,
		MemTableSize:       uint64(o.MemTableSize),
		FormatMajorVersion: pebble.FormatNewest,
		ErrorIfNotExists:   existing,
		Logger:             pebbleLogger{s},
		EventListener:      s.events(),
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].BlockSize = 16 << 10
		// Bodies are zstd-compressed already (or incompressible): block
		// compression would only cost CPU on every read and write.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	if existing {
		// Look before writing anything: a foreign Pebble database must be
		// left as it was found.
		ro := *po
		ro.ReadOnly = true
		db, err := pebble.Open(dir, &ro)
		if err != nil {
			dec.Close()
			return nil, classify(dir, err, existing)
		}
		_, err = checkMarker(db, dir)
		db.Close()
		if err != nil {
			dec.Close()
			return nil, err
		}
	}
	db, err := s.openPebble(po)
	if err != nil {
		dec.Close()
		return nil, classify(dir, err, existing)
	}
	s.db = db
	if err := s.load(existing); err != nil {
		db.Close()
		dec.Close()
		return nil, err
	}
	if m := db.Metrics(); m != nil {
		s.diskBytes.Store(int64(m.DiskSpaceUsage()))
	}
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		if err := s.keys.build(db, s.stop); err != nil {
			s.log.Warn("zerohop store: building the key set failed; every miss reads Pebble", "err", err)
		}
	}()
	go s.run()
	s.log.Info("zerohop store: opened", "dir", dir, "entries", s.entries.Load(),
		"live_bytes", s.liveBytes.Load(), "applied_seq", s.appliedSeq.Load(), "new", !existing)
	return s, nil
}

// openTimeout bounds pebble.Open, which replays the write-ahead log and
// waits for the memtable it fills to be flushed: on a full volume that
// flush fails and is retried for ever.
const openTimeout = time.Minute

// openPebble runs pebble.Open, giving up if the store fails meanwhile (a
// flush hit a full volume) or it takes longer than openTimeout. A Pebble
// left opening is closed if it ever finishes.
func (s *Store) openPebble(po *pebble.Options) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
	}
	ch := make(chan result, 1)
	go func() {
		db, err := pebble.Open(s.dir, po)
		ch <- result{db, err}
	}()
	t := time.NewTimer(openTimeout)
	defer t.Stop()
	abandon := func() {
		go func() {
			if r := <-ch; r.db != nil {
				r.db.Close()
			}
		}()
	}
	select {
	case r := <-ch:
		return r.db, r.err
	case <-s.failCh:
		abandon()
		return nil, s.Err()
	case <-t.C:
		abandon()
		return nil, fmt.Errorf("pebble did not open within %v (a full volume?)", openTimeout)
	}
}

// inspectDir tells an empty directory from a Pebble one, and refuses one
// holding anything else.
func inspectDir(dir string) (existing bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, classify(dir, err, false)
	}
	var foreign []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == TrustFile || n == "LOCK" || n == "lost+found" || strings.HasPrefix(n, ".zerohop-probe"):
		case strings.HasPrefix(n, "MANIFEST-"), strings.HasPrefix(n, "marker."), n == "CURRENT":
			existing = true
		case strings.HasPrefix(n, "OPTIONS-"), strings.HasSuffix(n, ".sst"), strings.HasSuffix(n, ".log"),
			strings.HasSuffix(n, ".blob"), strings.HasSuffix(n, ".dbtmp"), n == "archive":
		default:
			foreign = append(foreign, n)
		}
	}
	if len(foreign) > 0 {
		if len(foreign) > 5 {
			foreign = append(foreign[:5], "...")
		}
		return false, fmt.Errorf("%w: %s holds files that are not a Pebble store's: %s", ErrForeign, dir, strings.Join(foreign, ", "))
	}
	if !existing {
		for _, e := range ents {
			if n := e.Name(); n != TrustFile && n != "LOCK" && n != "lost+found" && !strings.HasPrefix(n, ".zerohop-probe") {
				// Tables or logs without a MANIFEST: a damaged store.
				return false, fmt.Errorf("%w: %s has Pebble files but no MANIFEST", ErrCorrupt, dir)
			}
		}
	}
	return existing, nil
}

func probeWritable(dir string) error {
	p := filepath.Join(dir, fmt.Sprintf(".zerohop-probe-%d", os.Getpid()))
	os.Remove(p)
	f, err := safefile.Create(p, 0o600) // never through a planted symlink
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte{1})
	cerr := f.Close()
	os.Remove(p)
	return errors.Join(werr, cerr)
}

// classify maps an error from the file system or Pebble to a sentinel.
func classify(dir string, err error, existing bool) error {
	var sentinel error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		sentinel = ErrNoSpace
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		sentinel = ErrNotWritable
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK),
		strings.Contains(err.Error(), "resource temporarily unavailable"), strings.Contains(err.Error(), "lock held"):
		sentinel = ErrLocked
	case errors.Is(err, ErrForeign), errors.Is(err, ErrCorrupt), errors.Is(err, ErrNoSpace), errors.Is(err, ErrNotWritable):
		return err
	case pebble.IsCorruptionError(err), existing:
		sentinel = ErrCorrupt
	default:
		return fmt.Errorf("store: %s: %w", dir, err)
	}
	return fmt.Errorf("%w: %s: %v", sentinel, dir, err)
}

// load checks the marker key, the trust file and the counters.
func (s *Store) load(existing bool) error {
	found, err := checkMarker(s.db, s.dir)
	if err != nil {
		return err
	}
	if !found {
		return s.initialise()
	}
	if fi, err := os.Lstat(filepath.Join(s.dir, TrustFile)); err != nil || !fi.Mode().IsRegular() {
		s.log.Warn("zerohop store: no trust file (a write failed before the last stop); discarding its entries", "dir", s.dir)
		return s.initialise()
	}
	if v, closer, err := s.db.Get(keySeq); err == nil {
		if len(v) == 8 {
			s.appliedSeq.Store(le.Uint64(v))
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return classify(s.dir, err, true)
	}
	if v, closer, err := s.db.Get(keyCounters); err == nil {
		if len(v) == 16 {
			s.entries.Store(int64(le.Uint64(v)))
			s.liveBytes.Store(int64(le.Uint64(v[8:])))
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return classify(s.dir, err, true)
	}
	return nil
}

// checkMarker reports whether db has the store's marker key; an error if
// it has a wrong one, or none but other data (ErrForeign).
func checkMarker(db *pebble.DB, dir string) (found bool, err error) {
	v, closer, err := db.Get(keyFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		empty, err := isEmpty(db)
		if err != nil {
			return false, classify(dir, err, true)
		}
		if !empty {
			return false, fmt.Errorf("%w: %s is a Pebble database without the zerohop store marker", ErrForeign, dir)
		}
		return false, nil
	case err != nil:
		return false, classify(dir, err, true)
	}
	ok := len(v) == len(formatMagic)+4 && string(v[:len(formatMagic)]) == formatMagic
	var ver uint32
	if ok {
		ver = le.Uint32(v[len(formatMagic):])
	}
	closer.Close()
	switch {
	case !ok:
		return false, fmt.Errorf("%w: %s: marker key is not a zerohop store marker", ErrForeign, dir)
	case ver > FormatVersion:
		return false, fmt.Errorf("%w: %s: store format version %d is newer than this build's %d", ErrForeign, dir, ver, FormatVersion)
	case ver < 1:
		return false, fmt.Errorf("%w: %s: store format version %d", ErrForeign, dir, ver)
	}
	return true, nil
}

func isEmpty(db *pebble.DB) (bool, error) {
	it, err := db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	err = it.Error()
	return empty, errors.Join(err, it.Close())
}

// initialise empties the store and writes the marker, then the trust file.
func (s *Store) initialise() error {
	b := s.db.NewBatch()
	b.DeleteRange([]byte{pMeta}, []byte{pEnd}, nil)
	marker := append([]byte(formatMagic), 0, 0, 0, 0)
	le.PutUint32(marker[len(formatMagic):], FormatVersion)
	b.Set(keyFormat, marker, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return classify(s.dir, err, true)
	}
	s.entries.Store(0)
	s.liveBytes.Store(0)
	s.appliedSeq.Store(0)
	trust := filepath.Join(s.dir, TrustFile)
	os.Remove(trust) // a symlink in its place is removed, not written through
	f, err := safefile.Create(trust, 0o644)
	if err != nil {
		return classify(s.dir, err, true)
	}
	_, err = f.WriteString("zerohop store: its contents are trusted while this file exists\n")
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return classify(s.dir, err, true)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// pebbleLogger routes Pebble's messages to the store's logger. Pebble calls
// Fatalf on errors it cannot recover from (a failed WAL or MANIFEST
// write); the default would exit the process and take the shared-memory
// tier's writer with it, so the store fails instead and the sidecar keeps
// serving from memory.
type pebbleLogger struct{ s *Store }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.s.log.Warn("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.s.fail(fmt.Errorf("pebble: %s", fmt.Sprintf(format, args...)))
}

func (s *Store) events() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if isNoSpace(err) {
				// Flushes cannot complete: writes would stall for good.
				s.fail(err)
				return
			}
			s.log.Warn("zerohop store: pebble background error", "err", firstLine(err))
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			s.c.corrupt.Add(1)
			if _, seen := s.corruptFiles.LoadOrStore(info.Path, true); !seen {
				s.log.Error("zerohop store: corrupt data file; its entries are misses", "path", info.Path, "err", firstLine(info.Details))
			}
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			// Writes wait for flushes: the queue absorbs it, or drops.
			s.c.stalls.Add(1)
			s.log.Debug("zerohop store: pebble write stall", "reason", info.Reason)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			s.log.Warn("zerohop store: slow disk", "info", info.String())
		},
	}
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "no space left")
}

// firstLine is err's message without the stack traces Pebble attaches.
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	m := err.Error()
	if i := strings.IndexByte(m, '\n'); i >= 0 {
		m = m[:i]
	}
	return m
}

// fail stops all writing: the store's Pebble state may now lack an
// operation the shared-memory tier applied, so the trust file goes and the
// next Open starts empty.
func (s *Store) fail(err error) {
	s.failMu.Lock()
	first := s.failErr == nil
	if first {
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %w: %v", ErrFailed, ErrNoSpace, firstLine(err))
		} else {
			err = fmt.Errorf("%w: %v", ErrFailed, firstLine(err))
		}
		s.failErr = err
	}
	s.failMu.Unlock()
	s.failed.Store(true)
	if first {
		close(s.failCh)
		s.c.writeErrors.Add(1)
		rerr := os.Remove(filepath.Join(s.dir, TrustFile))
		s.log.Error("zerohop store: write failed; persistence is OFF until restart and the store will start empty",
			"dir", s.dir, "err", err, "trust_file_removed", rerr == nil)
	}
}

// Err returns the error that failed the store, or nil.
func (s *Store) Err() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

func (s *Store) nowMs() int64 { return s.opts.Now().UnixMilli() }

// Put queues it to be written. It copies what it needs (the caller may
// reuse it when Put returns) and never blocks: when the queue is full, the
// volume is low on space or the store failed, the item is dropped and
// counted. Bodies are zstd-compressed by the writer unless the response is
// already encoded, of a compressed media type, under CompressMin, or does
// not shrink.
func (s *Store) Put(it *shm.Item) {
	if s.closed.Load() || s.failed.Load() || s.lowSpace.Load() {
		s.c.droppedNoSpace.Add(1)
		return
	}
	if s.shedding.Load() {
		// Keep the governor's share of Puts, spread evenly.
		if x := s.putSeq.Add(1) * 0x9e3779b97f4a7c15; x>>32 >= s.keep.Load() {
			s.c.droppedBusy.Add(1)
			return
		}
	}
	s.qmu.Lock()
	full := s.qPuts >= s.opts.Queue || s.qBytes >= s.opts.QueueBytes
	s.qmu.Unlock()
	if full {
		s.c.dropped.Add(1)
		return
	}
	hb := bufPool.Get().(*[]byte)
	hdrs := shm.AppendHeaderBlock((*hb)[:0], it.Header)
	n, err := recordLen(it, hdrs)
	if err != nil {
		*hb = hdrs
		bufPool.Put(hb)
		s.c.rejected.Add(1)
		return
	}
	rb := getRecBuf(n)
	rec := appendRecord((*rb)[:0], it, hdrs)
	*hb = hdrs
	bufPool.Put(hb)
	*rb = rec
	o := op{kind: opPut, key: append(make([]byte, 0, len(it.Key)), it.Key...), buf: rb, at: s.nowMs(),
		compress: s.opts.CompressMin > 0 && len(it.Body) >= s.opts.CompressMin && compressible(it.Header)}
	s.qmu.Lock()
	if s.qPuts >= s.opts.Queue || s.qBytes >= s.opts.QueueBytes {
		s.qmu.Unlock()
		putRecBuf(rb)
		s.c.dropped.Add(1)
		return
	}
	s.queue = append(s.queue, o)
	s.qPuts++
	s.qBytes += int64(cap(rec))
	full = s.qPuts >= s.opts.BatchSize
	s.qmu.Unlock()
	s.c.enqueued.Add(1)
	s.wake(full)
}

func (s *Store) wake(urgent bool) {
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if urgent {
		select {
		case s.urgent <- struct{}{}:
		default:
		}
	}
}

// enqueue appends a non-Put operation; those are never dropped.
func (s *Store) enqueue(o op, urgent bool) {
	s.qmu.Lock()
	s.queue = append(s.queue, o)
	if o.kind == opInval {
		s.qInval++
	}
	s.qmu.Unlock()
	s.wake(urgent)
}

// Purge queues p, in order with every Put and purge queued before it
// (invalidate.Purger). Reads (Get, promotion, refill) see it at once; Pebble
// applies it in the background, so removed is always 0 (Stats counts what
// the writer removed). The error is an invalid p (wrapping
// invalidate.ErrUnknownKind or ErrBadPayload) or ErrClosed.
func (s *Store) Purge(p invalidate.Purge) (removed int, err error) {
	return 0, s.invalidate(purgeInval(p), nil)
}

// invalidate registers inv, runs apply (the shared-memory side) and queues
// inv, all under the gate, so that the queue's order is the order the
// shared-memory tier saw.
func (s *Store) invalidate(inv inval, apply func()) error {
	if err := inv.valid(); err != nil {
		return err
	}
	if s.closed.Load() {
		if apply != nil {
			apply()
		}
		return ErrClosed
	}
	inv.key = append([]byte(nil), inv.key...)
	inv.at = s.nowMs()
	s.gate.Lock()
	s.invGen++
	s.nextInv++
	id := s.nextInv
	s.pend = append(s.pend, pendingInv{id: id, inv: inv})
	s.pendF.add(&inv)
	if s.journal != nil {
		s.journal.add(&inv)
	}
	if apply != nil {
		apply()
	}
	s.enqueue(op{kind: opInval, inv: inv, id: id}, false)
	s.gate.Unlock()
	return nil
}

// SetAppliedSeq queues the invalidation-log position: it is committed in
// order, after everything queued before it, in the same batch as the purge
// queued just before it. AppliedSeq reports it once committed.
func (s *Store) SetAppliedSeq(seq uint64) {
	if s.closed.Load() {
		return
	}
	s.enqueue(op{kind: opSeq, seq: seq}, false)
}

// AppliedSeq is the last invalidation-log sequence committed to Pebble: the
// tailer resumes after it.
func (s *Store) AppliedSeq() uint64 { return s.appliedSeq.Load() }

// Flush waits until everything queued before it is committed and synced.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	done := make(chan error, 1)
	s.enqueue(op{kind: opFlush, done: done}, true)
	select {
	case err := <-done:
		return err
	case <-s.done:
		select {
		case err := <-done:
			return err
		default:
		}
		if err := s.Err(); err != nil {
			return err
		}
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) noteUse(key []byte, nowMs int64) {
	s.umu.Lock()
	u, ok := s.uses[string(key)]
	if ok || len(s.uses) < maxUses {
		u.n++
		u.last = max(u.last, nowMs)
		s.uses[string(key)] = u
	}
	s.umu.Unlock()
}

// usable reports whether reads may use Pebble.
func (s *Store) usable() bool { return !s.closed.Load() && !s.failed.Load() }

// fetch reads and verifies key's record into buf under the gate, applying
// the invalidations queued but not yet committed. level is the filter
// match (1: serve stale). It queues the removal of corrupt and expired
// records.
func (s *Store) fetch(key, buf []byte, nowMs int64) (rec []byte, v recView, gen uint64, ok bool) {
	rec = buf
	if !s.usable() || !s.keys.has(keyHash(key)) {
		return rec, v, 0, false
	}
	kb := bufPool.Get().(*[]byte)
	k := appendRecKey((*kb)[:0], key)
	s.gate.RLock()
	if !s.usable() {
		s.gate.RUnlock()
		return rec, v, 0, false
	}
	gen = s.invGen
	val, closer, err := s.db.Get(k)
	*kb = k
	bufPool.Put(kb)
	if err != nil {
		s.gate.RUnlock()
		if !errors.Is(err, pebble.ErrNotFound) {
			s.log.Debug("zerohop store: read failed", "err", err)
			if pebble.IsCorruptionError(err) {
				s.c.corrupt.Add(1)
			}
		}
		return rec, v, gen, false
	}
	rec = append(buf[:0], val...)
	closer.Close()
	v, err = parseRecord(key, rec)
	if err != nil {
		s.gate.RUnlock()
		s.c.corrupt.Add(1)
		s.log.Warn("zerohop store: corrupt record; removing it", "err", err)
		s.queueDrop(key, xxhash.Sum64(rec), true)
		return rec, v, gen, false
	}
	lvl := s.pendF.match(key, v.tags)
	softAt := s.pendF.softAt
	s.gate.RUnlock()
	switch lvl {
	case 2:
		return rec, v, gen, false
	case 1:
		v.expiresMs = min(v.expiresMs, softAt)
	}
	if v.deadline(s.graceMs) <= nowMs {
		if lvl == 0 {
			s.queueDrop(key, le.Uint64(rec[rSum:]), false)
		}
		return rec, v, gen, false
	}
	return rec, v, gen, true
}

// queueDrop queues the lazy removal of key's record if it is still the one
// read (sum: its checksum; for a corrupt one, the hash of its bytes).
func (s *Store) queueDrop(key []byte, sum uint64, corrupt bool) {
	s.qmu.Lock()
	if s.qPuts < s.opts.Queue {
		s.queue = append(s.queue, op{kind: opDrop, key: append([]byte(nil), key...), sum: sum, corrupt: corrupt})
		s.qPuts++
	}
	s.qmu.Unlock()
	s.wake(false)
}

// Get returns key's entry for the second tier, or false. Entries past
// their deadline (freshness plus any stale window) are not returned and
// are removed lazily; so are corrupt records (counted). A hit records a use.
// The item owns its memory.
func (s *Store) Get(key []byte, nowMs int64) (*shm.Item, bool) {
	rec, v, _, ok := s.fetch(key, nil, nowMs)
	if !ok {
		s.c.misses.Add(1)
		return nil, false
	}
	body, err := decodeBody(s.dec, nil, &v)
	if err != nil {
		s.c.corrupt.Add(1)
		s.c.misses.Add(1)
		s.queueDrop(key, le.Uint64(rec[rSum:]), false)
		return nil, false
	}
	it := &shm.Item{
		Key: append([]byte(nil), key...), Status: v.status, Header: http.Header{}, Body: body,
		StoredMs: v.storedMs, ExpiresMs: v.expiresMs, InitialAge: v.initialAge, SWR: v.swr, SIE: v.sie,
		Flags: v.flags, ETag: string(v.etag), LastModified: string(v.lastMod),
	}
	for h := shm.NewHeaderIter(v.hdrs); h.Next(); {
		name := string(h.Name())
		it.Header[name] = append(it.Header[name], string(h.Value()))
	}
	for si := newStrIter(v.vary); si.next(); {
		it.Vary = append(it.Vary, string(si.cur))
	}
	for si := newStrIter(v.tags); si.next(); {
		it.Tags = append(it.Tags, string(si.cur))
	}
	s.c.hits.Add(1)
	s.noteUse(key, nowMs)
	return it, true
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.qmu.Lock()
	q, qb, qi := s.qPuts, s.qBytes, s.qInval
	s.qmu.Unlock()
	c := &s.c
	return Stats{
		Queued: q, QueuedBytes: qb, QueuedInvalidations: qi,
		Enqueued: c.enqueued.Load(), Dropped: c.dropped.Load(), DroppedNoSpace: c.droppedNoSpace.Load(),
		DroppedBusy: c.droppedBusy.Load(), Shedding: s.shedding.Load(),
		Rejected: c.rejected.Load(), Written: c.written.Load(), Commits: c.commits.Load(), Syncs: c.syncs.Load(),
		WriteErrors: c.writeErrors.Load(), WriteStalls: c.stalls.Load(), Invalidations: c.invalidations.Load(), Deleted: c.deleted.Load(),
		Visited:  c.visited.Load(),
		Softened: c.softened.Load(), Evicted: c.evicted.Load(), Expired: c.expired.Load(), Corrupt: c.corrupt.Load(),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Promoted: c.promoted.Load(),
		CompressedBodies: c.compressed.Load(), RawBodies: c.raw.Load(),
		BodyBytesIn: c.bodyIn.Load(), BodyBytesStored: c.bodyStored.Load(),
		Entries: s.entries.Load(), LiveBytes: s.liveBytes.Load(), DiskBytes: s.diskBytes.Load(),
		AppliedSeq: s.appliedSeq.Load(), LowSpace: s.lowSpace.Load(), Failed: s.failed.Load(),
		Refill: s.rf.snapshot(),
	}
}

// Close drains the queue (bounded by CloseTimeout), syncs and closes
// Pebble. Operations after Close are dropped; Get misses.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	wait := s.opts.CloseTimeout
	if s.failed.Load() {
		// The writer may be stuck in a stalled Pebble commit.
		wait = min(wait, 2*time.Second)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.log.Error("zerohop store: close timed out draining the queue; closing anyway", "timeout", s.opts.CloseTimeout)
		return fmt.Errorf("store: close: timed out after %v draining the queue", s.opts.CloseTimeout)
	}
	// Readers take the gate; wait for those in flight, and for a refill
	// to notice the close and release its iterators.
	s.gate.Lock()
	//lint:ignore SA2001 the write lock only waits out the readers in flight
	s.gate.Unlock()
	rdone := make(chan struct{})
	go func() { s.readers.Wait(); close(rdone) }()
	select {
	case <-rdone:
	case <-t.C:
		return fmt.Errorf("store: close: a refill did not stop within %v", s.opts.CloseTimeout)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.db.Close() }()
	select {
	case err := <-errc:
		s.dec.Close()
		if err != nil {
			return fmt.Errorf("store: close: %w", err)
		}
		return s.Err()
	case <-t.C:
		return fmt.Errorf("store: close: pebble did not close within %v", s.opts.CloseTimeout)
	}
}

// bufPool holds scratch buffers for keys and header blocks.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// recPool holds record buffers of up to 64 KiB; larger ones are not kept.
var recPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func getRecBuf(n int) *[]byte {
	if n > 64<<10 {
		b := make([]byte, 0, n)
		return &b
	}
	b := recPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, 0, max(n, 8<<10))
	}
	return b
}

func putRecBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		recPool.Put(b)
	}
}
