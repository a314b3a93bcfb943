package store

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/zerohop/zerohop/shm"
)

// RefillStats is the progress of the last (or running) refill.
type RefillStats struct {
	Running    bool
	Finished   bool  // the last refill ended (all entries, or the budget, reached)
	Total      int64 // entries in the store when it started
	Done       int64 // entries visited: put or skipped
	Put        int64 // entries put into shared memory
	Skipped    int64 // expired, invalidated, already newer in shared memory, or unreadable
	Bytes      int64 // shared-memory bytes written
	BudgetHit  bool  // it stopped at RefillBudget
	StartedMs  int64
	FinishedMs int64
}

// Fraction is the share of the refill done, 1 once finished (for /readyz).
func (r RefillStats) Fraction() float64 {
	switch {
	case r.Finished:
		return 1
	case r.Total <= 0:
		return 0
	}
	return min(float64(r.Done)/float64(r.Total), 1)
}

type refillCounters struct {
	running, finished, budgetHit     atomic.Bool
	total, done, put, skipped, bytes atomic.Int64
	startedMs, finishedMs            atomic.Int64
}

func (r *refillCounters) snapshot() RefillStats {
	return RefillStats{
		Running: r.running.Load(), Finished: r.finished.Load(), Total: r.total.Load(), Done: r.done.Load(),
		Put: r.put.Load(), Skipped: r.skipped.Load(), Bytes: r.bytes.Load(), BudgetHit: r.budgetHit.Load(),
		StartedMs: r.startedMs.Load(), FinishedMs: r.finishedMs.Load(),
	}
}

// RefillProgress is Stats().Refill.
func (s *Store) RefillProgress() RefillStats { return s.rf.snapshot() }

// refillChunk is how many index entries a refill reads before it fetches
// their records in key order.
const refillChunk = 512

// Refill puts the store's entries into the shared-memory tier, highest
// score (most recently and most often used) first, skipping entries past
// their deadline, until every entry is visited or RefillBudget bytes are
// written. It is meant for a new or rebuilt cache file while the proxy
// already serves: an entry the proxy stored meanwhile (through Tier.Put)
// with the same or a newer StoredMs is left alone, and an invalidation
// made meanwhile (through Tier or the Store) is never undone. progress, if
// not nil, is called after each chunk. It returns the number of entries
// put.
func (s *Store) Refill(ctx context.Context, w *shm.Writer, progress func(done, total int)) (n int, err error) {
	if !s.usable() {
		if e := s.Err(); e != nil {
			return 0, e
		}
		return 0, ErrClosed
	}
	if !s.refillR.CompareAndSwap(false, true) {
		return 0, ErrBusy
	}
	defer s.refillR.Store(false)
	budget := s.opts.RefillBudget
	if budget <= 0 {
		budget = 48 << 20
		if fi, err := os.Stat(filepath.Join(w.Dir(), shm.FileName)); err == nil {
			budget = fi.Size() * 3 / 4
		}
	}
	s.gate.Lock()
	if !s.usable() {
		s.gate.Unlock()
		return 0, ErrClosed
	}
	s.readers.Add(1)
	defer s.readers.Done()
	j := &filter{}
	for i := range s.pend {
		j.add(&s.pend[i].inv)
	}
	s.journal = j
	// Into an empty file that nothing else writes, a refill need not look
	// for newer versions before each put.
	s.refillEmpty = w.Stats().Entries == 0
	s.refillPuts = s.hotPuts.Load()
	snap := s.db.NewSnapshot()
	s.gate.Unlock()
	defer func() {
		s.gate.Lock()
		s.journal = nil
		s.gate.Unlock()
		snap.Close()
	}()

	rf := &s.rf
	total := s.entries.Load()
	rf.total.Store(total)
	rf.done.Store(0)
	rf.put.Store(0)
	rf.skipped.Store(0)
	rf.bytes.Store(0)
	rf.finished.Store(false)
	rf.budgetHit.Store(false)
	rf.startedMs.Store(s.nowMs())
	rf.running.Store(true)
	defer rf.running.Store(false)
	s.log.Info("zerohop store: refilling shared memory", "entries", total, "budget_bytes", budget)

	oit, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{pOrder}, UpperBound: []byte{pOrder + 1}})
	if err != nil {
		return 0, fmt.Errorf("store: refill: %w", err)
	}
	defer oit.Close()
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	rits := make([]*pebble.Iterator, workers)
	for i := range rits {
		rits[i], err = snap.NewIter(&pebble.IterOptions{LowerBound: []byte{pRec}, UpperBound: []byte{pRec + 1}})
		if err != nil {
			for _, it := range rits[:i] {
				it.Close()
			}
			return 0, fmt.Errorf("store: refill: %w", err)
		}
	}
	defer func() {
		for _, it := range rits {
			it.Close()
		}
	}()

	n, bytesW, err := s.refillLoop(ctx, w, oit, rits, budget, progress)
	if err != nil {
		return n, err
	}
	if rf.budgetHit.Load() {
		rf.done.Store(total)
	}
	if progress != nil {
		progress(int(rf.done.Load()), int(total))
	}
	rf.finished.Store(true)
	rf.finishedMs.Store(s.nowMs())
	s.log.Info("zerohop store: refill finished", "put", n, "skipped", rf.skipped.Load(), "bytes", bytesW,
		"budget_reached", rf.budgetHit.Load(), "ms", rf.finishedMs.Load()-rf.startedMs.Load())
	return n, nil
}

