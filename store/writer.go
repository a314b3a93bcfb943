package store

import (
	"bytes"
	"errors"
	"runtime"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

type opKind uint8

const (
	opPut   opKind = iota + 1 // write a record
	opInval                   // apply an invalidation
	opSeq                     // set the applied sequence
	opDrop                    // lazily remove an expired or corrupt record
	opFlush                   // commit, sync and answer done
)

type op struct {
	kind     opKind
	key      []byte
	buf      *[]byte // opPut: the record, raw body, unsealed
	compress bool
	at       int64 // opPut: when Put was called (unix ms), its first use
	inv      inval
	id       uint64 // opInval: its pending id
	seq      uint64
	sum      uint64
	corrupt  bool
	done     chan error
}

// ovl is an entry's state as the current batch leaves it.
type ovl struct {
	in      info
	present bool
}

// writer is the state of the one goroutine that writes to Pebble.
type writer struct {
	s  *Store
	db *pebble.DB
	b  *pebble.Batch
	n  int // operations in b

	overlay  map[string]ovl
	dEntries int64
	dBytes   int64
	seq      uint64
	seqSet   bool
	invID    uint64
	puts     uint64
	invs     uint64
	dirty    bool // commits since the last sync
	// sinceCheck counts the bytes committed since the last free-space
	// check: the volume is checked every MiB, not only every second.
	sinceCheck int64

	enc   *zstd.Encoder
	zbuf  []byte
	zrec  []byte
	kbuf  []byte
	ibuf  []byte
	sbuf  []byte
	spare []op
}

func (s *Store) run() {
	defer close(s.done)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithNoEntropyCompression(!s.opts.EntropyCoding))
	defer enc.Close()
	w := &writer{s: s, db: s.db, b: s.db.NewBatch(), overlay: map[string]ovl{}, enc: enc}
	sweep := time.NewTicker(s.opts.SweepInterval)
	uses := time.NewTicker(s.opts.UseFlushInterval)
	syncT := time.NewTicker(s.opts.SyncInterval)
	disk := time.NewTicker(time.Second)
	gov := newGovernor(s)
	govT := time.NewTicker(governorPeriod)
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	defer func() {
		sweep.Stop()
		uses.Stop()
		syncT.Stop()
		disk.Stop()
		govT.Stop()
		delay.Stop()
		w.b.Close()
	}()
	for {
		select {
		case <-s.notify:
			if s.opts.BatchDelay > 0 && !s.batchReady() {
				delay.Reset(s.opts.BatchDelay)
				select {
				case <-delay.C:
				case <-s.urgent:
					delay.Stop()
				case <-s.stop:
					delay.Stop()
				}
			}
			w.drain()
		case <-sweep.C:
			w.sweep()
		case <-uses.C:
			w.flushUses()
		case <-syncT.C:
			w.sync()
		case <-disk.C:
			w.checkDisk()
		case <-govT.C:
			gov.tick()
		case <-s.stop:
			w.drain()
			w.flushUses()
			w.sync()
			return
		}
	}
}

// batchReady reports whether a full batch (or a flush) is waiting.
func (s *Store) batchReady() bool {
	select {
	case <-s.urgent:
		return true
	default:
	}
	s.qmu.Lock()
	n := len(s.queue)
	s.qmu.Unlock()
	return n >= s.opts.BatchSize
}

// drain applies the queue until it is empty.
func (w *writer) drain() {
	s := w.s
	for {
		s.qmu.Lock()
		ops := s.queue
		s.queue = w.spare[:0]
		s.qPuts, s.qBytes, s.qInval = 0, 0, 0
		s.qmu.Unlock()
		if len(ops) == 0 {
			w.spare = ops
			return
		}
		t0 := time.Now()
		w.apply(ops)
		s.busyNs.Add(int64(time.Since(t0)))
		clear(ops)
		w.spare = ops[:0]
	}
}

