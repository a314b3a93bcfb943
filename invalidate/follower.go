package invalidate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zerohop/zerohop/shm/safefile"
)

// HeadLen is how many of a log file's first bytes fingerprint it, so that a
// new file that reused an old one's inode is not mistaken for it.
const HeadLen = 16

// Position is where a Follower is: the file, its fingerprint, the offset
// just after the last record consumed and that record's sequence number.
// The zero Position means "from the start of whatever file is at the path".
type Position struct {
	File FileID
	Head []byte // the file's first bytes as last seen, at most HeadLen
	Off  int64
	Seq  uint64
}

// FollowerStats counts what a Follower met.
type FollowerStats struct {
	ReaderStats
	// Marks is how many KindMark records were consumed.
	Marks uint64
	// Rotations is how many times the path held a rotated continuation of
	// the file followed (it starts with a rotation mark).
	Rotations uint64
	// Duplicates is how many records of a rotated continuation were
	// skipped because they had been consumed from the old file.
	Duplicates uint64
	// Replaced is how many times the path held a file that does not
	// continue the one followed (replaced by another file, or truncated or
	// rewritten in place): it was read from its start.
	Replaced uint64
	// Gaps is how many times a rotated continuation showed that records
	// not yet consumed had been dropped (Next returned ErrGap).
	Gaps uint64
	// SeqJumps is how many records (marks included) carried a sequence
	// number above MaxSeq, or more than MaxSeqJump above the highest one
	// believed so far: forged or corrupted numbers. Such a record is
	// returned (a purge is always safe to apply) but its number is not
	// taken: the position's Seq does not move.
	SeqJumps uint64
}

// Follower reads a log's records in order as they are appended, across
// rotations and replacements of the file at its path. It is the reading
// half shared by the tailer and the fan-out bridge; it does not wait by
// itself: Next returns ErrNoRecord when caught up, and the caller sleeps
// or waits for a file event. A Follower is not safe for concurrent use.
//
// When caught up it checks the path. If the path holds the same file, intact,
// there is nothing to do. If it holds another file, the old one is drained
// first (a record may have landed in it just before the switch), then the
// new one is read from its start: if it begins with a rotation mark it
// continues the old file, and records already consumed (sequence number at
// most the last one consumed) are skipped; otherwise it is a replacement and
// every record in it is returned. A file that shrank below the offset or
// whose first bytes changed is read again from its start.
type Follower struct {
	path     string
	pos      Position
	f        *os.File
	rd       Reader
	skipTo   uint64 // in a rotated continuation: skip records up to this seq
	draining bool   // the path moved on; finishing the old file
	gap      bool   // ErrGap to report
	top      uint64 // the highest sequence number believed
	based    bool   // top is known: later numbers are judged against it
	st       FollowerStats
	hb       [HeadLen]byte
}

// NewFollower returns a Follower of the log at path, resuming at pos (the
// zero Position starts at the beginning of the file at the path).
//
// A pos with a File but Off 0 and a Seq re-reads that file from its start
// as a continuation of what was consumed up to Seq: records numbered up to
// Seq are skipped, and a rotation mark above Seq at its start is a gap. The
// tailer replays the log that way when its consumer's durable state is
// behind its checkpoint.
func NewFollower(path string, pos Position) *Follower {
	pos.Head = bytes.Clone(pos.Head)
	return &Follower{path: path, pos: pos, top: pos.Seq, based: pos.Seq > 0}
}

// SetSeqBase raises the highest sequence number the follower believes (the
// tailer passes what it has published): later records are judged against
// it (see FollowerStats.SeqJumps). 0 (nothing known) changes nothing: the
// first number read is then believed.
func (f *Follower) SetSeqBase(seq uint64) {
	if seq > 0 && seq <= MaxSeq {
		f.top, f.based = max(f.top, seq), true
	}
}

// believe reports whether a record's sequence number is plausible, and if
// so takes it as the new high mark. Without a base (a follower started from
// nothing) the first number is believed.
func (f *Follower) believe(seq uint64) bool {
	if seq > MaxSeq || f.based && seq > f.top && seq-f.top > MaxSeqJump {
		f.st.SeqJumps++
		return false
	}
	f.top, f.based = max(f.top, seq), true
	return true
}

