package shm

import (
	"bytes"
	"path/filepath"
	"time"
)

// The cache file lives on a volume the app can write, so its header and
// index can be damaged behind the writer's back (a stray write, a tool, an
// attacker). A damaged header used to disable the cache silently: a wild
// tail kills every entry, a foreign state word makes readers stop serving,
// a broken layout word makes every new reader refuse the file. The writer
// keeps private copies of every header word it owns and compares them on
// each heartbeat; on a mismatch it rebuilds the file, as it does for an
// unusable file at start. A bucket sequence counter left odd by someone
// else (the writer holds its mutex, so none of its own updates is in
// flight) is repaired the same way adopt does it.

// bucketsPerCheck bounds the index scan of one heartbeat: 4096 buckets
// (512 KiB of index, tens of microseconds under the writer's mutex), so a
// 64 MiB cache is scanned in full every 4 heartbeats (1 s).
const bucketsPerCheck = 4096

// headerLine0 is the prefix of the header that is written once, at create:
// the layout words and their checksum.
const headerLine0 = offState

// Health is what the writer's header checks found.
type Health struct {
	// Healthy is false from the moment a damaged header is noticed until
	// the rebuilt file has passed a check.
	Healthy bool
	// HeaderCorruptions counts damaged headers noticed (each led to a
	// rebuild); Rebuilds counts files rebuilt because of them, and
	// RebuildErrors failed attempts (retried on the next heartbeat).
	HeaderCorruptions, Rebuilds, RebuildErrors uint64
	// BucketsRepaired counts index buckets found with an odd sequence
	// counter (a write in progress by someone else) whose slots were
	// cleared and whose counter was made even again, live or at adoption.
	BucketsRepaired uint64
	// LastProblem describes the last damage found ("" if none).
	LastProblem string
}

// snapshotHeader records the header words the writer owns, after it
// created or adopted the file. Called with mu held (or before the
// heartbeat goroutine starts).
func (w *Writer) snapshotHeader() {
	v := w.v
	copy(w.own.line0[:], w.mm[:headerLine0])
	w.own.tail = v.tail.Load()
	w.own.adoptGen = v.adoptGen.Load()
	w.own.invalSeq = v.invalSeq.Load()
	w.own.invalOff = v.invalOff.Load()
	w.lv.Store(v)
}

// headerProblem compares the mapped header with the writer's own copies
// and names the first difference ("" if none). Called with mu held.
func (w *Writer) headerProblem() (p string) {
	if guard(func() { p = w.headerDiff() }) != nil {
		return "the mapping faults (file truncated)"
	}
	return p
}

func (w *Writer) headerDiff() string {
	v := w.v
	switch {
	case !bytes.Equal(w.mm[:headerLine0], w.own.line0[:]):
		return "layout words changed"
	case State(v.state.Load()) != StateLive:
		return "state word is " + State(v.state.Load()).String() + ", not live"
	case v.head.Load() != w.head:
		return "head changed"
	case v.tail.Load() != w.own.tail:
		return "tail changed"
	case v.adoptGen.Load() != w.own.adoptGen:
		return "adoption generation changed"
	case v.invalSeq.Load() != w.own.invalSeq || v.invalOff.Load() != w.own.invalOff:
		return "published invalidation sequence changed"
	}
	return ""
}

// Health returns what the header checks found so far.
func (w *Writer) Health() Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := Health{
		Healthy:           !w.damaged,
		HeaderCorruptions: w.health.corruptions,
		Rebuilds:          w.health.rebuilds,
		RebuildErrors:     w.health.rebuildErrors,
		BucketsRepaired:   w.health.repaired,
		LastProblem:       w.health.last,
	}
	if !w.closed && !w.damaged {
		// A probe between two heartbeats sees damage at once.
		if p := w.headerProblem(); p != "" {
			w.noticeDamage(p)
			h.Healthy, h.HeaderCorruptions, h.LastProblem = false, w.health.corruptions, p
		}
	}
	return h
}