func (w *writer) apply(ops []op) {
	s := w.s
	for i := range ops {
		o := &ops[i]
		if s.failed.Load() {
			w.discard(o)
			continue
		}
		switch o.kind {
		case opPut:
			w.put(o)
			putRecBuf(o.buf)
			o.buf = nil
		case opDrop:
			w.drop(o)
		case opSeq:
			w.seq, w.seqSet = o.seq, true
		case opInval:
			w.invalidate(&o.inv)
			w.invID = o.id
			w.invs++
		case opFlush:
			w.commit(true)
			o.done <- s.Err()
			continue
		}
		// Keep an invalidation and the sequence number that follows it
		// in one batch.
		if w.n >= s.opts.BatchSize && !(i+1 < len(ops) && ops[i+1].kind == opSeq) {
			w.commit(false)
		}
	}
	w.commit(false)
	w.evict()
}

func (w *writer) discard(o *op) {
	switch o.kind {
	case opPut:
		w.s.c.droppedNoSpace.Add(1)
		putRecBuf(o.buf)
		o.buf = nil
	case opFlush:
		o.done <- w.s.Err()
	}
}

// getInfo returns key's info as the batch leaves it.
func (w *writer) getInfo(key []byte) (info, bool) {
	if o, ok := w.overlay[string(key)]; ok {
		return o.in, o.present
	}
	w.kbuf = appendInfoKey(w.kbuf[:0], key)
	v, closer, err := w.db.Get(w.kbuf)
	if err != nil {
		if !errors.Is(err, pebble.ErrNotFound) {
			w.s.log.Warn("zerohop store: reading entry info failed", "err", err)
		}
		return info{}, false
	}
	in, ok := decodeInfo(v)
	if ok {
		in.tags = append([]byte(nil), in.tags...)
	}
	closer.Close()
	if !ok {
		// A damaged info: remove the record with it; index entries left
		// behind are dropped when a sweep or an eviction meets them.
		w.s.c.corrupt.Add(1)
		w.b.Delete(w.kbuf, nil)
		w.kbuf = appendRecKey(w.kbuf[:0], key)
		w.b.Delete(w.kbuf, nil)
		w.n += 2
		return info{}, false
	}
	return in, true
}

func (w *writer) setOverlay(key []byte, in info, present bool) {
	w.overlay[string(key)] = ovl{in: in, present: present}
}

// deleteIndexes removes the order, expiry and tag keys of an entry.
func (w *writer) deleteIndexes(key []byte, in *info) {
	w.kbuf = appendOrderKey(w.kbuf[:0], in.score, key)
	w.b.Delete(w.kbuf, nil)
	w.kbuf = appendExpKey(w.kbuf[:0], in.deadline, key)
	w.b.Delete(w.kbuf, nil)
	w.n += 2
	for it := newStrIter(in.tags); it.next(); {
		w.kbuf = appendTagKey(w.kbuf[:0], string(it.cur), key)
		w.b.Delete(w.kbuf, nil)
		w.n++
	}
}

// deleteEntry removes an entry and its indexes.
func (w *writer) deleteEntry(key []byte, in *info) {
	w.deleteIndexes(key, in)
	w.kbuf = appendRecKey(w.kbuf[:0], key)
	w.b.Delete(w.kbuf, nil)
	w.kbuf = appendInfoKey(w.kbuf[:0], key)
	w.b.Delete(w.kbuf, nil)
	w.n += 2
	w.dEntries--
	w.dBytes -= entryBytes(len(key), in.size, in.tags)
	w.setOverlay(key, info{}, false)
	w.s.keys.del(keyHash(key))
}

