package shm

import "github.com/cespare/xxhash/v2"

// tagIndex is the writer's private index from surrogate keys to the
// positions of the live entries carrying them, so that a purge by tag costs
// the tagged entries, not the cache.
//
// It holds no strings: a tag is known by its 64-bit hash, and every use
// reads the entry at the position and checks that it carries the tag, so a
// hash collision costs a look at an entry, never a wrong purge. A tag with
// one entry (the common case: a tag per product) costs one slot of a
// map[uint64]uint64, about 30 bytes of heap; each further entry of a tag
// costs a slot of a set, about 15 bytes (TestTagIndexHeapPerEntry).
//
// The index is bounded: past limit postings it is dropped and purges by tag
// scan the whole index of the file instead (every live entry's tags), as
// prefix purges do. A scan that finds few enough postings rebuilds it.
type tagIndex struct {
	one      map[uint64]uint64              // tag hash -> a position carrying it
	many     map[uint64]map[uint64]struct{} // tag hash -> further positions
	n        int                            // postings held
	limit    int
	overflow bool // dropped: purges scan
}

func newTagIndex(limit int) tagIndex {
	return tagIndex{one: map[uint64]uint64{}, many: map[uint64]map[uint64]struct{}{}, limit: limit}
}

func tagHash(tag []byte) uint64 { return xxhash.Sum64(tag) }

func tagHashString(tag string) uint64 { return xxhash.Sum64String(tag) }

// add records that the entry at pos carries the tag of hash th. It reports
// false when the index overflowed (and was dropped) on this posting.
func (x *tagIndex) add(th, pos uint64) bool {
	if x.overflow {
		return true
	}
	p, ok := x.one[th]
	switch {
	case !ok:
		x.one[th] = pos
	case p == pos:
		return true
	default:
		set := x.many[th]
		if set == nil {
			set = map[uint64]struct{}{}
			x.many[th] = set
		}
		if _, dup := set[pos]; dup {
			return true
		}
		set[pos] = struct{}{}
	}
	if x.n++; x.n > x.limit {
		x.drop()
		return false
	}
	return true
}

// drop empties the index and switches purges to scans.
func (x *tagIndex) drop() {
	x.one, x.many = map[uint64]uint64{}, map[uint64]map[uint64]struct{}{}
	x.n, x.overflow = 0, true
}

// remove forgets the posting (th, pos) if it is there.
func (x *tagIndex) remove(th, pos uint64) {
	if x.overflow {
		return
	}
	set := x.many[th]
	if p, ok := x.one[th]; ok && p == pos {
		x.n--
		if len(set) == 0 {
			delete(x.one, th)
			return
		}
		for q := range set { // promote any other
			x.one[th] = q
			delete(set, q)
			break
		}
		if len(set) == 0 {
			delete(x.many, th)
		}
		return
	}
	if _, ok := set[pos]; ok {
		x.n--
		delete(set, pos)
		if len(set) == 0 {
			delete(x.many, th)
		}
	}
}

// positions appends the positions posted under th to dst.
func (x *tagIndex) positions(dst []uint64, th uint64) []uint64 {
	if p, ok := x.one[th]; ok {
		dst = append(dst, p)
	}
	for p := range x.many[th] {
		dst = append(dst, p)
	}
	return dst
}

// carries reports whether the entry's tag block holds tag.
func carries(e *Entry, tag string) bool {
	for it := NewStringIter(e.Tags); it.Next(); {
		if string(it.Bytes()) == tag {
			return true
		}
	}
	return false
}

func (w *Writer) indexTags(pos uint64) {
	e, ok := w.entryAt(pos)
	if !ok {
		return
	}
	for it := NewStringIter(e.Tags); it.Next(); {
		w.postTag(tagHash(it.Bytes()), pos)
	}
}

// postTag adds a posting, saying so when the index overflows.
func (w *Writer) postTag(th, pos uint64) {
	if !w.tags.add(th, pos) {
		w.opts.Logger.Warn("zerohop cache: the tag index is over its bound; purges by tag scan the index from now on",
			"dir", w.dir, "max_tag_postings", w.tags.limit)
	}
}

func (w *Writer) unindexTags(pos uint64) {
	if w.tags.overflow {
		return
	}
	e, ok := w.entryAt(pos)
	if !ok || len(e.Tags) == 0 {
		return
	}
	for it := NewStringIter(e.Tags); it.Next(); {
		w.tags.remove(tagHash(it.Bytes()), pos)
	}
}

// forEachTagged calls f for every live entry carrying tag, with its slot:
// from the index, or by a scan of every slot when the index overflowed. f
// may drop the entry.
func (w *Writer) forEachTagged(tag string, f func(b, so int, pos uint64)) {
	if w.tags.overflow {
		w.scanTagged(tag, f)
		return
	}
	th := tagHashString(tag)
	w.tagScratch = w.tags.positions(w.tagScratch[:0], th)
	for _, pos := range w.tagScratch {
		e, ok := w.entryAt(pos)
		if !ok || !carries(&e, tag) {
			continue // another tag of the same hash
		}
		if b, so, ok := w.findSlot(e.Hash, pos); ok {
			f(b, so, pos)
		} else {
			w.tags.remove(th, pos) // not live: a stale posting
		}
	}
}

// scanTagged is forEachTagged without the index. While it walks every live
// entry it counts their tags; if they would fit in half the bound, it
// rebuilds the index.
func (w *Writer) scanTagged(tag string, f func(b, so int, pos uint64)) {
	tail := w.v.tail.Load()
	postings := 0
	w.forEachSlot(func(b, so int, _, pos, _ uint64) {
		if pos < tail {
			return
		}
		e, ok := w.entryAt(pos)
		if !ok {
			return
		}
		if carries(&e, tag) {
			f(b, so, pos)
			if u64at(w.mm, so+offSlotTag).Load() == 0 {
				return // dropped
			}
		}
		for it := NewStringIter(e.Tags); it.Next(); {
			postings++
		}
	})
	if postings <= w.tags.limit/2 {
		w.tags = newTagIndex(w.tags.limit)
		w.forEachSlot(func(_, _ int, _, pos, _ uint64) {
			if pos >= tail {
				w.indexTags(pos)
			}
		})
		w.opts.Logger.Info("zerohop cache: the tag index fits its bound again; rebuilt it", "dir", w.dir, "postings", w.tags.n)
	}
}
