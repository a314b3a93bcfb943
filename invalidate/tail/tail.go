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
	"github.com/zerohop/zerohop/shm/safefile"
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
	// log offset after it, after each batch of records (once Persist has
	// made them durable) and once at start (from the checkpoint). The
	// sidecar passes (*shm.Writer).SetInvalidation, which stores them in
	// the cache file's header. Optional.
	Publish func(seq, off uint64)
	// Persist, when set, makes durable what Apply did: the tailer calls it
	// with the sequence number of its position before it publishes that
	// position or checkpoints it, and retries a failure with backoff, like
	// Apply, until it succeeds or Run's context ends. The sidecar passes its
	// store's flush (commit with fsync, recording seq as the store's
	// AppliedSeq), so that a purge is acknowledged only once it survives a
	// crash. Optional: nil for a consumer that keeps nothing across
	// restarts.
	Persist func(ctx context.Context, seq uint64) error
	// DurableSeq is, with Persist, the sequence number the consumer's
	// durable state had reached when it was opened (the store's
	// AppliedSeq). If the checkpoint is ahead of it, a crash lost applies
	// the consumer had not made durable, and the tailer replays: it reads
	// the checkpoint's file again from its start, skipping records up to
	// DurableSeq and applying the rest (a rotation that dropped some of them
	// is a gap: everything is invalidated). A consumer with nothing to lose
	// (an empty store) passes math.MaxUint64.
	DurableSeq uint64
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
	// CheckpointErrors counts failed checkpoint writes (retried);
	// BadCheckpoints counts checkpoints discarded at start (unreadable,
	// numbered beyond MaxSeq, or claiming more than the log holds).
	CheckpointErrors, BadCheckpoints uint64
	// SeqJumps counts records whose sequence number was not believed (above
	// invalidate.MaxSeq or more than invalidate.MaxSeqJump above the highest
	// believed): applied, but never published. Each makes the tailer rotate
	// the log once caught up, so that appenders stop numbering from it.
	SeqJumps uint64
	// PersistErrors counts failed Persist calls (retried); Replays counts
	// starts that replayed the log because the consumer's durable state was
	// behind the checkpoint.
	PersistErrors, Replays uint64
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
	durable   invalidate.Position // after the last record Persist made durable and published
	unsynced  bool                // Apply succeeded since the last Persist
	published atomic.Uint64
	ckptAt    time.Time // last checkpoint write
	dirty     bool      // durable moved since the last checkpoint
	replaced  uint64    // follower's Replaced+Rotations count already acted on
	healed    uint64    // follower's SeqJumps count already rotated away
	replaying bool      // started behind the checkpoint: publish nothing before catching up
	ckptPub   uint64    // the checkpoint's published seq, restored once a replay caught up
	ready     chan struct{}
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
	bad := uint64(0)
	c, err := readCheckpoint(o.Checkpoint)
	if err == nil {
		err = c.checkLog(o.Path)
	}
	if err != nil {
		bad++
		o.Logger.Warn("zerohop invalidation: discarding the checkpoint; re-applying the log from its start", "err", err)
		c = checkpoint{}
	}
	lg, err := invalidate.OpenLog(o.Path, &invalidate.LogOptions{Sync: o.Sync})
	if err != nil {
		return nil, err
	}
	t := &Tailer{opts: o, log: lg, kick: make(chan struct{}, 1), ready: make(chan struct{}), warned: map[string]time.Time{}}
	t.st.BadCheckpoints = bad
	t.done = c.position()
	t.published.Store(max(c.Published, c.Seq))
	start := t.done
	if o.Persist != nil && !c.zero() && c.Seq > o.DurableSeq {
		// The consumer lost applies it had not made durable: read the
		// checkpoint's file again from its start, after DurableSeq.
		start.Off, start.Seq = 0, o.DurableSeq
		t.done, t.replaying, t.ckptPub = start, true, t.published.Load()
		t.published.Store(o.DurableSeq)
		t.st.Replays++
		o.Logger.Warn("zerohop invalidation: the store is behind the checkpoint; replaying the log",
			"store_seq", o.DurableSeq, "checkpoint_seq", c.Seq, "path", o.Path)
	}
	t.durable = t.done
	t.fo = invalidate.NewFollower(o.Path, start)
	t.fo.SetSeqBase(max(t.published.Load(), t.ckptPub))
	return t, nil
}

// Ready is closed once the tailer has applied (and persisted and
// published) everything the log held when it started: the sidecar waits for
// it before serving, so that a replay finishes before anything is served
// or refilled.
//
// It is also closed when the log is a file the tailer refuses to read
// (safefile.ErrUnsafe): nothing in it can be replayed.
func (t *Tailer) Ready() <-chan struct{} { return t.ready }