// writeEntry sets an entry's record, info and indexes.
func (w *writer) writeEntry(key, rec []byte, in *info) {
	w.kbuf = appendRecKey(w.kbuf[:0], key)
	w.b.Set(w.kbuf, rec, nil)
	w.kbuf = appendInfoKey(w.kbuf[:0], key)
	w.ibuf = in.append(w.ibuf[:0])
	w.b.Set(w.kbuf, w.ibuf, nil)
	w.kbuf = appendOrderKey(w.kbuf[:0], in.score, key)
	w.ibuf = appendOrderValue(w.ibuf[:0], in.deadline, in.hot)
	w.b.Set(w.kbuf, w.ibuf, nil)
	w.kbuf = appendExpKey(w.kbuf[:0], in.deadline, key)
	w.b.Set(w.kbuf, nil, nil)
	w.n += 4
	for it := newStrIter(in.tags); it.next(); {
		w.kbuf = appendTagKey(w.kbuf[:0], string(it.cur), key)
		w.b.Set(w.kbuf, nil, nil)
		w.n++
	}
	w.setOverlay(key, *in, true)
	w.s.keys.add(keyHash(key))
}

func (w *writer) put(o *op) {
	s := w.s
	rec := *o.buf
	v, err := splitRecord(rec)
	if err != nil {
		s.c.rejected.Add(1)
		return
	}
	now := s.nowMs()
	dl := v.deadline(s.graceMs)
	old, had := w.getInfo(o.key)
	if dl <= now || s.lowSpace.Load() {
		// Dead on arrival, or no room: the older version must not
		// outlive the newer one the shared-memory tier now has.
		if had {
			w.deleteEntry(o.key, &old)
		}
		if dl > now {
			s.c.droppedNoSpace.Add(1)
		}
		return
	}
	bodyLen := len(v.body)
	if o.compress {
		rec = w.compress(rec, &v)
	}
	if rec[rCodec] == codecZstd {
		s.c.compressed.Add(1)
	} else {
		s.c.raw.Add(1)
	}
	s.c.bodyIn.Add(uint64(bodyLen))
	s.c.bodyStored.Add(uint64(le.Uint32(rec[rStoredLen:])))
	sum := seal(o.key, rec)
	in := info{size: uint32(len(rec)), hot: v.hotSize(len(o.key)), deadline: dl, lastUse: o.at, uses: 1, sum: sum,
		tags: append([]byte(nil), v.tags...)}
	if had {
		in.uses = old.uses + 1
		if in.uses == 0 {
			in.uses--
		}
		in.lastUse = max(o.at, old.lastUse)
		w.deleteIndexes(o.key, &old)
		w.dBytes -= entryBytes(len(o.key), old.size, old.tags)
	} else {
		w.dEntries++
	}
	in.score = score(in.lastUse, in.uses, s.weightMs)
	w.writeEntry(o.key, rec, &in)
	w.dBytes += entryBytes(len(o.key), in.size, in.tags)
	w.puts++
}

// compress replaces rec's body with its zstd compression if that saves at
// least an eighth.
func (w *writer) compress(rec []byte, v *recView) []byte {
	w.zbuf = w.enc.EncodeAll(v.body, w.zbuf[:0])
	if len(w.zbuf) > len(v.body)-len(v.body)/8 {
		return rec
	}
	head := len(rec) - len(v.body)
	out := append(w.zrec[:0], rec[:head]...)
	out = append(out, w.zbuf...)
	out[rCodec] = codecZstd
	le.PutUint32(out[rStoredLen:], uint32(len(w.zbuf)))
	w.zrec = out
	return out
}

// drop removes a record a reader found expired or corrupt, if it is still
// the same one.
func (w *writer) drop(o *op) {
	s := w.s
	in, had := w.getInfo(o.key)
	if !o.corrupt {
		if had && in.sum == o.sum && in.deadline <= s.nowMs() {
			w.deleteEntry(o.key, &in)
			s.c.expired.Add(1)
		}
		return
	}
	w.kbuf = appendRecKey(w.kbuf[:0], o.key)
	v, closer, err := w.db.Get(w.kbuf)
	if err != nil {
		return
	}
	same := xxhash.Sum64(v) == o.sum
	_, perr := parseRecord(o.key, v)
	closer.Close()
	if !same || perr == nil {
		return
	}
	if had {
		w.deleteEntry(o.key, &in)
	} else {
		w.kbuf = appendRecKey(w.kbuf[:0], o.key)
		w.b.Delete(w.kbuf, nil)
		w.n++
	}
}

