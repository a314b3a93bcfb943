package invalidate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/shm/safefile"
)

// FileID identifies a log file by device and inode, so that a rotated or
// replaced log is noticed even though its path is the same.
type FileID struct{ Dev, Ino uint64 }

// IsZero reports whether id identifies nothing (no file seen yet).
func (id FileID) IsZero() bool { return id == FileID{} }

// LogOptions configure a Log. Zero fields take the documented defaults.
type LogOptions struct {
	// Origin is stamped on appended records whose Origin is empty: a pod or
	// writer id for logs and de-duplication. Default "" (none).
	Origin string
	// Perm is the permission of a log file Append creates, before the
	// umask. Default 0666, so that writers of other uids sharing the
	// directory's group can append.
	Perm os.FileMode
	// Sync makes each append fdatasync the log before returning. Default
	// false: a record is visible to the tailer as soon as it is written,
	// and a log on tmpfs (the usual shared volume) cannot be synced anyway.
	Sync bool
	// Now is the clock that stamps records. Default time.Now.
	Now func() time.Time
	// Applied, when set, is the cache's published sequence number (the
	// *shm.Reader or tailer a writer waits on): Append numbers records above
	// it, so that a record is never numbered at or below a sequence number
	// the sidecar has already published, whatever the file holds. Default
	// nil: the file alone decides.
	Applied AppliedSeq
}

func (o *LogOptions) withDefaults() LogOptions {
	var r LogOptions
	if o != nil {
		r = *o
	}
	if r.Perm == 0 {
		r.Perm = 0o666
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// LogStats counts a Log's work.
type LogStats struct {
	// Appends is how many records this Log appended.
	Appends uint64
	// Reopens is how many times it found the path held another file (the
	// log was rotated or replaced) and reopened it.
	Reopens uint64
	// TornTails is how many times it found an incomplete record at the end
	// of the log while holding the lock: a writer died mid-append. The new
	// record goes after it and readers skip it.
	TornTails uint64
}

// tailWindow is how much of the log's end an appender reads to find the
// last sequence number when it cannot parse forward from a known record.
const tailWindow = 64 << 10

// Log appends records to an invalidation log. Any number of Logs, in any
// number of processes and containers sharing the file, may append at once:
// each append takes the file's exclusive flock, reads what others appended
// since its last look to learn the last sequence number, and writes the new
// record with a single write on an O_APPEND descriptor. A Log is safe for
// concurrent use by multiple goroutines.
type Log struct {
	path string
	opts LogOptions
	sem  chan struct{} // one holder at a time; a mutex that honours ctx

	// Guarded by sem.
	closed bool
	f      *os.File
	id     FileID
	off    int64  // a record boundary of f: the end of what we last read or wrote
	seq    uint64 // the highest sequence number we know of in seqOf: a floor for the next
	seqOf  FileID // the file seq was learned from
	buf    []byte
	rd     Reader

	appends, reopens, torn atomic.Uint64
}

// OpenLog returns a Log appending to path. The file is created on first
// append if missing; its directory must exist.
func OpenLog(path string, opts *LogOptions) (*Log, error) {
	o := opts.withDefaults()
	if len(o.Origin) > MaxOrigin {
		return nil, fmt.Errorf("%w: origin of %d bytes, limit %d", ErrTooLarge, len(o.Origin), MaxOrigin)
	}
	l := &Log{path: path, opts: o, sem: make(chan struct{}, 1)}
	return l, nil
}

// Path returns the log's path.
func (l *Log) Path() string { return l.path }

// Stats returns the counters.
func (l *Log) Stats() LogStats {
	return LogStats{Appends: l.appends.Load(), Reopens: l.reopens.Load(), TornTails: l.torn.Load()}
}

func (l *Log) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("invalidate: append: %w", err)
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("invalidate: append: %w", ctx.Err())
	}
	if l.closed {
		<-l.sem
		return ErrClosed
	}
	return nil
}

func (l *Log) release() { <-l.sem }

