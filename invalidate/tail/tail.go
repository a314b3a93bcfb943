// Package tail is the sidecar's side of the invalidation log: a Tailer
// follows the log from a checkpoint and applies every record, in order,
// exactly once in effect (a crash between applying and checkpointing
// re-applies, which is harmless; nothing is ever skipped), publishes the
// applied sequence number for read-your-purge waits, and rotates the log to
// keep it bounded. It wakes on inotify events (fsnotify) and polls as a
// fallback.
//
// Only one Tailer may own a log: it is the only one that rotates it.
package tail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/internal/wake"
)

// Errors of this package.
var (
	// ErrSkip, wrapped in an error returned by Apply, skips the record
	// (counted) instead of retrying it: for records that can never apply.
	ErrSkip = errors.New("tail: skip record")
	// ErrCheckpoint means the checkpoint file is unreadable; the tailer
	// starts from the beginning of the log (re-applying is safe).
	ErrCheckpoint = errors.New("tail: bad checkpoint")
	// ErrOptions means a required option is missing.
	ErrOptions = errors.New("tail: invalid options")
)

// GapOrigin is the Origin of the "all" record a Tailer applies when records
// it had not applied were rotated away by someone else (see Stats.Gaps).
const GapOrigin = "zerohop:gap"

// Options configure a Tailer. Zero fields take the documented defaults.
type Options struct {
	// Path is the invalidation log. Required. Its directory is created if
	// missing.
	Path string
	// Checkpoint is the checkpoint file. Default Path + ".ckpt".
	Checkpoint string
	// Apply applies one record. Required. It is called on the Run
	// goroutine, in log order, and must be idempotent. An error wrapping
	// ErrSkip, invalidate.ErrUnknownKind or invalidate.ErrBadPayload skips
	// the record (counted); any other error is retried, with backoff, until
	// Apply succeeds or Run's context ends: a record is never skipped for a
	// transient failure. Records of unknown kinds or modes are counted and
	// skipped without calling Apply.
	Apply func(invalidate.Record) error
	// Publish receives the highest sequence number applied so far and the
	// log offset after it, after each batch of records and once at start
	// (from the checkpoint). The sidecar passes
	// (*invalidate.CacheApplier).Publish, which stores them in the cache
	// file's header. Optional.
	Publish func(seq, off uint64)
	// Hold returns the sequence number up to which a slower consumer of the
	// log (the fan-out bridge) has durably consumed it; rotation keeps the
	// records after it. Optional: nil keeps only unapplied records.
	Hold func() uint64
	// MaxSize is the log size past which the tailer rotates it. Default
	// 16 MiB; negative disables rotation.
	MaxSize int64
	// MaxRetain bounds what rotation keeps for Hold. A consumer further
	// behind loses the excess: its Follower reports ErrGap and it
	// compensates. Default 4 × MaxSize.
	MaxRetain int64
	// PollInterval is how often the log is looked at without a file event.
	// Default 250ms.
	PollInterval time.Duration
	// CheckpointInterval is how often, at most, the checkpoint is written
	// while records flow; it is always written when the tailer goes idle,
	// before and after a rotation, and when Run returns. Default 100ms.
	CheckpointInterval time.Duration
	// RetryMax is the longest pause between attempts of a failing Apply.
	// Default 1s.
	RetryMax time.Duration
	// Sync fsyncs the checkpoint (and rotated files) before renaming them.
	// Default false: the cache it describes lives in memory anyway.
	Sync bool
	// Logger receives warnings (garbage, replaced logs, apply errors), at
	// most one per kind every 10s. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() (Options, error) {
	r := *o
	if r.Path == "" || r.Apply == nil {
		return r, fmt.Errorf("%w: Path and Apply are required", ErrOptions)
	}
	if r.Checkpoint == "" {
		r.Checkpoint = r.Path + ".ckpt"
	}
	if r.MaxSize == 0 {
		r.MaxSize = 16 << 20
	}
	if r.MaxRetain <= 0 {
		r.MaxRetain = 4 * max(r.MaxSize, 1<<20)
	}
	if r.PollInterval <= 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.CheckpointInterval <= 0 {
		r.CheckpointInterval = 100 * time.Millisecond
	}
	if r.RetryMax <= 0 {
		r.RetryMax = time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r, nil
}

// Stats are a Tailer's counters.
type Stats struct {
	// Applied is how many records Apply applied.
	Applied uint64
	// UnknownKinds, BadPayloads and Skipped count records skipped: of an
	// unknown kind or mode, with an unusable payload, or Apply said ErrSkip.
	UnknownKinds, BadPayloads, Skipped uint64
	// ApplyErrors counts failed Apply attempts that were retried.
	ApplyErrors uint64
	// Reader counts garbage, torn tails and unusable records skipped.
	Reader invalidate.ReaderStats
	// Replaced counts logs found replaced, truncated or rewritten while
	// tailed (each read again from its start); Gaps counts rotations by
	// someone else that dropped unapplied records (each compensated by
	// applying an "all" record).
	Replaced, Gaps uint64
	// Rotations counts rotations this tailer did; HoldDropped counts those
	// that could not keep everything Hold asked for (over MaxRetain).
	Rotations, HoldDropped uint64
	// CheckpointErrors counts failed checkpoint writes (retried).
	CheckpointErrors uint64
	// AppliedSeq is the highest sequence number published; AppliedOffset
	// the offset after the last record applied; LagBytes how many bytes of
	// the log were not consumed at the last look.
	AppliedSeq    uint64
	AppliedOffset int64
	LagBytes      int64
}

// Tailer follows an invalidation log and applies it. Create it with New and
// call Run once.
type Tailer struct {
	opts Options
	fo   *invalidate.Follower
	log  *invalidate.Log
	kick chan struct{}

	done      invalidate.Position // after the last record applied
	published atomic.Uint64
	ckptAt    time.Time // last checkpoint write
	dirty     bool      // applied since the last checkpoint
	replaced  uint64    // follower's Replaced count already acted on
	warned    map[string]time.Time

	mu sync.Mutex // guards st
	st Stats
}

// New reads the checkpoint and returns a Tailer resuming from it. An
// unreadable checkpoint is logged and the log is read from its start.
func New(opts Options) (*Tailer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o777); err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	c, err := readCheckpoint(o.Checkpoint)
	if err != nil {
		o.Logger.Warn("zerohop invalidation: unreadable checkpoint; re-applying the log from its start", "err", err)
		c = checkpoint{}
	}
	lg, err := invalidate.OpenLog(o.Path, &invalidate.LogOptions{Sync: o.Sync})
	if err != nil {
		return nil, err
	}
	t := &Tailer{opts: o, log: lg, kick: make(chan struct{}, 1), warned: map[string]time.Time{}}
	t.done = c.position()
	t.fo = invalidate.NewFollower(o.Path, t.done)
	t.published.Store(max(c.Published, c.Seq))
	return t, nil
}