// commit writes the batch (with the counters and the applied sequence),
// then lets reads forget the invalidations it completed.
func (w *writer) commit(sync bool) {
	s := w.s
	if w.n == 0 && !w.seqSet && w.invID == 0 && w.dEntries == 0 && w.dBytes == 0 {
		if sync {
			w.sync()
		}
		return
	}
	if s.failed.Load() {
		w.reset()
		return
	}
	if w.dEntries != 0 || w.dBytes != 0 {
		var c [16]byte
		le.PutUint64(c[:], uint64(max(s.entries.Load()+w.dEntries, 0)))
		le.PutUint64(c[8:], uint64(max(s.liveBytes.Load()+w.dBytes, 0)))
		w.b.Set(keyCounters, c[:], nil)
	}
	if w.seqSet {
		var c [8]byte
		le.PutUint64(c[:], w.seq)
		w.b.Set(keySeq, c[:], nil)
	}
	wo := pebble.NoSync
	if sync && !s.testNoSync {
		wo = pebble.Sync
	}
	w.sinceCheck += int64(w.b.Len())
	err := w.b.Commit(wo)
	if err == nil && s.failed.Load() {
		err = s.Err()
	}
	if err != nil {
		s.fail(err)
		w.reset()
		return
	}
	s.c.commits.Add(1)
	if sync {
		s.c.syncs.Add(1)
		w.dirty = false
	} else {
		w.dirty = true
	}
	s.entries.Store(max(s.entries.Load()+w.dEntries, 0))
	s.liveBytes.Store(max(s.liveBytes.Load()+w.dBytes, 0))
	if w.seqSet {
		s.appliedSeq.Store(w.seq)
	}
	if w.sinceCheck >= 1<<20 {
		w.sinceCheck = 0
		w.checkFree()
	}
	s.c.written.Add(w.puts)
	s.c.invalidations.Add(w.invs)
	if w.invID != 0 {
		s.gate.Lock()
		i := 0
		for i < len(s.pend) && s.pend[i].id <= w.invID {
			i++
		}
		s.pend = append(s.pend[:0], s.pend[i:]...)
		f := &filter{}
		for j := range s.pend {
			f.add(&s.pend[j].inv)
		}
		s.pendF = f
		s.gate.Unlock()
	}
	w.reset()
}

func (w *writer) reset() {
	w.b.Close()
	w.b = w.db.NewBatch()
	w.n = 0
	clear(w.overlay)
	w.dEntries, w.dBytes = 0, 0
	w.seqSet, w.invID, w.puts, w.invs = false, 0, 0, 0
}

// sync makes committed writes durable.
func (w *writer) sync() {
	s := w.s
	if !w.dirty || s.failed.Load() || s.testNoSync {
		return
	}
	if err := w.db.LogData(nil, pebble.Sync); err != nil {
		s.fail(err)
		return
	}
	w.dirty = false
	s.c.syncs.Add(1)
}

// checkDisk refreshes the free-space state and Pebble's disk use.
func (w *writer) checkDisk() {
	s := w.s
	if s.failed.Load() {
		return
	}
	if m := w.db.Metrics(); m != nil {
		s.diskBytes.Store(int64(m.DiskSpaceUsage()))
	}
	w.checkFree()
	w.evict()
}

// checkFree sets the low-space state from the volume's free space.
func (w *writer) checkFree() {
	s := w.s
	if s.opts.MinFree <= 0 {
		return
	}
	free, ok := freeSpace(s.dir)
	if !ok {
		return
	}
	low := free < s.opts.MinFree
	if low != s.lowSpace.Load() {
		if low {
			s.log.Warn("zerohop store: volume under MinFree; dropping writes until space frees", "free", free, "min_free", s.opts.MinFree)
		} else {
			s.log.Info("zerohop store: volume has room again; writing resumes", "free", free)
		}
		s.lowSpace.Store(low)
	}
}

// chunk commits the batch every so many operations during long scans.
func (w *writer) chunk() {
	if w.n >= 4*w.s.opts.BatchSize {
		w.commit(false)
	}
}

