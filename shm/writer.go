package shm

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edsrzf/mmap-go"
	"github.com/zerohop/zerohop/shm/safefile"
)

// Options configure a Writer. Zero fields take the documented defaults.
type Options struct {
	// Size is the cache file's size in bytes, header and index included.
	// Default 64 MiB.
	Size int64
	// RegionSize is the arena's unit of reclaim and the largest entry.
	// Default 4 MiB; a multiple of 4 KiB between 64 KiB and 1 GiB.
	RegionSize int64
	// ExpectedEntries sizes the index for about 80% slot load. Default
	// Size/1024 (1 KiB per entry).
	ExpectedEntries int64
	// MaxKeySize bounds a canonical key. Default 8 KiB; at most 65535.
	MaxKeySize int
	// MaxHeaderBytes bounds an entry's encoded header block. Default 64 KiB.
	MaxHeaderBytes int
	// HeartbeatInterval is how often the writer proves it is alive.
	// Default 250ms.
	HeartbeatInterval time.Duration
	// Seed is the key hash seed of a new file; 0 picks a random one.
	Seed uint64
	// MaxTagPostings bounds the writer's private tag index (surrogate key
	// to entries; about 30 bytes of heap per tagged entry). Past it the
	// index is dropped and purges by tag scan every entry, until a scan
	// finds the postings fit in half of it again. Default 4 ×
	// ExpectedEntries (Size/256 without it: 256 Ki postings, about 8 MiB,
	// for the default 64 MiB file).
	MaxTagPostings int
	// NoSalvage makes a rebuild start empty instead of copying the verified
	// entries of the old file (after a crash or a size change).
	NoSalvage bool
	// Logger receives adoption and rebuild messages. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock (for tests). Default time.Now.
	Now func() time.Time
}

