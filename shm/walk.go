package shm

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrNoMapping: the reader has no file mapped (it vanished or was never
// ready).
var ErrNoMapping = errors.New("shm: no cache file mapped")

// Walk calls f with every entry in the cache file, fresh or not, Vary
// markers included, reading the index bucket by bucket under the same
// checks as a lookup (bucket sequence counter, reclaim horizon, checksum,
// key hash). An entry that changes while it is read is skipped, not
// returned torn. ExpiresMs is the slot's when a soft purge made it
// earlier. *e and its slices are valid only during the call (Clone to
// keep one). Walk stops when f returns false. It reads the whole index,
// O(buckets), and never writes: for inspection tools (zerohop keys and
// inspect), not for serving; it counts nothing in Stats.
func (r *Reader) Walk(f func(e *Entry) bool) (skipped int, err error) {
	m := r.cur.Load()
	if m == nil {
		return 0, ErrNoMapping
	}
	var ferr error
	if gerr := guard(func() { skipped = m.walk(f) }); gerr != nil {
		ferr = fmt.Errorf("shm: walk: %w", gerr)
	}
	return skipped, ferr
}

// walk is Walk on one view; it returns how many slots it skipped (torn,
// overrun, corrupt).
func (v *view) walk(f func(e *Entry) bool) (skipped int) {
	g := &v.geo
	var slots [SlotsPerBucket]struct{ tag, pos, meta uint64 }
	var buf []byte
	var e Entry
	for i := uint64(0); i < 1<<g.bucketLog2; i++ {
		b := int(g.indexOff + i*BucketSize)
		seq := u32at(v.data, b+offBucketSeq)
		stable := false
		for try := 0; try < maxSeqTries && !stable; try++ {
			s := seq.Load()
			if s&1 != 0 {
				continue
			}
			for k := range slots {
				so := b + offSlots + k*SlotSize
				slots[k].tag = u64at(v.data, so+offSlotTag).Load()
				slots[k].pos = u64at(v.data, so+offSlotPos).Load()
				slots[k].meta = u64at(v.data, so+offSlotMeta).Load()
			}
			stable = seq.Load() == s
		}
		if !stable {
			skipped++
			continue
		}
		for _, sl := range slots {
			if sl.tag == 0 {
				continue
			}
			var ok bool
			buf, ok = v.entryCopy(&e, buf, sl.tag, sl.pos, sl.meta)
			if !ok {
				skipped++
				continue
			}
			if !f(&e) {
				return skipped
			}
		}
	}
	return skipped
}

// entryCopy copies and verifies the entry a slot points at, as lookup
// does, without knowing its key: the hash comes from the record and must
// match the slot's tag and the record's key.
func (v *view) entryCopy(e *Entry, dst []byte, tag, pos, meta uint64) ([]byte, bool) {
	g := &v.geo
	n := meta & 0xffffffff
	tail := v.tail.Load()
	if pos < tail || n < EntryHeaderSize || n > g.regionSize || n%EntryAlign != 0 || pos%EntryAlign != 0 ||
		g.regionDiv.mod(pos)+n > g.regionSize || pos-tail >= g.arenaLen {
		return dst, false
	}
	if uint64(cap(dst)) < n {
		dst = make([]byte, n)
	}
	buf := dst[:n]
	off := v.phys(pos)
	copy(buf, v.data[off:off+n])
	if v.tail.Load() > pos {
		return dst, false
	}
	h := le.Uint64(buf[eHash:])
	if slotTag(h) != tag || !decodeEntryInto(e, buf, pos, h, g.seed) || keyHash(e.Key, g.seed) != h {
		return dst, false
	}
	if freshUntilMs := int64(meta>>32) * 1000; freshUntilMs < e.ExpiresMs {
		e.ExpiresMs = freshUntilMs
	}
	return dst, true
}

// SameResource reports whether key is primary's resource: the same
// method, scheme, host and target, with any secondary (Vary) part.
func SameResource(key, primary []byte) bool {
	k, ok1 := SplitKey(key)
	p, ok2 := SplitKey(primary)
	return ok1 && ok2 && bytes.Equal(k.Method, p.Method) && bytes.Equal(k.Scheme, p.Scheme) &&
		bytes.Equal(k.Host, p.Host) && bytes.Equal(k.Target, p.Target)
}

// VaryFields decodes the secondary part of a key (KeyParts.Vary); ok is
// false when it is malformed.
func VaryFields(part []byte) (fields []VaryField, ok bool) {
	if len(part) == 0 {
		return nil, true
	}
	if len(part) < 2 {
		return nil, false
	}
	n := int(le.Uint16(part))
	b := part[2:]
	for range n {
		name, rest, ok := cut16(b)
		if !ok || len(rest) < 5 || rest[0] > 1 {
			return nil, false
		}
		present := rest[0] == 1
		rest = rest[1:]
		vl := uint64(le.Uint32(rest))
		if uint64(len(rest)-4) < vl {
			return nil, false
		}
		fields = append(fields, VaryField{Name: string(name), Present: present, Value: string(rest[4 : 4+vl])})
		b = rest[4+vl:]
	}
	return fields, len(b) == 0
}