// invalidate applies inv to Pebble. Everything queued before it is
// committed first, so the scans below see it.
func (w *writer) invalidate(inv *inval) {
	w.commit(false)
	s := w.s
	soft := inv.soft()
	switch inv.p.Kind {
	case invalidate.KindKey:
		if inv.exact {
			s.c.visited.Add(1)
			if in, ok := w.getInfo(inv.key); ok {
				w.purgeOne(inv.key, &in, soft, inv.at)
			}
			return
		}
		p := appendInfoKey(nil, inv.key)
		w.scan(p, prefixEnd(p), func(key []byte, in *info) { w.purgeOne(key, in, soft, inv.at) })
	case invalidate.KindPrefix:
		w.purgePrefix(inv)
	case invalidate.KindTag:
		w.purgeTag(inv.p.Tag, soft, inv.at)
	case invalidate.KindAll:
		if soft {
			w.scan([]byte{pInfo}, []byte{pInfo + 1}, func(key []byte, in *info) { w.purgeOne(key, in, true, inv.at) })
			return
		}
		w.b.DeleteRange([]byte{pRec}, []byte{pEnd}, nil)
		w.n++
		n := s.entries.Load()
		s.c.deleted.Add(uint64(max(n, 0)))
		w.dEntries = -n
		w.dBytes = -s.liveBytes.Load()
		clear(w.overlay)
		s.keys.reset()
		w.commit(false)
	}
}

// scan calls f for each entry whose info key is in [lo, hi), committing in
// chunks. f may delete or rewrite the entry.
func (w *writer) scan(lo, hi []byte, f func(key []byte, in *info)) {
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		w.s.log.Warn("zerohop store: scan failed", "err", err)
		return
	}
	defer it.Close()
	var key []byte
	for ok := it.First(); ok; ok = it.Next() {
		key = append(key[:0], it.Key()[1:]...)
		w.s.c.visited.Add(1)
		in, ok := decodeInfo(it.Value())
		if !ok {
			w.s.c.corrupt.Add(1)
			w.b.Delete(it.Key(), nil)
			w.n++
			continue
		}
		in.tags = append([]byte(nil), in.tags...)
		f(key, &in)
		w.chunk()
	}
}

// purgePrefix walks, for each method present, the keys of scheme and host
// (a skip scan: cost proportional to the host's entries plus the number of
// distinct methods), and purges those whose target has the prefix.
func (w *writer) purgePrefix(inv *inval) {
	scheme, host := hostPart(inv.p.Scheme, inv.p.Host)
	target := []byte(inv.p.Target)
	var sh []byte
	sh = appendStr16(sh, string(scheme))
	sh = appendStr16(sh, string(host))
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pInfo}, UpperBound: []byte{pInfo + 1}})
	if err != nil {
		return
	}
	defer it.Close()
	var hp, key, next []byte
	next = []byte{pInfo}
	for it.SeekGE(next) {
		k := it.Key()[1:]
		if len(k) < 2 || len(k) < 2+int(le.Uint16(k)) {
			next = prefixEnd(it.Key())
			continue
		}
		mlen := 2 + int(le.Uint16(k))
		hp = append(append(append(hp[:0], pInfo), k[:mlen]...), sh...)
		next = prefixEnd(append([]byte{pInfo}, k[:mlen]...))
		for ok := it.SeekGE(hp); ok && bytes.HasPrefix(it.Key(), hp); ok = it.Next() {
			key = append(key[:0], it.Key()[1:]...)
			w.s.c.visited.Add(1)
			p, ok := shm.SplitKey(key)
			if !ok || !bytes.HasPrefix(p.Target, target) {
				continue
			}
			in, ok := decodeInfo(it.Value())
			if !ok {
				continue
			}
			in.tags = append([]byte(nil), in.tags...)
			w.purgeOne(key, &in, inv.soft(), inv.at)
			w.chunk()
		}
		if next == nil {
			return
		}
	}
}