func (o *Options) maxTagPostings() int {
	if o.MaxTagPostings > 0 {
		return o.MaxTagPostings
	}
	if o.ExpectedEntries > 0 {
		return int(4 * o.ExpectedEntries)
	}
	return int(o.Size / 256)
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Size <= 0 {
		r.Size = 64 << 20
	}
	if r.RegionSize <= 0 {
		r.RegionSize = 4 << 20
	}
	if r.MaxKeySize <= 0 {
		r.MaxKeySize = 8 << 10
	}
	if r.MaxHeaderBytes <= 0 {
		r.MaxHeaderBytes = 64 << 10
	}
	if r.HeartbeatInterval <= 0 {
		r.HeartbeatInterval = 250 * time.Millisecond
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Writer is the single writer of a cache directory. It holds the
// directory's exclusive lock for its whole life. Its methods are safe for
// concurrent use; they serialise on one mutex, while lookups through
// Get/GetStale take no lock.
type Writer struct {
	dir  string
	opts Options
	lock *os.File

	mm   mmap.MMap
	v    *view                // guarded by mu: a rebuild replaces it
	lv   atomic.Pointer[view] // v for the lock-free Get and Stats
	c    readCounters
	want layoutParams // the layout to create, at start and on a rebuild

	mu         sync.Mutex
	closed     bool
	gone       atomic.Bool // set before unmapping, checked by lock-free Get
	head       uint64      // private copy of the header's head
	tags       tagIndex    // surrogate key -> entries carrying it (tagindex.go)
	tagScratch []uint64    // positions of one tag, during a purge
	scratch    []byte      // header block encoding

	// Header checks (verify.go), guarded by mu.
	own struct { // the header words this writer owns, as it wrote them
		line0              [headerLine0]byte
		tail               uint64
		invalSeq, invalOff uint64
		adoptGen           uint32
	}
	damaged bool   // a damaged header was noticed; cleared once a rebuilt file verifies
	scanAt  uint64 // next bucket the odd-counter scan looks at
	health  struct {
		corruptions, rebuilds, rebuildErrors, repaired uint64
		last                                           string
		rebuiltOK                                      bool
	}

	stop chan struct{}
	done chan struct{}
}

// OpenWriter takes the writer lock of dir (creating dir if needed), then
// adopts a cleanly closed cache file of the same layout or builds a new one,
// salvaging the verified entries of an old one unless NoSalvage is set.
func OpenWriter(dir string, opts *Options) (*Writer, error) {
	o := opts.withDefaults()
	want, err := computeLayout(o.Size, o.RegionSize, o.ExpectedEntries)
	if err != nil {
		return nil, err
	}
	if o.MaxKeySize > 0xffff {
		return nil, fmt.Errorf("%w: max key size %d is over 65535 (key fields have 16-bit lengths)", ErrOptions, o.MaxKeySize)
	}
	if int64(o.MaxKeySize)+EntryHeaderSize > want.regionSize {
		return nil, fmt.Errorf("%w: max key size %d does not fit a region", ErrOptions, o.MaxKeySize)
	}
	want.maxKey = uint32(o.MaxKeySize)
	want.maxHeaders = uint32(o.MaxHeaderBytes)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", dir, err)
	}
	// The directory is shared with the app: a symlink or FIFO planted as
	// the lock is refused, never created or locked through.
	lock, err := safefile.Open(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shm: open lock: %w", err)
	}
	if err := lockExclusive(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("shm: %s: %w", dir, err)
	}
	w := &Writer{dir: dir, opts: o, lock: lock, tags: newTagIndex(o.maxTagPostings()), want: want}
	if err := w.open(want); err != nil {
		lock.Close()
		return nil, err
	}
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	go w.heartbeatLoop()
	return w, nil
}

func (w *Writer) open(want layoutParams) error {
	path := filepath.Join(w.dir, FileName)
	old, oldMM, err := mapForWrite(path)
	switch {
	case err == nil && sameLayout(old.geo, want) && State(old.state.Load()) == StateClean && consistentHead(old) &&
		old.geo.minorVersion == MinorVersion && old.geo.features == 0:
		// Only a file of exactly this format is adopted; another minor
		// version or feature set is rebuilt (salvaging its entries), so
		// the header never advertises what this writer does not maintain.
		w.mm, w.v = oldMM, old
		w.adopt()
		w.snapshotHeader()
		return nil
	case err == nil:
		w.opts.Logger.Info("zerohop cache: rebuilding cache file", "path", path,
			"previous_state", State(old.state.Load()).String(), "layout_changed", !sameLayout(old.geo, want))
	case errors.Is(err, os.ErrNotExist):
	default:
		w.opts.Logger.Warn("zerohop cache: replacing unusable cache file", "path", path, "err", err)
	}
	if err := w.create(path, want); err != nil {
		if oldMM != nil {
			oldMM.Unmap()
		}
		return err
	}
	if old != nil {
		if !w.opts.NoSalvage {
			n := w.salvage(old)
			w.opts.Logger.Info("zerohop cache: salvaged entries", "count", n)
		}
		// Readers holding the old mapping see this and map the new file.
		old.state.Store(uint32(StateAbandoned))
		oldMM.Unmap()
	}
	w.snapshotHeader()
	return nil
}

// consistentHead checks the header words adoption takes over: a clean file
// can still be damaged (a disk-backed volume after an OS crash, a writer
// killed during its own adoption), and a wild head would make the next Put
// reclaim billions of regions.
func consistentHead(v *view) bool {
	g := &v.geo
	head, tail := v.head.Load(), v.tail.Load()
	return tail%g.regionSize == 0 && tail <= head && head-tail <= g.arenaLen && head%EntryAlign == 0
}

func sameLayout(g geometry, p layoutParams) bool {
	return g.fileSize == uint64(p.fileSize) && g.regionSize == uint64(p.regionSize) &&
		g.regionCount == uint64(p.regionCount) && g.bucketLog2 == p.bucketLog2 &&
		g.maxKey == p.maxKey && g.maxHeaders == p.maxHeaders
}

// mapForWrite maps an existing file read-write and validates its header.
func mapForWrite(path string) (*view, mmap.MMap, error) {
	// A symlink or FIFO in place of the file is refused (and then replaced
	// by a new file): the writer never maps another file read-write.
	f, err := safefile.Open(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() < HeaderSize {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTruncated, fi.Size())
	}
	mm, err := mmap.Map(f, mmap.RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	v, err := newView(mm)
	if err != nil {
		mm.Unmap()
		return nil, nil, err
	}
	return v, mm, nil
}

// create builds a new file beside path and renames it into place. The file
// is allocated at full size first, so a full volume fails here.
func (w *Writer) create(path string, p layoutParams) (err error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("shm: random: %w", err)
	}
	p.seed = w.opts.Seed
	if p.seed == 0 {
		p.seed = binary.LittleEndian.Uint64(rnd[:8])
	}
	p.instanceID = binary.LittleEndian.Uint64(rnd[8:])
	p.createdMs = w.opts.Now().UnixMilli()

	tmp := path + ".tmp"
	os.Remove(tmp) // unlink does not follow a planted symlink
	f, err := safefile.Create(tmp, 0o644)
	if err != nil {
		return fmt.Errorf("shm: create %s: %w", tmp, err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := allocate(f, p.fileSize); err != nil {
		return fmt.Errorf("shm: %s: %w", tmp, err)
	}
	mm, err := mmap.Map(f, mmap.RDWR, 0)
	if err != nil {
		return fmt.Errorf("shm: map %s: %w", tmp, err)
	}
	// fallocate leaves zeros: an empty index, an empty arena.
	writeLayout(mm, p)
	v, err := newView(mm)
	if err != nil {
		mm.Unmap()
		return fmt.Errorf("shm: %s: %w", tmp, err)
	}
	now := uint64(w.opts.Now().UnixMilli())
	u64at(mm, offWriterStart).Store(now)
	v.heartbeat.Store(now)
	// A rebuild keeps what was published: read-your-purge waits must not
	// see the sequence go back.
	v.invalOff.Store(w.own.invalOff)
	v.invalSeq.Store(w.own.invalSeq)
	v.state.Store(uint32(StateLive)) // the readiness mark, written last
	if err := os.Rename(tmp, path); err != nil {
		mm.Unmap()
		return fmt.Errorf("shm: rename %s: %w", tmp, err)
	}
	w.mm, w.v, w.head = mm, v, 0
	return nil
}

// adopt takes over a cleanly closed file. It does not trust the index: a
// bucket left mid-update is reset, and every slot whose entry does not
// verify (position, hash, length, checksum) is cleared; then it rebuilds the
// private tag index and recounts the live entries.
func (w *Writer) adopt() {
	v := w.v
	g := &v.geo
	w.head = v.head.Load()
	tail := v.tail.Load()
	var live uint64
	for i := uint64(0); i < 1<<g.bucketLog2; i++ {
		b := int(g.indexOff + i*BucketSize)
		if seq := u32at(w.mm, b+offBucketSeq); seq.Load()&1 != 0 {
			for s := 0; s < SlotsPerBucket; s++ {
				w.clearSlot(b, b+offSlots+s*SlotSize)
			}
			seq.Add(1) // even again; clearSlot kept the parity
			w.health.repaired++
			continue
		}
		for s := 0; s < SlotsPerBucket; s++ {
			so := b + offSlots + s*SlotSize
			tag := u64at(w.mm, so+offSlotTag).Load()
			if tag == 0 {
				continue
			}
			pos := u64at(w.mm, so+offSlotPos).Load()
			n := u64at(w.mm, so+offSlotMeta).Load() & 0xffffffff
			if pos < tail || pos >= w.head || !w.verifyAt(pos, n, tag) {
				w.clearSlot(b, so)
				continue
			}
			live++
			w.indexTags(pos)
		}
	}
	v.stats[statEntries].Store(live)
	now := uint64(w.opts.Now().UnixMilli())
	u64at(w.mm, offWriterStart).Store(now)
	v.heartbeat.Store(now)
	v.adoptGen.Add(1)
	v.state.Store(uint32(StateLive))
	w.opts.Logger.Info("zerohop cache: adopted cache file", "dir", w.dir, "entries", live)
}

// salvage copies every verifiable live entry of old into the new file.
// Buckets the dead writer left mid-update are skipped.
func (w *Writer) salvage(old *view) (n int) {
	var buf []byte
	guard(func() {
		tail := old.tail.Load()
		for b := 0; b < 1<<old.geo.bucketLog2; b++ {
			bo := int(old.geo.indexOff) + b*BucketSize
			if u32at(old.data, bo+offBucketSeq).Load()&1 != 0 {
				continue
			}
			for i := 0; i < SlotsPerBucket; i++ {
				so := bo + offSlots + i*SlotSize
				tag := u64at(old.data, so+offSlotTag).Load()
				pos := u64at(old.data, so+offSlotPos).Load()
				meta := u64at(old.data, so+offSlotMeta).Load()
				l := meta & 0xffffffff
				if tag == 0 || pos < tail || l < EntryHeaderSize || l > old.geo.regionSize || pos%old.geo.regionSize+l > old.geo.regionSize {
					continue
				}
				if uint64(cap(buf)) < l {
					buf = make([]byte, l)
				}
				off := old.phys(pos)
				b := buf[:l]
				copy(b, old.data[off:off+l])
				e, ok := decodeEntry(b, pos, le.Uint64(b[eHash:]), old.geo.seed)
				if !ok || slotTag(e.Hash) != tag {
					continue
				}
				if fu := int64(meta>>32) * 1000; fu < e.ExpiresMs {
					e.ExpiresMs = fu
				}
				if w.putEntry(&e) == nil {
					n++
				}
			}
		}
	})
	return n
}

// putEntry re-inserts a decoded entry (salvage) keeping its metadata.
func (w *Writer) putEntry(e *Entry) error {
	it := Item{
		Key: e.Key, Status: e.Status, Body: e.Body, StoredMs: e.StoredMs, ExpiresMs: e.ExpiresMs,
		InitialAge: e.InitialAge, SWR: e.SWR, SIE: e.SIE, Flags: e.Flags,
		ETag: string(e.ETag), LastModified: string(e.LastModified),
	}
	for it2 := NewStringIter(e.Vary); it2.Next(); {
		it.Vary = append(it.Vary, it2.String())
	}
	for it2 := NewStringIter(e.Tags); it2.Next(); {
		it.Tags = append(it.Tags, it2.String())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.put(&it, e.Headers)
}

func (w *Writer) heartbeatLoop() {
	defer close(w.done)
	t := time.NewTicker(w.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			if !w.closed {
				guard(func() { w.v.heartbeat.Store(uint64(now.UnixMilli())) })
				w.check()
			}
			w.mu.Unlock()
		}
	}
}

// Put stores it, replacing any entry with the same key. It returns
// ErrTooLarge (wrapped) for a key, header block or entry over the limits.
func (w *Writer) Put(it *Item) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	for name := range it.Header {
		if len(name) > 0xffff {
			// The header block has 16-bit name lengths: a longer name
			// would spill into the next fields (a forged header).
			w.v.stats[statRejected].Add(1)
			return fmt.Errorf("%w: a header name over 65535 bytes", ErrTooLarge)
		}
	}
	w.scratch = AppendHeaderBlock(w.scratch[:0], it.Header)
	var err error
	if ferr := guard(func() { err = w.put(it, w.scratch) }); ferr != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, ferr)
	}
	return err
}

