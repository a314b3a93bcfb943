package shm

import (
	"bytes"
	"runtime"
	"sync/atomic"
)

// maxSeqTries bounds how often a reader re-reads a bucket whose sequence
// counter moved or stayed odd. A writer that died mid-update leaves the
// counter odd forever; the bound turns that into a counted miss, not a spin.
const maxSeqTries = 16

// outcome is why a lookup ended.
type outcome uint8

const (
	outHit outcome = iota
	outMiss
	outExpired
	outTorn      // bucket stayed unstable for maxSeqTries
	outOverrun   // the entry's region was reclaimed before or during the copy
	outCorrupt   // the copy failed verification
	outCollision // same 64-bit hash, different key

	// Set by Reader.get around the lookup, never by view.lookup.
	outWriterStale // the writer is not alive: not served
	outFault       // a memory fault (truncated file) became a miss
)

// readCounters are a process's own lookup statistics. Readers never write to
// the mapping, so these live in process memory; each sits on its own cache
// line so goroutines counting different outcomes do not contend.
type readCounters struct {
	hits, misses, expired, tornRetries, torn, overruns, corrupt, collisions, writerStale, faults, remaps paddedCounter
}

type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// snapshot reads the slot holding tag in bucket b under the bucket's
// sequence counter. It returns found=false when the bucket is stable and
// holds no such tag, and torn=true when the bucket never became stable.
func (v *view) snapshot(b int, tag uint64, c *readCounters) (pos, meta uint64, found, torn bool) {
	m := v.data
	seq := u32at(m, b+offBucketSeq)
	for try := 0; try < maxSeqTries; try++ {
		s := seq.Load()
		if s&1 != 0 {
			c.tornRetries.Add(1)
			if try > 2 {
				runtime.Gosched()
			}
			continue
		}
		found = false
		for i := 0; i < SlotsPerBucket; i++ {
			so := b + offSlots + i*SlotSize
			if u64at(m, so+offSlotTag).Load() == tag {
				pos = u64at(m, so+offSlotPos).Load()
				meta = u64at(m, so+offSlotMeta).Load()
				found = true
				break
			}
		}
		if seq.Load() == s {
			return pos, meta, found, false
		}
		c.tornRetries.Add(1)
	}
	return 0, 0, false, true
}

// lookup finds key and copies its entry into dst (grown if too small). If
// freshAt is non-zero only an entry fresh at that unix-ms time is a hit.
// On a hit it fills *e, which aliases the returned buffer. On a miss *e is
// either left as it was or zeroed.
func (v *view) lookup(e *Entry, dst, key []byte, freshAt int64, c *readCounters) ([]byte, outcome) {
	g := &v.geo
	h := keyHash(key, g.seed)
	tag := slotTag(h)
	b1, b2 := v.buckets(h)
	pos, meta, found, torn := v.snapshot(b1, tag, c)
	if !found && !torn {
		pos, meta, found, torn = v.snapshot(b2, tag, c)
	}
	if torn {
		return dst, outTorn
	}
	if !found {
		return dst, outMiss
	}
	n := meta & 0xffffffff
	freshUntilMs := int64(meta>>32) * 1000
	if freshAt != 0 && freshAt >= freshUntilMs {
		return dst, outExpired
	}
	tail := v.tail.Load()
	if pos < tail {
		return dst, outOverrun
	}
	// A slot that passed the seqlock can still be garbage if the file is
	// corrupt: keep the copy inside one region of the arena.
	if n < EntryHeaderSize || n > g.regionSize || n%EntryAlign != 0 || pos%EntryAlign != 0 ||
		g.regionDiv.mod(pos)+n > g.regionSize || pos-tail >= g.arenaLen {
		return dst, outCorrupt
	}
	if uint64(cap(dst)) < n {
		dst = make([]byte, n)
	}
	buf := dst[:n]
	off := v.phys(pos)
	copy(buf, v.data[off:off+n])
	// The writer moves the horizon before it reuses a region, so a copy
	// that raced with reuse shows up here; the checksum catches the rest.
	if v.tail.Load() > pos {
		return dst, outOverrun
	}
	if !decodeEntryInto(e, buf, pos, h, g.seed) {
		return dst, outCorrupt
	}
	if !bytes.Equal(e.Key, key) {
		*e = Entry{}
		return dst, outCollision
	}
	if freshUntilMs < e.ExpiresMs {
		e.ExpiresMs = freshUntilMs // soft-purged: the slot says stale
	}
	if freshAt != 0 && !e.Fresh(freshAt) {
		*e = Entry{}
		return dst, outExpired
	}
	return dst, outHit
}

func (c *readCounters) count(o outcome) {
	switch o {
	case outHit:
		c.hits.Add(1)
		return
	case outExpired:
		c.expired.Add(1)
	case outTorn:
		c.torn.Add(1)
	case outOverrun:
		c.overruns.Add(1)
	case outCorrupt:
		c.corrupt.Add(1)
	case outCollision:
		c.collisions.Add(1)
	case outWriterStale:
		c.writerStale.Add(1)
	case outFault:
		c.faults.Add(1)
	}
	c.misses.Add(1)
}

// ReadStats are one process's lookup statistics.
type ReadStats struct {
	Hits        uint64
	Misses      uint64 // every lookup that was not a hit, whatever the cause
	Expired     uint64 // found but not fresh
	TornRetries uint64 // bucket re-reads because the writer was mid-update
	Torn        uint64 // lookups that gave up on an unstable bucket
	Overruns    uint64 // entry reclaimed before or during the copy
	Corrupt     uint64 // copies that failed verification
	Collisions  uint64 // same hash, different key
	WriterStale uint64 // lookups refused because the writer is not alive
	Faults      uint64 // memory faults caught (truncated or vanished file)
	Remaps      uint64 // times a replaced file was mapped again
}

func (c *readCounters) snapshot() ReadStats {
	return ReadStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Expired: c.expired.Load(),
		TornRetries: c.tornRetries.Load(), Torn: c.torn.Load(), Overruns: c.overruns.Load(),
		Corrupt: c.corrupt.Load(), Collisions: c.collisions.Load(), WriterStale: c.writerStale.Load(),
		Faults: c.faults.Load(), Remaps: c.remaps.Load(),
	}
}
