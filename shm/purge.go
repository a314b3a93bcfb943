package shm

// Removing entries: one key, one surrogate key, or whatever a predicate
// over keys selects. A soft purge keeps the entry but makes it stale (its
// slot's fresh-until becomes 0), so that stale-while-revalidate can serve
// it while one refresh runs.

// Delete removes key's entry and reports whether there was one.
func (w *Writer) Delete(key []byte) (ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	guard(func() {
		var b, so int
		var pos uint64
		if b, so, pos, ok = w.lookupSlot(key); ok {
			w.drop(b, so, pos, statDeletes)
		}
	})
	return ok
}

// MarkStale makes key's entry stale without removing it, so that
// stale-while-revalidate can serve it while one refresh runs (a soft purge).
func (w *Writer) MarkStale(key []byte) (ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	guard(func() {
		var b, so int
		if b, so, _, ok = w.lookupSlot(key); ok {
			w.markStale(b, so)
		}
	})
	return ok
}

// markStale makes the slot's fresh-until the current second, unless it is
// already earlier. The entry is then stale from the purge on, not since it
// was stored, so its stale-while-revalidate window counts from the purge:
// a soft purge serves the old response while one refresh runs.
func (w *Writer) markStale(b, so int) {
	meta := u64at(w.mm, so+offSlotMeta)
	m := meta.Load()
	now := uint64(w.opts.Now().Unix())
	if m>>32 <= now {
		return
	}
	seq := u32at(w.mm, b+offBucketSeq)
	seq.Add(1)
	meta.Store(m&0xffffffff | now<<32)
	seq.Add(1)
}

// PurgeTag removes (or, if soft, marks stale) every entry carrying the
// surrogate key tag and returns how many. Its cost is proportional to the
// tagged entries, not to the cache, unless the tag index is over its bound
// (Options.MaxTagPostings): then it scans every entry.
func (w *Writer) PurgeTag(tag string, soft bool) (n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	guard(func() { n = w.purgeTag(tag, soft) })
	return n
}

func (w *Writer) purgeTag(tag string, soft bool) int {
	n := 0
	w.forEachTagged(tag, func(b, so int, pos uint64) {
		if soft {
			w.markStale(b, so)
		} else {
			w.drop(b, so, pos, statDeletes)
		}
		n++
	})
	w.v.stats[statPurges].Add(1)
	return n
}

// PurgeFunc removes (or marks stale) every live entry whose key match
// accepts; it walks the whole index. Use it for prefix and whole-cache
// purges. match must not retain the key.
func (w *Writer) PurgeFunc(match func(key []byte) bool, soft bool) (n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	guard(func() { n = w.purgeFunc(match, soft) })
	return n
}

func (w *Writer) purgeFunc(match func(key []byte) bool, soft bool) int {
	tail := w.v.tail.Load()
	n := 0
	w.forEachSlot(func(b, so int, tag, pos, meta uint64) {
		if pos < tail {
			return
		}
		e, ok := w.entryAt(pos)
		if !ok || (match != nil && !match(e.Key)) {
			return
		}
		if soft {
			w.markStale(b, so)
		} else {
			w.drop(b, so, pos, statDeletes)
		}
		n++
	})
	w.v.stats[statPurges].Add(1)
	return n
}

// TaggedKeys returns copies of the keys of the live entries carrying the
// surrogate key tag (the proxy finds the stored variants of a URL by their
// VariantTag this way). Its cost is proportional to the tagged entries.
func (w *Writer) TaggedKeys(tag string) (keys [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	guard(func() {
		w.forEachTagged(tag, func(_, _ int, pos uint64) {
			if e, ok := w.entryAt(pos); ok {
				keys = append(keys, append([]byte(nil), e.Key...))
			}
		})
	})
	return keys
}