func (w *Writer) put(it *Item, hdrs []byte) error {
	v := w.v
	switch {
	case len(it.Key) > w.opts.MaxKeySize:
		v.stats[statRejected].Add(1)
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(it.Key), w.opts.MaxKeySize)
	case len(hdrs) > w.opts.MaxHeaderBytes:
		v.stats[statRejected].Add(1)
		return fmt.Errorf("%w: header block of %d bytes, limit %d", ErrTooLarge, len(hdrs), w.opts.MaxHeaderBytes)
	case len(it.ETag) > 0xffff || len(it.LastModified) > 0xffff || it.Status < 0 || it.Status > 0xffff:
		v.stats[statRejected].Add(1)
		return fmt.Errorf("%w: validator or status out of range", ErrTooLarge)
	case !fits16(it.Tags) || !fits16(it.Vary):
		v.stats[statRejected].Add(1)
		return fmt.Errorf("%w: a tag or vary name over 65535 bytes", ErrTooLarge)
	}
	n := it.encodedLen(hdrs)
	if uint64(n) > v.geo.regionSize {
		v.stats[statRejected].Add(1)
		return fmt.Errorf("%w: entry of %d bytes, region size %d", ErrTooLarge, n, v.geo.regionSize)
	}
	h := keyHash(it.Key, v.geo.seed)
	pos := w.alloc(uint64(n))
	off := v.phys(pos)
	encodeEntry(w.mm[off:off+uint64(n)], it, hdrs, pos, h, v.geo.seed)

	tag := slotTag(h)
	b, so, replaced := w.chooseSlot(h, tag)
	if replaced {
		v.stats[statReplaces].Add(1)
	} else {
		v.stats[statEntries].Add(1)
	}
	// The slot holds fresh-until in unix seconds, rounded up, saturating
	// at the u32 maximum (year 2106) rather than wrapping into the past.
	expS := uint64(0)
	if it.ExpiresMs > 0 {
		expS = min(uint64((it.ExpiresMs+999)/1000), 0xffffffff)
	}
	meta := uint64(n) | expS<<32
	seq := u32at(w.mm, b+offBucketSeq)
	seq.Add(1)
	u64at(w.mm, so+offSlotTag).Store(tag)
	u64at(w.mm, so+offSlotPos).Store(pos)
	u64at(w.mm, so+offSlotMeta).Store(meta)
	seq.Add(1)
	v.head.Store(w.head)
	for _, t := range it.Tags {
		w.postTag(tagHashString(t), pos)
	}
	v.stats[statInserts].Add(1)
	v.stats[statBytesWritten].Add(uint64(n))
	return nil
}