// Append validates rec, assigns it the next sequence number and appends it.
// It fills TimeMs if zero and Origin if empty. It returns the sequence
// number; a reader that has applied it (WaitApplied) has applied rec.
func (l *Log) Append(ctx context.Context, rec Record) (uint64, error) {
	if err := rec.Validate(); err != nil {
		return 0, err
	}
	_, last, err := l.appendRecords(ctx, []Record{rec})
	return last, err
}

// AppendBatch appends several records with one lock and one write; they get
// consecutive sequence numbers, first to last.
func (l *Log) AppendBatch(ctx context.Context, recs []Record) (first, last uint64, err error) {
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return 0, 0, fmt.Errorf("record %d: %w", i, err)
		}
	}
	if len(recs) == 0 {
		return 0, 0, nil
	}
	return l.appendRecords(ctx, recs)
}

func (l *Log) appendRecords(ctx context.Context, recs []Record) (first, last uint64, err error) {
	if err := l.acquire(ctx); err != nil {
		return 0, 0, err
	}
	defer l.release()
	size, err := l.lockCurrent(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer unlock(l.f)
	seq := l.lastSeq(size)
	if l.opts.Applied != nil {
		if p := l.opts.Applied.InvalidationSeq(); p <= MaxSeq {
			seq = max(seq, p)
		}
	}
	if seq > MaxSeq-uint64(len(recs)) {
		return 0, 0, fmt.Errorf("%w: %s ends at %d", ErrSeqExhausted, l.path, seq)
	}
	now := l.opts.Now().UnixMilli()
	l.buf = l.buf[:0]
	for i := range recs {
		r := recs[i]
		seq++
		r.Seq = seq
		if r.TimeMs == 0 {
			r.TimeMs = now
		}
		if r.Origin == "" {
			r.Origin = l.opts.Origin
		}
		if l.buf, err = AppendRecord(l.buf, &r); err != nil {
			return 0, 0, err
		}
	}
	if err := l.write(size, seq); err != nil {
		return 0, 0, err
	}
	l.appends.Add(uint64(len(recs)))
	return seq - uint64(len(recs)) + 1, seq, nil
}

// write writes l.buf at the end of the locked file, whose size is size.
func (l *Log) write(size int64, seq uint64) error {
	n, err := l.f.Write(l.buf)
	if err == nil && l.opts.Sync {
		err = l.f.Sync()
	}
	if err != nil {
		if n > 0 {
			l.off = 0 // a torn record of ours: rescan next time
		}
		return fmt.Errorf("invalidate: append to %s: %w", l.path, err)
	}
	l.off, l.seq, l.seqOf = size+int64(n), seq, l.id
	return nil
}

// lockCurrent opens the log if needed and takes its lock, making sure the
// locked file is the one at the path: an appender that opened a file since
// rotated away notices here and reopens. It returns the file's size.
func (l *Log) lockCurrent(ctx context.Context) (int64, error) {
	for {
		if l.f == nil {
			// The directory is shared with the app: a symlink or FIFO at the
			// path is refused, never appended through.
			f, err := safefile.Open(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, l.opts.Perm)
			if err != nil {
				return 0, fmt.Errorf("invalidate: open log: %w", err)
			}
			id, _, err := fstatID(f)
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("invalidate: stat %s: %w", l.path, err)
			}
			l.f, l.id, l.off = f, id, 0
		}
		if err := lockCtx(ctx, l.f); err != nil {
			return 0, err
		}
		pid, _, err := statID(l.path)
		if err == nil && pid == l.id {
			_, size, err := fstatID(l.f)
			if err != nil {
				unlock(l.f)
				return 0, fmt.Errorf("invalidate: stat %s: %w", l.path, err)
			}
			return size, nil
		}
		unlock(l.f)
		l.f.Close()
		l.f = nil
		l.reopens.Add(1)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("invalidate: %w", err)
		}
	}
}

// spinTries is how many times a busy lock is retried with a yield before
// sleeping: appends hold it for microseconds.
const spinTries = 64

// lockCtx takes f's exclusive lock, giving up when ctx ends. flock cannot be
// interrupted, so it polls a non-blocking lock: yields first, then sleeps
// from 5µs doubling to 1ms.
func lockCtx(ctx context.Context, f *os.File) error {
	backoff := 5 * time.Microsecond
	for i := 0; ; i++ {
		busy, err := tryLock(f)
		if err != nil || !busy {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("invalidate: waiting for the log lock: %w", err)
		}
		if i < spinTries {
			runtime.Gosched()
			continue
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Millisecond)
	}
}