// InvalidationSeq returns the highest sequence number applied and
// published; it satisfies invalidate.AppliedSeq, for read-your-purge waits
// inside the sidecar.
func (t *Tailer) InvalidationSeq() uint64 { return t.published.Load() }

// Kick makes the tailer look at the log now (after an in-process append);
// file events do the same for other processes.
func (t *Tailer) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (t *Tailer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.st
	s.AppliedSeq = t.published.Load()
	return s
}

// Run applies the log until ctx ends, then writes the checkpoint and
// returns nil. It returns an error only if it cannot start.
func (t *Tailer) Run(ctx context.Context) error {
	defer t.log.Close()
	defer t.fo.Close()
	w, err := wake.New(t.opts.Path, t.opts.PollInterval)
	if err != nil {
		t.opts.Logger.Warn("zerohop invalidation: no file events; polling the log", "path", t.opts.Path,
			"interval", t.opts.PollInterval, "err", err)
	}
	defer w.Close()
	if t.opts.Publish != nil {
		t.opts.Publish(t.published.Load(), uint64(t.done.Off))
	}
	ckpt := time.NewTimer(time.Hour)
	ckpt.Stop()
	defer ckpt.Stop()
	for {
		t.step(ctx)
		if ctx.Err() != nil {
			t.checkpoint(true)
			return nil
		}
		if t.dirty {
			ckpt.Reset(t.opts.CheckpointInterval)
		}
		select {
		case <-ctx.Done():
			t.checkpoint(true)
			return nil
		case <-w.C:
		case <-t.kick:
		case <-ckpt.C:
			t.checkpoint(true)
		}
	}
}