// fits16 reports whether every string has a length that fits a u16.
func fits16(ss []string) bool {
	for _, s := range ss {
		if len(s) > 0xffff {
			return false
		}
	}
	return true
}

// chooseSlot picks where hash h goes: the slot already holding its tag,
// else an empty or dead slot in either bucket, else the oldest entry of
// the two buckets, which is evicted. The chosen slot's old entry, if any,
// is dropped from the tag index.
func (w *Writer) chooseSlot(h, tag uint64) (bucket, slot int, replaced bool) {
	v := w.v
	tail := v.tail.Load()
	b1, b2 := v.buckets(h)
	empty, emptyB := -1, 0
	oldest, oldestB, oldestPos := -1, 0, ^uint64(0)
	for _, b := range [2]int{b1, b2} {
		for i := 0; i < SlotsPerBucket; i++ {
			so := b + offSlots + i*SlotSize
			t := u64at(w.mm, so+offSlotTag).Load()
			p := u64at(w.mm, so+offSlotPos).Load()
			switch {
			case t == tag && p >= tail:
				w.unindexTags(p)
				return b, so, true
			case t == 0 || p < tail:
				if empty < 0 {
					empty, emptyB = so, b
				}
			case p < oldestPos:
				oldest, oldestB, oldestPos = so, b, p
			}
		}
	}
	if empty >= 0 {
		return emptyB, empty, false
	}
	w.unindexTags(oldestPos)
	v.stats[statEvictions].Add(1)
	v.stats[statEntries].Add(^uint64(0))
	return oldestB, oldest, false
}

