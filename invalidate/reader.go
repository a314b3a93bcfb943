package invalidate

import (
	"bytes"
	"errors"
	"io"
)

// ReaderStats counts what a Reader met. Every skipped byte is in exactly
// one of the counters' byte totals.
type ReaderStats struct {
	// Records is how many valid records were returned (marks included).
	Records uint64
	// Garbage is how many runs of bytes that are not records were skipped
	// (bad magic, impossible length, checksum mismatch); GarbageBytes is
	// their total size.
	Garbage      uint64
	GarbageBytes uint64
	// Torn is how many incomplete records were skipped because a valid
	// record followed them (a writer died mid-append); TornBytes is their
	// total size.
	Torn      uint64
	TornBytes uint64
	// Unusable is how many checksummed records were skipped whole: an
	// unknown format version or inconsistent fields.
	Unusable uint64
}

// Add adds o's counters to s.
func (s *ReaderStats) Add(o ReaderStats) {
	s.Records += o.Records
	s.Garbage += o.Garbage
	s.GarbageBytes += o.GarbageBytes
	s.Torn += o.Torn
	s.TornBytes += o.TornBytes
	s.Unusable += o.Unusable
}

// readChunk is how much a Reader asks its source for at a time.
const readChunk = 64 << 10

// Reader iterates the records of a log from an offset. It resynchronises
// after garbage by scanning for the next magic that starts a record with a
// valid checksum, and it treats an incomplete record at the end as "not
// yet": Next reports ErrNoRecord and the same bytes are looked at again on
// the next call, unless a valid record has meanwhile been appended after
// them, which proves them torn. A Reader is not safe for concurrent use.
type Reader struct {
	src     io.ReaderAt
	base    int64  // source offset of buf[0]
	buf     []byte // bytes read from base on
	pos     int    // consumed bytes of buf
	garbage bool   // inside a run of garbage
	stats   ReaderStats
}

// NewReader returns a Reader of the records in src from offset off, which
// should be a record boundary (anything else is resynchronised as garbage).
func NewReader(src io.ReaderAt, off int64) *Reader {
	r := &Reader{}
	r.Reset(src, off)
	return r
}

// Reset makes r read src from off, keeping its buffer and its stats.
func (r *Reader) Reset(src io.ReaderAt, off int64) {
	r.src, r.base, r.buf, r.pos, r.garbage = src, off, r.buf[:0], 0, false
}

// Offset is the source offset of the first byte not consumed: just after
// the last record returned or bytes skipped.
func (r *Reader) Offset() int64 { return r.base + int64(r.pos) }

// Stats returns the counters.
func (r *Reader) Stats() ReaderStats { return r.stats }

// Next returns the next record. Its Payload is a copy the caller owns.
// It returns ErrNoRecord when no complete record follows (yet), or an
// error from the source.
func (r *Reader) Next() (Record, error) {
	rec, err := r.next()
	if err == nil {
		rec.Payload = bytes.Clone(rec.Payload)
		if rec.Payload == nil {
			rec.Payload = []byte{}
		}
	}
	return rec, err
}