// refillSlot carries one decoded entry from the reading goroutine to the
// one putting into shared memory.
type refillSlot struct {
	key  []byte
	head []byte // the record without its body
	body []byte // the decoded body
	v    recView
	now  int64
}

// refillChunkKeys is a chunk of the order index: keys sorted, so that
// their records are read in key order.
type refillChunkKeys struct {
	arena []byte
	spans []refillSpan
	now   int64
}

type refillSpan struct{ off, n int }

// refillLoop runs the refill as a pipeline: one goroutine walks the order
// index in chunks, workers (one per core) fetch each chunk's records in
// key order, verify and decompress them, and the caller puts them into
// shared memory.
func (s *Store) refillLoop(ctx context.Context, w *shm.Writer, oit *pebble.Iterator, rits []*pebble.Iterator, budget int64,
	progress func(done, total int)) (n int, bytesW int64, err error) {
	rf := &s.rf
	const nslots = 256
	free := make(chan *refillSlot, nslots)
	full := make(chan *refillSlot, nslots)
	for i := 0; i < nslots; i++ {
		free <- &refillSlot{}
	}
	chunks := make(chan *refillChunkKeys, len(rits))
	spare := make(chan *refillChunkKeys, 2*len(rits)+1)
	for i := 0; i < cap(spare); i++ {
		spare <- &refillChunkKeys{}
	}
	quit := make(chan struct{})
	errs := make(chan error, len(rits)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		errs <- s.refillIndex(oit, spare, chunks, quit, budget)
	}()
	var workers sync.WaitGroup
	for _, rit := range rits {
		workers.Add(1)
		go func() {
			defer workers.Done()
			errs <- s.refillRead(rit, chunks, spare, free, full, quit)
		}()
	}
	go func() {
		workers.Wait()
		close(full)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(quit)
		}
		for range full {
		}
		wg.Wait()
	}
	x := newScratch()
	total := int(rf.total.Load())
	var lastReport, lastLog int64
	for sl := range full {
		x.fill(sl.key, &sl.v, sl.body)
		put := s.putRefill(w, x, sl.key, sl.v.tags, sl.now)
		sz := x.shmSize()
		x.release()
		free <- sl
		done := rf.done.Add(1)
		if !put {
			rf.skipped.Add(1)
		} else {
			n++
			bytesW += sz
			rf.put.Add(1)
			rf.bytes.Add(sz)
			if bytesW > budget+budget/16 {
				// The index stage plans within the budget; this is a
				// guard against size estimates gone wrong.
				rf.budgetHit.Store(true)
				break
			}
		}
		if done-lastReport >= refillChunk {
			lastReport = done
			if progress != nil {
				progress(int(done), total)
			}
			if err = ctx.Err(); err != nil {
				break
			}
			if !s.usable() {
				err = ErrClosed
				break
			}
			if bytesW-lastLog >= 256<<20 {
				lastLog = bytesW
				s.log.Info("zerohop store: refill progress", "done", done, "total", total, "put", n, "bytes", bytesW)
			}
		}
	}
	stop()
	close(errs)
	for e := range errs {
		if e != nil && err == nil {
			err = fmt.Errorf("store: refill: %w", e)
		}
	}
	return n, bytesW, err
}