// purgeTag walks the tag index: cost proportional to the tagged entries.
func (w *writer) purgeTag(tag string, soft bool, at int64) {
	p := appendTagPrefix(nil, tag)
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return
	}
	defer it.Close()
	var key []byte
	for ok := it.First(); ok; ok = it.Next() {
		key = append(key[:0], it.Key()[len(p):]...)
		w.s.c.visited.Add(1)
		in, had := w.getInfo(key)
		if !had || !hasTag(in.tags, tag) {
			w.b.Delete(it.Key(), nil) // left behind by a damaged entry
			w.n++
			continue
		}
		w.purgeOne(key, &in, soft, at)
		w.chunk()
	}
}

func hasTag(block []byte, tag string) bool {
	for it := newStrIter(block); it.next(); {
		if string(it.cur) == tag {
			return true
		}
	}
	return false
}

// purgeOne removes an entry, or marks it stale from at on (its expiry
// lowered to at), so that only its stale windows, counted from the purge,
// remain.
func (w *writer) purgeOne(key []byte, in *info, soft bool, at int64) {
	s := w.s
	if !soft {
		w.deleteEntry(key, in)
		s.c.deleted.Add(1)
		return
	}
	w.kbuf = appendRecKey(w.kbuf[:0], key)
	v, closer, err := w.db.Get(w.kbuf)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			w.deleteEntry(key, in)
		}
		return
	}
	w.sbuf = append(w.sbuf[:0], v...)
	closer.Close()
	rec := w.sbuf
	rv, err := parseRecord(key, rec)
	if err != nil {
		s.c.corrupt.Add(1)
		w.deleteEntry(key, in)
		return
	}
	if rv.expiresMs <= at {
		return // already stale by then
	}
	le.PutUint64(rec[rExpires:], uint64(at))
	rv.expiresMs = at
	dl := rv.deadline(s.graceMs)
	if dl <= s.nowMs() {
		w.deleteEntry(key, in)
		s.c.deleted.Add(1)
		return
	}
	nin := *in
	nin.sum = seal(key, rec)
	nin.deadline = dl
	nin.size = uint32(len(rec))
	w.deleteIndexes(key, in)
	w.writeEntry(key, rec, &nin)
	s.c.softened.Add(1)
}

// sweep removes the entries whose deadline has passed, walking the expiry
// index up to now: cost proportional to the expired entries.
func (w *writer) sweep() {
	s := w.s
	if s.failed.Load() {
		return
	}
	w.commit(false)
	hi := appendExpKey(nil, s.nowMs()+1, nil)
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pExp}, UpperBound: hi})
	if err != nil {
		return
	}
	var key []byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		dl := int64(be.Uint64(k[1:9]))
		key = append(key[:0], k[9:]...)
		in, had := w.getInfo(key)
		if had && in.deadline == dl {
			w.deleteEntry(key, &in)
			n++
		} else {
			w.b.Delete(k, nil)
			w.n++
		}
		w.chunk()
	}
	it.Close()
	w.commit(false)
	if n > 0 {
		s.c.expired.Add(uint64(n))
		s.log.Debug("zerohop store: swept expired entries", "count", n)
	}
}

// evict removes the lowest-score entries while the store is over its disk
// bound.
func (w *writer) evict() {
	s := w.s
	if s.opts.MaxDisk <= 0 || s.failed.Load() {
		return
	}
	high, low := s.opts.MaxDisk*3/4, s.opts.MaxDisk*5/8
	live := s.liveBytes.Load()
	physical := s.diskBytes.Load() > s.opts.MaxDisk
	if live <= high && !physical {
		return
	}
	target := low
	if live <= high {
		target = min(live*7/8, low)
	}
	w.commit(false)
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pOrder}, UpperBound: []byte{pOrder + 1}})
	if err != nil {
		return
	}
	var key []byte
	n := 0
	for ok := it.Last(); ok && s.liveBytes.Load()+w.dBytes > target; ok = it.Prev() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		sc := int64(^be.Uint64(k[1:9]))
		key = append(key[:0], k[9:]...)
		in, had := w.getInfo(key)
		if had && in.score == sc {
			w.deleteEntry(key, &in)
			n++
		} else {
			w.b.Delete(k, nil)
			w.n++
		}
		w.chunk()
	}
	it.Close()
	w.commit(false)
	if n > 0 {
		s.c.evicted.Add(uint64(n))
		s.log.Debug("zerohop store: evicted entries over the disk bound", "count", n,
			"live_bytes", s.liveBytes.Load(), "max_disk", s.opts.MaxDisk)
	}
	if physical {
		// Deletions free space only once compacted.
		s.diskBytes.Store(0)
	}
}