// step applies everything there is, publishes, checkpoints if due and
// rotates if the log is over its size.
func (t *Tailer) step(ctx context.Context) {
	n := 0
	caughtUp := false
	for ctx.Err() == nil {
		if n >= maxBatch {
			t.Kick() // more to do: rotate and checkpoint between batches
			break
		}
		rec, err := t.fo.Next()
		if errors.Is(err, invalidate.ErrNoRecord) {
			caughtUp = true
			break
		}
		if errors.Is(err, invalidate.ErrGap) {
			t.count(func(s *Stats) { s.Gaps++ })
			t.warn("gap", "records were rotated away before they were applied; invalidating everything")
			all := invalidate.AllRecord(invalidate.Hard)
			all.Origin = GapOrigin
			if !t.apply(ctx, all) {
				return
			}
			continue
		}
		if err != nil {
			t.warn("read", "reading the log failed; retrying", "err", err)
			break
		}
		if !t.apply(ctx, rec) {
			return // ctx ended mid-retry: done stays before rec
		}
		t.advance()
		if n++; n%512 == 0 {
			t.publish()
		}
	}
	// Marks and garbage after the last record are consumed too.
	if caughtUp {
		t.advance()
	}
	t.publish()
	t.observe()
	if caughtUp && t.fo.Stats().Replaced > t.replaced {
		t.replaced = t.fo.Stats().Replaced
		// Appenders that opened the new file number from its records; lift
		// them above what was published, or their waits would end early.
		if _, err := t.log.RaiseSeq(ctx, t.published.Load()); err != nil {
			t.warn("reseq", "could not raise the log's sequence numbers after a replacement", "err", err)
		}
	}
	if t.opts.MaxSize > 0 && t.fo.Size() > t.opts.MaxSize {
		t.rotate(ctx)
	}
	if t.dirty && (n == 0 || time.Since(t.ckptAt) >= t.opts.CheckpointInterval) {
		t.checkpoint(false)
	}
}

// maxBatch is how many records a step applies before it publishes,
// checkpoints and rotates.
const maxBatch = 4096

// advance moves the applied position to the follower's.
func (t *Tailer) advance() {
	p := t.fo.Position()
	if !p.File.IsZero() && (p.File != t.done.File || p.Off != t.done.Off || p.Seq != t.done.Seq) {
		t.done = p
		t.dirty = true
		if p.Seq > t.published.Load() {
			t.published.Store(p.Seq)
		}
	}
}

func (t *Tailer) publish() {
	if t.opts.Publish != nil {
		t.opts.Publish(t.published.Load(), uint64(t.done.Off))
	}
}