// refillIndex walks the order index, highest score first, and hands out
// chunks of live keys sorted by key.
func (s *Store) refillIndex(oit *pebble.Iterator, spare, chunks chan *refillChunkKeys, quit chan struct{}, budget int64) error {
	rf := &s.rf
	var planned int64 // shared-memory bytes of the entries handed out
	ok := oit.First()
	for ok {
		var c *refillChunkKeys
		select {
		case c = <-spare:
		case <-quit:
			return nil
		}
		if !s.usable() {
			return nil
		}
		c.arena, c.spans = c.arena[:0], c.spans[:0]
		c.now = s.nowMs()
		for ; ok && len(c.spans) < refillChunk; ok = oit.Next() {
			k, val := oit.Key(), oit.Value()
			if len(k) < 9 || len(val) < orderValueLen || int64(be.Uint64(val)) <= c.now {
				rf.done.Add(1)
				rf.skipped.Add(1)
				continue
			}
			// The budget is applied here, in score order: a chunk's
			// records are fetched in key order.
			hot := int64(be.Uint32(val[8:]))
			if planned+hot > budget {
				rf.budgetHit.Store(true)
				ok = false
				break
			}
			planned += hot
			c.spans = append(c.spans, refillSpan{len(c.arena), len(k) - 9})
			c.arena = append(c.arena, k[9:]...)
		}
		if len(c.spans) == 0 {
			spare <- c
			continue
		}
		slices.SortFunc(c.spans, func(a, b refillSpan) int {
			return bytes.Compare(c.arena[a.off:a.off+a.n], c.arena[b.off:b.off+b.n])
		})
		select {
		case chunks <- c:
		case <-quit:
			return nil
		}
	}
	return oit.Error()
}

// refillRead fetches, verifies and decodes the records of each chunk.
func (s *Store) refillRead(rit *pebble.Iterator, chunks <-chan *refillChunkKeys, spare chan *refillChunkKeys,
	free chan *refillSlot, full chan<- *refillSlot, quit chan struct{}) error {
	rf := &s.rf
	skip := func() {
		rf.done.Add(1)
		rf.skipped.Add(1)
	}
	var rk []byte
	for c := range chunks {
		for _, sp := range c.spans {
			key := c.arena[sp.off : sp.off+sp.n]
			rk = appendRecKey(rk[:0], key)
			if !rit.SeekGE(rk) || !bytes.Equal(rit.Key(), rk) {
				skip()
				continue
			}
			val := rit.Value()
			v, err := parseRecord(key, val)
			if err != nil {
				s.c.corrupt.Add(1)
				skip()
				continue
			}
			var sl *refillSlot
			select {
			case sl = <-free:
			case <-quit:
				return nil
			}
			sl.body, err = decodeBody(s.dec, sl.body[:0], &v)
			if err != nil {
				free <- sl
				s.c.corrupt.Add(1)
				skip()
				continue
			}
			// Keep the record's head: the item's strings alias it.
			sl.head = append(sl.head[:0], val[:len(val)-len(v.body)]...)
			v.rebase(sl.head)
			sl.v = v
			sl.key = append(sl.key[:0], key...)
			sl.now = c.now
			select {
			case full <- sl:
			case <-quit:
				return nil
			}
		}
		spare <- c
	}
	return rit.Error()
}

// putRefill puts a refill candidate into shared memory unless an
// invalidation since the snapshot covers it or shared memory already holds
// the same or a newer version.
func (s *Store) putRefill(w *shm.Writer, x *scratch, key, tags []byte, now int64) bool {
	s.gate.Lock()
	defer s.gate.Unlock()
	switch s.journal.match(key, tags) {
	case 2:
		return false
	case 1:
		x.it.ExpiresMs = min(x.it.ExpiresMs, s.journal.softAt)
		if deadline(x.it.StoredMs, x.it.ExpiresMs, x.it.SWR, x.it.SIE, x.it.Flags, x.it.ETag != "" || x.it.LastModified != "", s.graceMs) <= now {
			return false
		}
	}
	if s.refillEmpty && s.hotPuts.Load() == s.refillPuts {
		return w.Put(&x.it) == nil
	}
	return s.putHotLocked(w, x)
}

// putHotLocked puts x's item into w unless w holds the same or a newer
// version. The caller holds the gate exclusively.
func (s *Store) putHotLocked(w *shm.Writer, x *scratch) bool {
	e, out, ok := w.GetStale(x.sbuf[:0], x.it.Key)
	x.sbuf = out
	if ok && e.StoredMs >= x.it.StoredMs {
		return false
	}
	return w.Put(&x.it) == nil
}