// alloc reserves n bytes at the head of the arena. An entry never crosses a
// region: the rest of a region too small for it is padded. Entering a new
// region first moves the reclaim horizon, keeping one region of slack
// between the oldest live entry and the region being overwritten, so a
// reader copying the oldest entry is not overrun by the next one written.
func (w *Writer) alloc(n uint64) uint64 {
	g := &w.v.geo
	if off := w.head % g.regionSize; off != 0 && off+n > g.regionSize {
		pad := g.regionSize - off
		p := w.v.phys(w.head)
		le.PutUint32(w.mm[p+eKind:], KindPad)
		le.PutUint32(w.mm[p+eTotalLen:], uint32(pad))
		w.head += pad
	}
	if w.head%g.regionSize == 0 {
		w.enterRegion(w.head / g.regionSize)
	}
	pos := w.head
	w.head += n
	return pos
}

func (w *Writer) enterRegion(k uint64) {
	g := &w.v.geo
	if k+2 <= g.regionCount {
		return // first lap: nothing to reclaim yet
	}
	newTail := (k + 2 - g.regionCount) * g.regionSize
	oldTail := w.own.tail
	if newTail <= oldTail {
		return
	}
	w.v.tail.Store(newTail)
	w.own.tail = newTail
	// Regions more than a lap behind were reclaimed when the ring last
	// passed them; walking them again would only cost time.
	first := oldTail / g.regionSize
	if last := newTail / g.regionSize; last-first > g.regionCount {
		first = last - g.regionCount
	}
	for r := first; r < newTail/g.regionSize; r++ {
		w.reclaimRegion(r)
	}
}