// noticeDamage marks the file damaged and counts it once.
func (w *Writer) noticeDamage(problem string) {
	w.damaged = true
	w.health.corruptions++
	w.health.last = problem
	w.opts.Logger.Error("zerohop cache: the cache file's header was changed behind the writer's back; rebuilding it",
		"dir", w.dir, "problem", problem)
}

// check runs on every heartbeat with mu held: it rebuilds a damaged file,
// clears a rebuilt file's damage mark once it verifies, and repairs odd
// buckets in the next slice of the index.
func (w *Writer) check() {
	if w.damaged && w.health.rebuiltOK {
		// The rebuilt file has been live for a whole heartbeat.
		if w.headerProblem() == "" {
			w.damaged, w.health.rebuiltOK = false, false
			w.opts.Logger.Info("zerohop cache: rebuilt cache file verified", "dir", w.dir)
			return
		}
		w.health.rebuiltOK = false
	}
	if !w.damaged {
		if p := w.headerProblem(); p != "" {
			w.noticeDamage(p)
		}
	}
	if w.damaged {
		if err := w.rebuild(); err != nil {
			w.health.rebuildErrors++
			w.opts.Logger.Error("zerohop cache: rebuilding the damaged cache file failed; retrying", "dir", w.dir, "err", err)
			return
		}
		w.health.rebuilds++
		w.health.rebuiltOK = true
		return
	}
	guard(w.repairBuckets)
}

// rebuild replaces the damaged file with a new, empty one, as an unusable
// file is replaced at start. Nothing of the old file is trusted, so nothing
// is salvaged. Readers see the old file abandoned and map the new one.
func (w *Writer) rebuild() error {
	old, oldMM := w.v, w.mm
	if err := w.create(filepath.Join(w.dir, FileName), w.want); err != nil {
		return err
	}
	w.tags = newTagIndex(w.tags.limit)
	w.scanAt = 0
	w.snapshotHeader()
	guard(func() { old.state.Store(uint32(StateAbandoned)) })
	// Lookups through Get that loaded the old view may still be copying; a
	// late one faults into a miss at worst.
	time.AfterFunc(unmapGrace, func() { oldMM.Unmap() })
	w.opts.Logger.Warn("zerohop cache: rebuilt the cache file (empty)", "dir", w.dir)
	return nil
}

// unmapGrace is how long a replaced mapping stays mapped for lookups still
// copying from it.
const unmapGrace = 5 * time.Second

// repairBuckets scans the next slice of the index for sequence counters
// left odd by someone else. Called with mu held, under guard.
func (w *Writer) repairBuckets() {
	g := &w.v.geo
	n := uint64(1) << g.bucketLog2
	for k := 0; k < bucketsPerCheck && uint64(k) < n; k++ {
		i := w.scanAt % n
		w.scanAt++
		b := int(g.indexOff + i*BucketSize)
		seq := u32at(w.mm, b+offBucketSeq)
		if seq.Load()&1 == 0 {
			continue
		}
		w.repairBucket(b)
		w.health.repaired++
		w.opts.Logger.Warn("zerohop cache: repaired an index bucket left mid-update by another writer", "dir", w.dir, "bucket", i)
	}
}

// repairBucket clears every slot of bucket b, whose counter is odd, and
// makes the counter even: the slots may be half-written, so none is kept
// (their keys miss and are filled again).
func (w *Writer) repairBucket(b int) {
	for s := 0; s < SlotsPerBucket; s++ {
		so := b + offSlots + s*SlotSize
		if u64at(w.mm, so+offSlotTag).Load() != 0 {
			w.unindexTags(u64at(w.mm, so+offSlotPos).Load())
			w.v.stats[statEntries].Add(^uint64(0))
		}
		w.clearSlot(b, so) // keeps the parity
	}
	u32at(w.mm, b+offBucketSeq).Add(1) // even again
}