// apply applies rec, retrying transient failures until ctx ends; it
// reports false if ctx ended first.
func (t *Tailer) apply(ctx context.Context, rec invalidate.Record) bool {
	if !rec.Kind.Known() || !rec.Mode.Known() {
		t.count(func(s *Stats) { s.UnknownKinds++ })
		t.warn("unknown", "skipping a record of an unknown kind or mode", "record", rec.String())
		return true
	}
	backoff := time.Millisecond
	for {
		err := t.opts.Apply(rec)
		switch {
		case err == nil:
			t.count(func(s *Stats) { s.Applied++ })
			return true
		case errors.Is(err, invalidate.ErrUnknownKind):
			t.count(func(s *Stats) { s.UnknownKinds++ })
			return true
		case errors.Is(err, invalidate.ErrBadPayload):
			t.count(func(s *Stats) { s.BadPayloads++ })
			t.warn("payload", "skipping a record with an unusable payload", "record", rec.String(), "err", err)
			return true
		case errors.Is(err, ErrSkip):
			t.count(func(s *Stats) { s.Skipped++ })
			return true
		}
		t.count(func(s *Stats) { s.ApplyErrors++ })
		t.warn("apply", "applying a record failed; retrying", "record", rec.String(), "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, t.opts.RetryMax)
	}
}

// rotate replaces the log with a new file holding only what is not yet
// applied and what Hold still needs.
func (t *Tailer) rotate(ctx context.Context) {
	pos := t.done
	size := t.fo.Size()
	keepFrom, markSeq := pos.Off, pos.Seq
	if t.opts.Hold != nil {
		if h := t.opts.Hold(); h < pos.Seq {
			off, before, err := t.fo.Seek(h)
			switch {
			case err != nil:
				t.warn("rotate", "could not find the records to keep", "err", err)
				return
			case size-off > t.opts.MaxRetain:
				t.count(func(s *Stats) { s.HoldDropped++ })
				t.warn("hold", "a slow log consumer is too far behind; rotating past it", "held_seq", h)
			default:
				keepFrom, markSeq = off, before
			}
		}
	}
	// A checkpoint at pos first: after a crash mid-rotation the restarted
	// tailer sees the new file's mark at or below its sequence number and
	// continues, instead of taking it for a gap.
	if !t.checkpoint(true) {
		return
	}
	res, err := t.log.Rotate(ctx, invalidate.RotateSpec{Want: pos.File, KeepFrom: keepFrom, MarkSeq: markSeq})
	if err != nil {
		if !errors.Is(err, invalidate.ErrChanged) {
			t.warn("rotate", "rotating the log failed", "err", err)
		}
		return
	}
	np := invalidate.Position{File: res.New, Head: res.Head, Off: res.MarkLen + pos.Off - keepFrom, Seq: pos.Seq}
	t.fo.Rebase(np)
	t.done = np
	t.dirty = true
	t.checkpoint(true)
	t.count(func(s *Stats) { s.Rotations++ })
}

// checkpoint writes the applied position if it changed (or force), and
// reports whether the checkpoint on disk is current.
func (t *Tailer) checkpoint(force bool) bool {
	if !t.dirty && (!force || !t.ckptAt.IsZero()) {
		return true
	}
	if t.done.File.IsZero() {
		return true // nothing read yet
	}
	if err := checkpointAt(t.done, t.published.Load()).write(t.opts.Checkpoint, t.opts.Sync); err != nil {
		t.count(func(s *Stats) { s.CheckpointErrors++ })
		t.warn("checkpoint", "writing the checkpoint failed", "err", err)
		return false
	}
	t.dirty = false
	t.ckptAt = time.Now()
	return true
}

// observe copies the follower's counters into the stats.
func (t *Tailer) observe() {
	fs := t.fo.Stats()
	size := t.fo.Size()
	if fs.Garbage+fs.Torn+fs.Unusable > t.st.Reader.Garbage+t.st.Reader.Torn+t.st.Reader.Unusable {
		t.warn("garbage", "skipped bytes of the log that are not valid records",
			"garbage_runs", fs.Garbage, "torn", fs.Torn, "unusable", fs.Unusable)
	}
	if fs.Replaced > t.st.Replaced {
		t.warn("replaced", "the log was replaced or truncated while tailed; applying the new file from its start")
	}
	t.mu.Lock()
	t.st.Reader = fs.ReaderStats
	t.st.Replaced = fs.Replaced
	t.st.AppliedOffset = t.done.Off
	t.st.LagBytes = max(0, size-t.done.Off)
	t.mu.Unlock()
}

func (t *Tailer) count(f func(*Stats)) {
	t.mu.Lock()
	f(&t.st)
	t.mu.Unlock()
}

// warn logs at most one message of each kind every 10s.
func (t *Tailer) warn(kind, msg string, args ...any) {
	now := time.Now()
	if last, ok := t.warned[kind]; ok && now.Sub(last) < 10*time.Second {
		return
	}
	t.warned[kind] = now
	t.opts.Logger.Warn("zerohop invalidation: "+msg, append(args, "path", t.opts.Path)...)
}