// lastSeq returns the highest sequence number in the locked file of the
// given size, or the Log's floor if that is higher. From a known record
// boundary it parses forward what others appended since; otherwise (a new
// file, a long gap) it reads a window at the end, widening it until it
// holds a record.
//
// Sequence numbers above MaxSeq are ignored (no honest appender makes one).
// What was learned from another file is kept as a floor across a
// replacement, but forgotten when the new file is a rotation (it starts
// with a rotation mark): the tailer's mark and the records it carried over
// decide, so that numbers a forged record pushed up do not outlive the
// file the tailer rotated it out of.
func (l *Log) lastSeq(size int64) uint64 {
	if l.seqOf != l.id {
		if l.startsRotated() {
			l.seq = 0
		}
		l.seqOf = l.id
	}
	from := l.off
	if from > size {
		from = 0 // truncated
	}
	if from == size {
		return l.seq
	}
	start := from
	if size-from > tailWindow {
		start = size - tailWindow
	}
	for {
		l.rd.Reset(io.NewSectionReader(l.f, start, size-start), 0)
		var best uint64
		found := false
		for {
			rec, err := l.rd.next()
			if err != nil {
				break
			}
			found = true
			if rec.Seq <= MaxSeq {
				best = max(best, rec.Seq)
			}
		}
		if found || start == from {
			if start+l.rd.Offset() < size && found {
				l.torn.Add(1) // an incomplete record at the end, under the lock
			}
			l.off = size
			l.seq = max(l.seq, best)
			return l.seq
		}
		start = max(from, start-2*(size-start))
	}
}

// startsRotated reports whether the locked file begins with a rotation mark.
func (l *Log) startsRotated() bool {
	var b [HeaderSize + MaxOrigin + 16]byte
	n, _ := l.f.ReadAt(b[:], 0)
	rec, _, err := DecodeRecord(b[:n])
	return err == nil && rec.Kind == KindMark && len(rec.Payload) > 0 && rec.Payload[0] == MarkRotate
}

// RaiseSeq makes the next sequence number in the log greater than floor: if
// the log's last one is lower, it appends a KindMark (MarkReseq) record of
// sequence floor. The tailer calls it after the log was replaced by a file
// numbered from lower, so that read-your-purge waits stay correct. It
// reports whether it appended.
func (l *Log) RaiseSeq(ctx context.Context, floor uint64) (bool, error) {
	if err := l.acquire(ctx); err != nil {
		return false, err
	}
	defer l.release()
	size, err := l.lockCurrent(ctx)
	if err != nil {
		return false, err
	}
	defer unlock(l.f)
	// Only the file decides: the Log's own floor may come from a file that
	// is gone.
	l.off, l.seq = 0, 0
	if floor > MaxSeq {
		return false, fmt.Errorf("%w: floor %d", ErrSeqExhausted, floor)
	}
	if l.lastSeq(size) >= floor {
		return false, nil
	}
	mark := newMark(floor, MarkReseq, l.opts.Now())
	if l.buf, err = AppendRecord(l.buf[:0], &mark); err != nil {
		return false, err
	}
	return true, l.write(size, floor)
}

func newMark(seq uint64, reason byte, now time.Time) Record {
	p := make([]byte, 9)
	p[0] = reason
	rand.Read(p[1:])
	return Record{Seq: seq, TimeMs: now.UnixMilli(), Kind: KindMark, Payload: p}
}

// RotateSpec says how Rotate builds the new log file.
type RotateSpec struct {
	// Want is the identity of the file the caller has been reading; Rotate
	// fails with ErrChanged if the path holds another one.
	Want FileID
	// KeepFrom is the offset of the first byte carried over: everything
	// from it to the end (records not yet consumed, and records the caller
	// must retain) is copied verbatim into the new file.
	KeepFrom int64
	// MarkSeq is the sequence number of the rotation mark that starts the
	// new file: the highest sequence number of the records dropped (before
	// KeepFrom). Records carried over have higher ones.
	MarkSeq uint64
	// Keep is where the old file stays, as a hard link, until the next
	// rotation. Default path+".1"; "-" keeps nothing.
	Keep string
}