// reclaimRegion clears the slots still pointing into absolute region r,
// walking its entries in order. The bytes are the writer's own, written
// before the region's last pad or its end.
func (w *Writer) reclaimRegion(r uint64) {
	g := &w.v.geo
	start := r * g.regionSize
	for p := start; p+EntryHeaderSize <= start+g.regionSize; {
		off := w.v.phys(p)
		if le.Uint32(w.mm[off+eKind:]) != KindEntry || le.Uint64(w.mm[off+ePos:]) != p {
			break
		}
		n := uint64(le.Uint32(w.mm[off+eTotalLen:]))
		if n < EntryHeaderSize || n%EntryAlign != 0 || p+n > start+g.regionSize {
			break
		}
		h := le.Uint64(w.mm[off+eHash:])
		if b, so, ok := w.findSlot(h, p); ok {
			w.drop(b, so, p, statReclaimed)
		}
		p += n
	}
	w.v.stats[statRegionsReclaimed].Add(1)
}

// findSlot returns the slot holding the entry of hash h at pos.
func (w *Writer) findSlot(h, pos uint64) (bucket, slot int, ok bool) {
	tag := slotTag(h)
	b1, b2 := w.v.buckets(h)
	for _, b := range [2]int{b1, b2} {
		for i := 0; i < SlotsPerBucket; i++ {
			so := b + offSlots + i*SlotSize
			if u64at(w.mm, so+offSlotTag).Load() == tag && u64at(w.mm, so+offSlotPos).Load() == pos {
				return b, so, true
			}
		}
	}
	return 0, 0, false
}

// clearSlot empties a slot under its bucket's seqlock.
func (w *Writer) clearSlot(b, so int) {
	seq := u32at(w.mm, b+offBucketSeq)
	seq.Add(1)
	u64at(w.mm, so+offSlotTag).Store(0)
	u64at(w.mm, so+offSlotPos).Store(0)
	u64at(w.mm, so+offSlotMeta).Store(0)
	seq.Add(1)
}

// drop removes the live entry at pos held by slot so, counting it under stat.
func (w *Writer) drop(b, so int, pos uint64, stat int) {
	w.unindexTags(pos)
	w.clearSlot(b, so)
	w.v.stats[statEntries].Add(^uint64(0))
	w.v.stats[stat].Add(1)
}

// forEachSlot calls f for every non-empty slot.
func (w *Writer) forEachSlot(f func(bucket, slot int, tag, pos, meta uint64)) {
	g := &w.v.geo
	for i := uint64(0); i < 1<<g.bucketLog2; i++ {
		b := int(g.indexOff + i*BucketSize)
		for s := 0; s < SlotsPerBucket; s++ {
			so := b + offSlots + s*SlotSize
			if t := u64at(w.mm, so+offSlotTag).Load(); t != 0 {
				f(b, so, t, u64at(w.mm, so+offSlotPos).Load(), u64at(w.mm, so+offSlotMeta).Load())
			}
		}
	}
}