// Position returns the position after the last record consumed.
func (f *Follower) Position() Position {
	p := f.pos
	p.Head = bytes.Clone(p.Head)
	return p
}

// Stats returns the counters.
func (f *Follower) Stats() FollowerStats {
	s := f.st
	s.ReaderStats = f.rd.Stats()
	return s
}

// Size returns the size of the file being read (0 if none is open).
func (f *Follower) Size() int64 {
	if f.f == nil {
		return 0
	}
	_, size, err := fstatID(f.f)
	if err != nil {
		return 0
	}
	return size
}

// Next returns the next record, skipping rotation marks. Errors:
// ErrNoRecord when caught up; ErrGap, once, when rotation dropped records
// not yet consumed (the caller should compensate, then call Next again);
// I/O errors. A log that does not exist yet is ErrNoRecord.
func (f *Follower) Next() (Record, error) {
	if f.f == nil {
		if err := f.open(); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Record{}, ErrNoRecord
			}
			return Record{}, err
		}
	}
	for {
		if f.gap {
			f.gap = false
			return Record{}, ErrGap
		}
		rec, err := f.rd.Next()
		if err == nil {
			f.pos.Off = f.rd.Offset()
			believed := f.believe(rec.Seq)
			switch {
			case rec.Kind == KindMark:
				f.st.Marks++
				if believed && rec.Seq > f.pos.Seq {
					f.pos.Seq = rec.Seq
				}
				continue
			case f.skipTo > 0 && rec.Seq <= f.skipTo:
				f.st.Duplicates++
				continue
			}
			if believed {
				f.pos.Seq = rec.Seq
			}
			return rec, nil
		}
		if !errors.Is(err, ErrNoRecord) {
			return Record{}, fmt.Errorf("invalidate: read %s: %w", f.path, err)
		}
		f.pos.Off = f.rd.Offset() // garbage skipped is consumed too
		moved, err := f.checkPath()
		if err != nil {
			return Record{}, err
		}
		if !moved {
			return Record{}, ErrNoRecord
		}
	}
}

// checkPath looks, when caught up, for a new file at the path or a change
// to this one; it reports whether there may be more to read.
func (f *Follower) checkPath() (bool, error) {
	pid, _, err := statID(f.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // removed: keep the old file until a new one appears
		}
		return false, fmt.Errorf("invalidate: %w", err)
	}
	intact := f.intact()
	if pid == f.pos.File && intact {
		return false, nil
	}
	if pid != f.pos.File && intact && !f.draining {
		// Another file is at the path. Drain this one once more: an append
		// may have landed after our last read and before the switch.
		f.draining = true
		return true, nil
	}
	return true, f.switchTo()
}

// intact reports whether the open file still is what was read: not shorter
// than the offset and with the same first bytes.
func (f *Follower) intact() bool {
	_, size, err := fstatID(f.f)
	if err != nil || size < f.pos.Off {
		return false
	}
	head, err := f.readHead(f.f)
	if err != nil || !headMatches(head, f.pos.Head) {
		return false
	}
	if len(head) > len(f.pos.Head) {
		f.pos.Head = bytes.Clone(head)
	}
	return true
}

func headMatches(head, want []byte) bool {
	return len(head) >= len(want) && bytes.Equal(head[:len(want)], want)
}