// markReady closes ready once; only Run's goroutine calls it.
func (t *Tailer) markReady() {
	select {
	case <-t.ready:
	default:
		close(t.ready)
	}
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
	if t.opts.Publish != nil && !t.replaying {
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
			if errors.Is(err, safefile.ErrUnsafe) {
				// A file the app replaced by a link or a device is never
				// read: waiting for it would only keep the sidecar from
				// serving. What it held cannot be replayed.
				t.markReady()
			}
			break
		}
		if !t.apply(ctx, rec) {
			return // ctx ended mid-retry: done stays before rec
		}
		t.advance()
		if n++; n%512 == 0 && !t.settle(ctx) {
			return
		}
	}
	// Marks and garbage after the last record are consumed too.
	if caughtUp {
		t.advance()
	}
	if !t.settle(ctx) {
		return
	}
	if caughtUp {
		if t.replaying {
			t.replaying = false
			if t.ckptPub > t.published.Load() {
				t.published.Store(t.ckptPub)
			}
			t.publish()
		}
		t.markReady()
	}
	t.observe()
	if fs := t.fo.Stats(); caughtUp && fs.Replaced+fs.Rotations > t.replaced {
		t.replaced = fs.Replaced + fs.Rotations
		// Appenders that opened the new file number from its records; lift
		// them above what was published, or their waits would end early.
		// A rotation this tailer did not make (a crash mid-rotation, or a
		// file planted with a forged rotation mark) is treated alike.
		if _, err := t.log.RaiseSeq(ctx, t.published.Load()); err != nil {
			t.warn("reseq", "could not raise the log's sequence numbers after a replacement", "err", err)
		}
	}
	if t.opts.MaxSize > 0 && t.fo.Size() > t.opts.MaxSize {
		t.rotate(ctx)
	} else if js := t.fo.Stats().SeqJumps; caughtUp && t.opts.MaxSize > 0 && js > t.healed {
		// A record numbered implausibly high is in the file: appenders
		// would number after it, and those records could never be
		// published. Rotate it away; the new file starts at our position.
		t.healed = js
		t.warn("seqjump", "a record's sequence number jumps implausibly; rotating the log to drop it")
		t.rotate(ctx)
	}
	if t.dirty && (n == 0 || time.Since(t.ckptAt) >= t.opts.CheckpointInterval) {
		t.checkpoint(false)
	}
}

// maxBatch is how many records a step applies before it publishes,
// checkpoints and rotates.
const maxBatch = 4096

// advance moves the applied position to the follower's. Nothing is
// published until settle.
func (t *Tailer) advance() {
	p := t.fo.Position()
	if !p.File.IsZero() && !samePos(p, t.done) {
		t.done = p
	}
}

func samePos(a, b invalidate.Position) bool {
	return a.File == b.File && a.Off == b.Off && a.Seq == b.Seq
}

// settle makes everything applied so far durable (Persist), then publishes
// it: the published sequence number never runs ahead of what a crash would
// keep. It reports false if ctx ended first (nothing new is published).
func (t *Tailer) settle(ctx context.Context) bool {
	if !samePos(t.done, t.durable) || t.unsynced {
		if t.opts.Persist != nil && (t.unsynced || t.done.Seq != t.durable.Seq) {
			backoff := time.Millisecond
			for {
				err := t.opts.Persist(ctx, t.done.Seq)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return false
				}
				t.count(func(s *Stats) { s.PersistErrors++ })
				t.warn("persist", "making applied records durable failed; retrying", "err", err)
				select {
				case <-ctx.Done():
					return false
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, t.opts.RetryMax)
			}
		}
		t.durable, t.unsynced = t.done, false
		t.dirty = true
		if t.done.Seq > t.published.Load() {
			t.published.Store(t.done.Seq)
		}
	}
	if !t.replaying {
		t.publish()
	}
	return true
}

func (t *Tailer) publish() {
	if t.opts.Publish != nil {
		t.opts.Publish(t.published.Load(), uint64(t.durable.Off))
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
			t.unsynced = true
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
	if !samePos(t.done, t.durable) {
		return // only what is durable may be rotated away
	}
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
	t.done, t.durable = np, np
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
	if t.durable.File.IsZero() {
		return true // nothing read yet
	}
	if err := checkpointAt(t.durable, t.published.Load()).write(t.opts.Checkpoint, t.opts.Sync); err != nil {
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
	t.st.SeqJumps = fs.SeqJumps
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