// promote moves key's entry from the store into shared memory. It reports
// whether w now holds it.
func (s *Store) promote(w *shm.Writer, key []byte, nowMs int64) bool {
	x := scratchPool.Get().(*scratch)
	defer scratchPool.Put(x)
	for try := 0; try < 2; try++ {
		rec, v, gen, ok := s.fetch(key, x.rec[:0], nowMs)
		x.rec = rec
		if !ok {
			s.c.misses.Add(1)
			return false
		}
		var err error
		x.body, err = decodeBody(s.dec, x.body[:0], &v)
		if err != nil {
			s.c.corrupt.Add(1)
			s.c.misses.Add(1)
			s.queueDrop(key, le.Uint64(rec[rSum:]), false)
			return false
		}
		x.fill(key, &v, x.body)
		s.gate.Lock()
		if s.invGen != gen || !s.usable() {
			// An invalidation came in since the read: read again.
			s.gate.Unlock()
			continue
		}
		s.hotPuts.Add(1)
		put := s.putHotLocked(w, x)
		s.gate.Unlock()
		x.release()
		if !put {
			_, _, there := w.GetStale(nil, key)
			return there
		}
		s.c.hits.Add(1)
		s.c.promoted.Add(1)
		s.noteUse(key, nowMs)
		return true
	}
	s.c.misses.Add(1)
	return false
}

// scratch holds the reusable buffers that turn a record into an shm.Item
// without allocating: the item's strings, but for tags, alias the record
// and body buffers, which is safe because shm.Writer.Put copies them
// before it returns and the item is never kept. Tags are real strings:
// the writer keeps them in its tag index.
type scratch struct {
	it   shm.Item
	hdr  http.Header
	vals []string
	vary []string
	tags []string
	body []byte
	rec  []byte
	sbuf []byte
	hv   int // header block length
	tagm map[string]string
}

// maxInterned bounds a scratch's table of tag strings.
const maxInterned = 1 << 14

// intern returns b as a string, sharing the memory of equal tags seen
// before (surrogate keys repeat across many entries).
func (x *scratch) intern(b []byte) string {
	if s, ok := x.tagm[string(b)]; ok {
		return s
	}
	s := string(b)
	if x.tagm == nil {
		x.tagm = map[string]string{}
	}
	if len(x.tagm) < maxInterned {
		x.tagm[s] = s
	}
	return s
}

var scratchPool = sync.Pool{New: func() any { return newScratch() }}

func newScratch() *scratch { return &scratch{hdr: make(http.Header, 16)} }

func ustr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (x *scratch) fill(key []byte, v *recView, body []byte) {
	clear(x.hdr)
	x.vals = x.vals[:0]
	for h := shm.NewHeaderIter(v.hdrs); h.Next(); {
		name, val := ustr(h.Name()), ustr(h.Value())
		if cur, ok := x.hdr[name]; ok {
			x.hdr[name] = append(cur, val)
			continue
		}
		x.vals = append(x.vals, val)
		n := len(x.vals)
		x.hdr[name] = x.vals[n-1 : n : n]
	}
	x.vary = x.vary[:0]
	for it := newStrIter(v.vary); it.next(); {
		x.vary = append(x.vary, ustr(it.cur))
	}
	x.tags = x.tags[:0]
	for it := newStrIter(v.tags); it.next(); {
		// Not ustr: shm.Writer keeps tags as keys of its tag index.
		x.tags = append(x.tags, x.intern(it.cur))
	}
	x.it = shm.Item{
		Key: key, Status: v.status, Header: x.hdr, Body: body,
		StoredMs: v.storedMs, ExpiresMs: v.expiresMs, InitialAge: v.initialAge, SWR: v.swr, SIE: v.sie,
		Flags: v.flags, ETag: ustr(v.etag), LastModified: ustr(v.lastMod), Vary: x.vary, Tags: x.tags,
	}
	x.hv = len(v.hdrs)
}

// release drops the references the item holds into caller memory.
func (x *scratch) release() {
	x.it = shm.Item{}
	clear(x.hdr)
}

// shmSize estimates the arena bytes the item takes in shared memory.
func (x *scratch) shmSize() int64 {
	n := shm.EntryHeaderSize + len(x.it.Key) + x.hv + len(x.it.Body) + len(x.it.ETag) + len(x.it.LastModified)
	for _, s := range x.it.Vary {
		n += 2 + len(s)
	}
	for _, s := range x.it.Tags {
		n += 2 + len(s)
	}
	return int64((n + shm.EntryAlign - 1) &^ (shm.EntryAlign - 1))
}