// entryAt returns the writer's own entry at pos, parsed in place. Lengths
// are bounds-checked (the index of an adopted file could be damaged) but
// the checksum is not verified: adopt verified it, or the writer wrote it.
func (w *Writer) entryAt(pos uint64) (Entry, bool) {
	g := &w.v.geo
	in := pos % g.regionSize
	if pos%EntryAlign != 0 || in+EntryHeaderSize > g.regionSize {
		return Entry{}, false
	}
	off := w.v.phys(pos)
	if le.Uint32(w.mm[off+eKind:]) != KindEntry {
		return Entry{}, false
	}
	n := uint64(le.Uint32(w.mm[off+eTotalLen:]))
	if n < EntryHeaderSize || in+n > g.regionSize {
		return Entry{}, false
	}
	return parseEntry(w.mm[off : off+n])
}

// verifyAt checks, in place, that the slot (pos, length n, tag) points at
// an intact entry: the checks a reader makes on its copy.
func (w *Writer) verifyAt(pos, n, tag uint64) bool {
	g := &w.v.geo
	if n < EntryHeaderSize || n%EntryAlign != 0 || pos%EntryAlign != 0 || pos%g.regionSize+n > g.regionSize {
		return false
	}
	off := w.v.phys(pos)
	b := w.mm[off : off+n]
	h := le.Uint64(b[eHash:])
	if slotTag(h) != tag {
		return false
	}
	_, ok := decodeEntry(b, pos, h, g.seed)
	return ok
}

// lookupSlot finds the live slot of key, checking the full key.
func (w *Writer) lookupSlot(key []byte) (b, so int, pos uint64, ok bool) {
	h := keyHash(key, w.v.geo.seed)
	tag := slotTag(h)
	tail := w.v.tail.Load()
	b1, b2 := w.v.buckets(h)
	for _, b := range [2]int{b1, b2} {
		for i := 0; i < SlotsPerBucket; i++ {
			so := b + offSlots + i*SlotSize
			if u64at(w.mm, so+offSlotTag).Load() != tag {
				continue
			}
			p := u64at(w.mm, so+offSlotPos).Load()
			if e, ok := w.entryAt(p); ok && p >= tail && bytes.Equal(e.Key, key) {
				return b, so, p, true
			}
		}
	}
	return 0, 0, 0, false
}

// SetInvalidation publishes the last applied invalidation-log record.
func (w *Writer) SetInvalidation(seq, off uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.own.invalSeq, w.own.invalOff = seq, off
	guard(func() {
		w.v.invalOff.Store(off)
		w.v.invalSeq.Store(seq)
	})
}

// Get is Reader.Get on the writer's own mapping (for the sidecar). It
// misses after Close.
func (w *Writer) Get(dst, key []byte, nowMs int64) (Entry, []byte, bool) {
	return w.get(dst, key, nowMs)
}

// GetStale is Get without the freshness check.
func (w *Writer) GetStale(dst, key []byte) (Entry, []byte, bool) {
	return w.get(dst, key, 0)
}

func (w *Writer) get(dst, key []byte, freshAt int64) (e Entry, out []byte, hit bool) {
	if w.gone.Load() {
		w.c.count(outMiss)
		return Entry{}, dst, false
	}
	o := outMiss
	out = dst
	// A Close or a rebuild racing this lookup unmaps under it: fault into
	// a miss.
	v := w.lv.Load()
	if guard(func() { out, o = v.lookup(&e, dst, key, freshAt, &w.c) }) != nil {
		e, out, o = Entry{}, dst, outMiss
	}
	w.c.count(o)
	return e, out, o == outHit
}

// Stats returns the counters kept in the file header.
func (w *Writer) Stats() (s Stats) {
	v := w.lv.Load()
	guard(func() { s = v.writerStats() })
	return s
}

// ReadStats returns the statistics of lookups made through the writer.
func (w *Writer) ReadStats() ReadStats { return w.c.snapshot() }

// Dir returns the cache directory.
func (w *Writer) Dir() string { return w.dir }

// Close marks the file cleanly closed, so the next writer adopts it, and
// releases the lock.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.stop)
	w.mu.Unlock()
	<-w.done
	guard(func() { w.v.state.Store(uint32(StateClean)) })
	w.gone.Store(true)
	err := w.mm.Unmap()
	if cerr := w.lock.Close(); err == nil {
		err = cerr
	}
	return err
}