// RotateResult describes a rotation.
type RotateResult struct {
	Old, New FileID
	// OldSize is the old file's size when it was retired.
	OldSize int64
	// MarkLen is the length of the rotation mark at the start of the new
	// file: an old offset o >= KeepFrom is MarkLen + o - KeepFrom in it.
	MarkLen int64
	// Copied is how many bytes were carried over.
	Copied int64
	// Head is the first bytes of the new file (its fingerprint).
	Head []byte
}

// Rotate replaces the log with a new file made of a rotation mark followed
// by the old file's bytes from KeepFrom on, under the old file's lock. The
// new file takes the old one's place with one rename, so the path never
// misses; appenders waiting on the old file's lock see that the path holds
// another file and reopen it. Only the log's single owner (the tailer)
// rotates.
func (l *Log) Rotate(ctx context.Context, spec RotateSpec) (res RotateResult, err error) {
	if err := l.acquire(ctx); err != nil {
		return res, err
	}
	defer l.release()
	size, err := l.lockCurrent(ctx)
	if err != nil {
		return res, err
	}
	old := l.f
	defer func() {
		unlock(old)
		old.Close()
		l.f = nil // the next append opens the new file
	}()
	if spec.MarkSeq > MaxSeq {
		return res, fmt.Errorf("%w: rotation mark %d", ErrSeqExhausted, spec.MarkSeq)
	}
	if l.id != spec.Want || spec.KeepFrom > size || spec.KeepFrom < 0 {
		return res, fmt.Errorf("%w: %s is %v of %d bytes, want %v from %d", ErrChanged, l.path, l.id, size, spec.Want, spec.KeepFrom)
	}
	res.Old, res.OldSize = l.id, size
	perm := os.FileMode(0o666)
	if fi, err := old.Stat(); err == nil {
		perm = fi.Mode().Perm()
	}
	tmp := l.path + ".rotate.tmp"
	os.Remove(tmp)                        // unlink does not follow a planted symlink
	nf, err := safefile.Create(tmp, perm) // past the umask: the old file's writers must keep access
	if err != nil {
		return res, fmt.Errorf("invalidate: rotate: %w", err)
	}
	defer func() {
		nf.Close()
		if err != nil {
			os.Remove(tmp)
		}
	}()
	mark := newMark(spec.MarkSeq, MarkRotate, l.opts.Now())
	head, err := AppendRecord(nil, &mark)
	if err != nil {
		return res, err
	}
	if _, err := nf.Write(head); err != nil {
		return res, fmt.Errorf("invalidate: rotate: %w", err)
	}
	n, err := io.Copy(nf, io.NewSectionReader(old, spec.KeepFrom, size-spec.KeepFrom))
	if err != nil {
		return res, fmt.Errorf("invalidate: rotate: copy: %w", err)
	}
	if l.opts.Sync {
		if err := nf.Sync(); err != nil {
			return res, fmt.Errorf("invalidate: rotate: %w", err)
		}
	}
	if res.New, _, err = fstatID(nf); err != nil {
		return res, fmt.Errorf("invalidate: rotate: %w", err)
	}
	keep := spec.Keep
	if keep == "" {
		keep = l.path + ".1"
	}
	if keep != "-" {
		// Best effort: the old file is only kept for inspection. A link
		// under a temporary name renamed over keep replaces the previous
		// one at once, so keep never goes missing (a kill between a remove
		// and a link would leave no kept file at all).
		ktmp := keep + ".tmp"
		os.Remove(ktmp)
		if os.Link(l.path, ktmp) == nil && os.Rename(ktmp, keep) != nil {
			os.Remove(ktmp)
		}
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return res, fmt.Errorf("invalidate: rotate: %w", err)
	}
	res.MarkLen, res.Copied = int64(len(head)), n
	res.Head = head[:min(len(head), HeadLen)]
	return res, nil
}

// Close releases the Log's file. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f != nil {
		err := l.f.Close()
		l.f = nil
		return err
	}
	return nil
}