// next is Next with the payload aliasing the buffer.
func (r *Reader) next() (Record, error) {
	for {
		b := r.buf[r.pos:]
		rec, n, err := DecodeRecord(b)
		switch {
		case err == nil:
			r.pos += n
			r.garbage = false
			r.stats.Records++
			return rec, nil
		case errors.Is(err, ErrVersion) || errors.Is(err, ErrMalformed):
			r.pos += n
			r.garbage = false
			r.stats.Unusable++
			continue
		case errors.Is(err, ErrIncomplete):
			more, ferr := r.fill(max(n, len(b)+1))
			if ferr != nil {
				return Record{}, ferr
			}
			if more {
				continue
			}
			b = r.buf[r.pos:] // fill may have moved the bytes
			if len(b) == 0 {
				return Record{}, ErrNoRecord
			}
			// Nothing more to read. A valid record after this one proves it
			// torn; otherwise a writer may still be appending it.
			if q := findRecord(b[1:]); q >= 0 {
				r.stats.Torn++
				r.stats.TornBytes += uint64(1 + q)
				r.pos += 1 + q
				r.garbage = false
				continue
			}
			return Record{}, ErrNoRecord
		default: // ErrCorrupt: skip to the next possible start
			q := nextMagic(b[1:])
			skip := 1 + q
			if q < 0 {
				// No magic in what is buffered: skip all but a trailing
				// partial magic, then read on.
				skip = len(b) - partialMagic(b[1:])
			}
			if q >= 0 && tornBefore(b, 1+q) {
				// A record cut short (its writer died) and then followed by
				// a newer one: its length runs into the next record.
				r.stats.Torn++
				r.stats.TornBytes += uint64(skip)
				r.pos += skip
				r.garbage = false
				continue
			}
			if !r.garbage {
				r.stats.Garbage++
				r.garbage = true
			}
			r.stats.GarbageBytes += uint64(skip)
			r.pos += skip
			if q < 0 {
				more, ferr := r.fill(len(r.buf[r.pos:]) + 1)
				if ferr != nil {
					return Record{}, ferr
				}
				if !more {
					return Record{}, ErrNoRecord
				}
			}
		}
	}
}

// fill reads until at least want unconsumed bytes are buffered or the
// source has no more, compacting the buffer first. It reports whether it
// read anything.
func (r *Reader) fill(want int) (bool, error) {
	if r.pos > 0 && (r.pos >= len(r.buf)/2 || cap(r.buf)-len(r.buf) < want) {
		n := copy(r.buf, r.buf[r.pos:])
		r.base += int64(r.pos)
		r.buf = r.buf[:n]
		r.pos = 0
	}
	read := false
	for len(r.buf)-r.pos < want {
		chunk := max(readChunk, want-(len(r.buf)-r.pos))
		at := r.base + int64(len(r.buf))
		if cap(r.buf)-len(r.buf) < chunk {
			nb := make([]byte, len(r.buf), len(r.buf)+chunk+readChunk)
			copy(nb, r.buf)
			r.buf = nb
		}
		m, err := r.src.ReadAt(r.buf[len(r.buf):len(r.buf)+chunk], at)
		r.buf = r.buf[:len(r.buf)+m]
		if m > 0 {
			read = true
		}
		if err == io.EOF || m == 0 && err == nil {
			return read, nil
		}
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// nextMagic returns the index of the next magic in b, or -1.
func nextMagic(b []byte) int { return bytes.Index(b, []byte(Magic)) }

// partialMagic returns how many of b's last bytes are a proper prefix of
// the magic (they may be the start of a record still being written).
func partialMagic(b []byte) int {
	for k := min(len(Magic)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == Magic[:k] {
			return k
		}
	}
	return 0
}

// tornBefore reports whether b, which failed to decode, starts like a
// record (magic, plausible length) whose claimed length runs past q, where a
// whole, checksummed record starts.
func tornBefore(b []byte, q int) bool {
	if len(b) < offLength+4 || string(b[:len(Magic)]) != Magic {
		return false
	}
	n := int(le.Uint32(b[offLength:]))
	if n < HeaderSize || n > MaxRecordSize || q >= n {
		return false
	}
	_, _, err := DecodeRecord(b[q:])
	return err == nil || errors.Is(err, ErrVersion) || errors.Is(err, ErrMalformed)
}

// findRecord returns the index of the first position in b holding a whole,
// checksummed record (usable or not), or -1.
func findRecord(b []byte) int {
	for off := 0; ; {
		q := nextMagic(b[off:])
		if q < 0 {
			return -1
		}
		_, _, err := DecodeRecord(b[off+q:])
		if err == nil || errors.Is(err, ErrVersion) || errors.Is(err, ErrMalformed) {
			return off + q
		}
		off += q + 1
	}
}