func (f *Follower) readHead(file *os.File) ([]byte, error) {
	n, err := file.ReadAt(f.hb[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return f.hb[:n], nil
}

// open opens the file at the path, resuming at the position if it is the
// same, intact file, else treating it as a switch.
func (f *Follower) open() error {
	nf, err := safefile.Open(f.path, os.O_RDONLY, 0) // a planted symlink or FIFO is refused
	if err != nil {
		return err
	}
	id, size, err := fstatID(nf)
	if err != nil {
		nf.Close()
		return fmt.Errorf("invalidate: stat %s: %w", f.path, err)
	}
	head, err := f.readHead(nf)
	if err != nil {
		nf.Close()
		return fmt.Errorf("invalidate: read %s: %w", f.path, err)
	}
	if !f.pos.File.IsZero() && id == f.pos.File && size >= f.pos.Off && headMatches(head, f.pos.Head) {
		f.f = nf
		f.rd.Reset(nf, f.pos.Off)
		f.pos.Head = bytes.Clone(head)
		if f.pos.Off == 0 && f.pos.Seq > 0 {
			f.continueFrom(nf, false) // a replay from the start
		}
		return nil
	}
	f.adopt(nf, id, head)
	return nil
}

// switchTo moves to the file now at the path.
func (f *Follower) switchTo() error {
	nf, err := safefile.Open(f.path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("invalidate: open %s: %w", f.path, err)
	}
	id, _, err := fstatID(nf)
	if err != nil {
		nf.Close()
		return fmt.Errorf("invalidate: stat %s: %w", f.path, err)
	}
	head, err := f.readHead(nf)
	if err != nil {
		nf.Close()
		return fmt.Errorf("invalidate: read %s: %w", f.path, err)
	}
	f.f.Close()
	f.f = nil
	f.adopt(nf, id, head)
	return nil
}

// adopt starts reading nf from its start, deciding whether it continues
// what was followed (it begins with a rotation mark) or replaces it.
func (f *Follower) adopt(nf *os.File, id FileID, head []byte) {
	had := !f.pos.File.IsZero()
	f.f, f.draining, f.skipTo = nf, false, 0
	f.pos.File, f.pos.Off, f.pos.Head = id, 0, bytes.Clone(head)
	f.rd.Reset(nf, 0)
	if !had {
		return
	}
	f.continueFrom(nf, true)
}

// continueFrom decides, for a file read from its start after records up
// to pos.Seq were consumed, what was consumed already. A file that starts
// with a rotation mark continues them: records up to pos.Seq are skipped,
// and a mark above pos.Seq means records were dropped unread (a gap).
// Otherwise nf is another file (replaced: every record is new) or, on a
// replay, the same file (records up to pos.Seq are skipped).
func (f *Follower) continueFrom(nf *os.File, replaced bool) {
	var first [HeaderSize + MaxOrigin + 16]byte
	n, _ := nf.ReadAt(first[:], 0)
	mark, _, err := DecodeRecord(first[:n])
	if err == nil && mark.Kind == KindMark && len(mark.Payload) > 0 && mark.Payload[0] == MarkRotate {
		if replaced {
			f.st.Rotations++
		}
		if mark.Seq > f.pos.Seq {
			f.st.Gaps++
			f.gap = true
		} else {
			f.skipTo = f.pos.Seq
		}
		return
	}
	if replaced {
		f.st.Replaced++
		return
	}
	f.skipTo = f.pos.Seq
}

// Rebase moves the follower to pos, which the caller knows to be the same
// place in a new file (after it rotated the log itself).
func (f *Follower) Rebase(pos Position) {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	f.pos, f.skipTo, f.draining, f.gap = pos, 0, false, false
	f.pos.Head = bytes.Clone(pos.Head)
}

// Seek scans the open file from its start up to the position and returns
// the offset of the first record with a sequence number above seq (the
// position's offset if none) and the highest sequence number before that
// offset. The tailer uses it to keep records a slower consumer still needs
// when it rotates.
func (f *Follower) Seek(seq uint64) (off int64, before uint64, err error) {
	if f.f == nil {
		return f.pos.Off, f.pos.Seq, nil
	}
	rd := NewReader(f.f, 0)
	for rd.Offset() < f.pos.Off {
		at := rd.Offset()
		rec, err := rd.next()
		if err != nil {
			if errors.Is(err, ErrNoRecord) {
				break
			}
			return 0, 0, err
		}
		if rd.Offset() > f.pos.Off {
			break
		}
		if rec.Seq > seq && rec.Kind != KindMark {
			return at, before, nil
		}
		before = max(before, rec.Seq)
	}
	return f.pos.Off, max(before, f.pos.Seq), nil
}

// Close closes the file being read.
func (f *Follower) Close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}