// flushUses writes the uses recorded since the last flush into the info
// and the order index.
func (w *writer) flushUses() {
	s := w.s
	s.umu.Lock()
	m := s.uses
	if len(m) == 0 {
		s.umu.Unlock()
		return
	}
	s.uses = make(map[string]use, len(m))
	s.umu.Unlock()
	if s.failed.Load() {
		return
	}
	w.commit(false)
	for k, u := range m {
		key := []byte(k)
		in, ok := w.getInfo(key)
		if !ok {
			continue
		}
		nin := in
		nin.uses += u.n
		if nin.uses < in.uses {
			nin.uses = ^uint32(0)
		}
		nin.lastUse = max(in.lastUse, u.last)
		nin.score = score(nin.lastUse, nin.uses, s.weightMs)
		if nin.score != in.score {
			w.kbuf = appendOrderKey(w.kbuf[:0], in.score, key)
			w.b.Delete(w.kbuf, nil)
			w.kbuf = appendOrderKey(w.kbuf[:0], nin.score, key)
			w.ibuf = appendOrderValue(w.ibuf[:0], nin.deadline, nin.hot)
			w.b.Set(w.kbuf, w.ibuf, nil)
			w.n += 2
		}
		w.kbuf = appendInfoKey(w.kbuf[:0], key)
		w.ibuf = nin.append(w.ibuf[:0])
		w.b.Set(w.kbuf, w.ibuf, nil)
		w.n++
		w.setOverlay(key, nin, true)
		w.chunk()
	}
	w.commit(false)
}

// governorPeriod is how often the CPU governor looks at the writer.
const governorPeriod = 100 * time.Millisecond

// governor sheds Puts while the process is CPU-bound and the writer has
// used more than its CPUShare of the process's CPU capacity: persistence
// then yields to the requests instead of slowing them down.
type governor struct {
	s    *Store
	wall time.Time
	cpu  time.Duration
	busy int64
}

func newGovernor(s *Store) *governor {
	return &governor{s: s, wall: time.Now(), cpu: processCPU(), busy: s.busyNs.Load()}
}

func (g *governor) tick() {
	s := g.s
	if s.opts.CPUShare < 0 {
		return
	}
	now, cpu, busy := time.Now(), processCPU(), s.busyNs.Load()
	capacity := float64(now.Sub(g.wall)) * float64(runtime.GOMAXPROCS(0))
	if capacity <= 0 {
		return
	}
	used := float64(cpu-g.cpu) / capacity
	// The writer's own time, with Pebble's flushes and compactions, which
	// run on other goroutines and cost about as much again.
	share := 2 * float64(busy-g.busy) / capacity
	g.wall, g.cpu, g.busy = now, cpu, busy
	keep := float64(s.keep.Load()) / keepOne
	switch {
	case used >= 0.65 && share > s.opts.CPUShare:
		// Saturated, and the writer over its share: keep fewer Puts.
		keep = max(keep*s.opts.CPUShare/share, 1.0/1024)
	case keep < 1:
		keep = min(keep*1.25+1.0/1024, 1)
	}
	s.keep.Store(uint64(keep * keepOne))
	shed := keep < 1
	if shed != s.shedding.Load() {
		s.shedding.Store(shed)
		s.log.Debug("zerohop store: CPU governor", "shedding", shed, "process_cpu", used, "writer_share", share)
	}
}

// keepOne is Store.keep's scale: the share of Puts kept, in 1/2^32.
const keepOne = 1 << 32
