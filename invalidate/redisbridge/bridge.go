// Package redisbridge fans invalidations out across pods through a Redis
// stream. A Bridge publishes the records appended to the local log (XADD,
// with MAXLEN ~ bounding the stream) and appends the records other pods
// published (XREAD from the last entry id consumed) to the local log, where
// the local tailer applies them like any other.
//
// Nothing is lost: both directions keep a cursor in a small file beside the
// log (the log position published up to, and the last stream id consumed),
// written after the work it records, so a restart or a Redis outage only
// delays records, and a crash can only repeat some (duplicates are
// harmless: applying an invalidation twice is the same as once). When
// records are lost anyway (the stream was trimmed past a pod that was down
// too long, or the local log rotated past a bridge that was far behind),
// the bridge invalidates everything instead, and counts it.
//
// Echo loops are impossible: records received from Redis carry
// invalidate.FlagRemote and are never published, and entries a pod
// published itself are skipped when it reads them back.
package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/internal/wake"
)

// Errors of this package.
var (
	// ErrOptions means a required option is missing.
	ErrOptions = errors.New("redisbridge: invalid options")
	// ErrCursor means the cursor file is unreadable; the bridge starts as
	// if new (publishing only recent records, reading from the stream's end).
	ErrCursor = errors.New("redisbridge: bad cursor")
)

// Origins of the "all" records a Bridge makes to compensate lost records.
const (
	StreamGapOrigin = "zerohop:stream-gap"
	LogGapOrigin    = "zerohop:log-gap"
)

// Stream entry fields.
const (
	fieldPod = "pod" // publishing pod
	fieldRec = "rec" // the record, encoded as in the log
)

// Options configure a Bridge. Zero fields take the documented defaults.
type Options struct {
	// Path is the local invalidation log. Required.
	Path string
	// Cursor is the cursor file. Default Path + ".redis".
	Cursor string
	// Redis says how to reach Redis. Required (Addr, or Network "unix"
	// and a socket path).
	Redis *redis.Options
	// Stream is the stream key. Default "zerohop:invalidations".
	Stream string
	// Pod names this sidecar; entries it published are skipped when read
	// back. Default the host name (the pod name in Kubernetes).
	Pod string
	// MaxLen bounds the stream: XADD trims it to about this many entries.
	// A pod down for longer than the stream holds finds a gap and
	// invalidates everything. Default 100000.
	MaxLen int64
	// Block is how long one XREAD waits for entries. Default 1s.
	Block time.Duration
	// Batch is the most records one XADD pipeline or XREAD carries.
	// Default 256.
	Batch int
	// PollInterval is how often the local log is looked at without a file
	// event. Default 250ms.
	PollInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a Redis or log error.
	// Defaults 10ms and 1s.
	RetryMin, RetryMax time.Duration
	// CursorInterval is how often, at most, the cursor file is written.
	// Default 50ms.
	CursorInterval time.Duration
	// InitialWindow applies to a first start (no cursor): local records
	// older than this are not published (they were applied here long ago;
	// replaying them would purge other pods' fresher entries). Default 1m.
	InitialWindow time.Duration
	// Logger receives warnings, at most one per kind every 10s. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() (Options, error) {
	r := *o
	if r.Path == "" || r.Redis == nil {
		return r, fmt.Errorf("%w: Path and Redis are required", ErrOptions)
	}
	if r.Cursor == "" {
		r.Cursor = r.Path + ".redis"
	}
	if r.Stream == "" {
		r.Stream = "zerohop:invalidations"
	}
	if r.Pod == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return r, fmt.Errorf("%w: no Pod and no host name", ErrOptions)
		}
		r.Pod = h
	}
	if r.MaxLen <= 0 {
		r.MaxLen = 100000
	}
	if r.Block <= 0 {
		r.Block = time.Second
	}
	if r.Batch <= 0 {
		r.Batch = 256
	}
	if r.PollInterval <= 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.RetryMin <= 0 {
		r.RetryMin = 10 * time.Millisecond
	}
	if r.RetryMax <= 0 {
		r.RetryMax = time.Second
	}
	if r.CursorInterval <= 0 {
		r.CursorInterval = 50 * time.Millisecond
	}
	if r.InitialWindow <= 0 {
		r.InitialWindow = time.Minute
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r, nil
}

// Stats are a Bridge's counters.
type Stats struct {
	// Published counts local records sent to the stream; Received counts
	// other pods' records appended to the local log.
	Published, Received uint64
	// SkippedOwn counts stream entries this pod published, read back;
	// SkippedRemote counts local records not published because they came
	// from the stream; SkippedOld counts records older than InitialWindow
	// at a first start.
	SkippedOwn, SkippedRemote, SkippedOld uint64
	// BadEntries counts stream entries that were not valid records.
	BadEntries uint64
	// PublishErrors, ReadErrors and AppendErrors count failed attempts,
	// all retried with backoff.
	PublishErrors, ReadErrors, AppendErrors uint64
	// Gaps counts losses compensated by an "all" record: the stream was
	// trimmed past this pod's cursor, or the local log was rotated past
	// what was published.
	Gaps uint64
	// PublishedSeq is the local sequence number durably published up to;
	// LastID the last stream entry durably consumed.
	PublishedSeq uint64
	LastID       string
}

// Bridge connects the local log to the stream. Create it with New, give
// Hold to the tailer (tail.Options.Hold), and call Run once.
type Bridge struct {
	opts  Options
	rdb   *redis.Client
	log   *invalidate.Log
	first bool // no cursor: a first start

	mu      sync.Mutex // guards cur, st, warned
	cur     cursor
	st      Stats
	warned  map[string]time.Time
	dirty   chan struct{}
	durable atomic.Uint64 // published seq in the cursor file
	kick    chan struct{}
}

// New reads the cursor and returns a Bridge. It does not connect yet.
func New(opts Options) (*Bridge, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c, ok, err := readCursor(o.Cursor)
	if err != nil {
		o.Logger.Warn("zerohop invalidation: unreadable bridge cursor; starting afresh", "err", err)
	}
	if c.Stream != o.Stream {
		c.LastID = "" // another stream: start at its end
	}
	c.Version, c.Pod, c.Stream = cursorVersion, o.Pod, o.Stream
	lg, err := invalidate.OpenLog(o.Path, nil)
	if err != nil {
		return nil, err
	}
	b := &Bridge{opts: o, rdb: redis.NewClient(o.Redis), log: lg, first: !ok, cur: c,
		warned: map[string]time.Time{}, dirty: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	b.durable.Store(c.Seq)
	return b, nil
}

// Hold returns the local sequence number durably published: the tailer
// keeps later records across rotations (tail.Options.Hold).
func (b *Bridge) Hold() uint64 { return b.durable.Load() }

// Kick makes the publisher look at the log now.
func (b *Bridge) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.st
	s.PublishedSeq = b.durable.Load()
	s.LastID = b.cur.LastID
	return s
}

// Run publishes and consumes until ctx ends, then writes the cursor and
// returns nil.
func (b *Bridge) Run(ctx context.Context) error {
	defer b.rdb.Close()
	defer b.log.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.publishLoop(ctx) }()
	go func() { defer wg.Done(); b.consumeLoop(ctx) }()
	b.persistLoop(ctx)
	wg.Wait()
	b.persist()
	return nil
}

// markDirty asks the persister to write the cursor.
func (b *Bridge) markDirty() {
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

func (b *Bridge) persistLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.dirty:
		}
		b.persist()
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.opts.CursorInterval):
		}
	}
}

func (b *Bridge) persist() {
	b.mu.Lock()
	c := b.cur
	b.mu.Unlock()
	if err := c.write(b.opts.Cursor); err != nil {
		b.warn("cursor", "writing the bridge cursor failed", "err", err)
		b.markDirty()
		return
	}
	b.durable.Store(c.Seq)
}

func (b *Bridge) count(f func(*Stats)) {
	b.mu.Lock()
	f(&b.st)
	b.mu.Unlock()
}

// pause sleeps for the backoff, doubling it; it reports false if ctx ended.
func (b *Bridge) pause(ctx context.Context, backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, b.opts.RetryMax)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// item is a local record read for publishing, with the log position after
// it; skip items only move the position.
type item struct {
	rec  []byte
	pos  invalidate.Position
	skip bool
}

func (b *Bridge) publishLoop(ctx context.Context) {
	b.mu.Lock()
	fo := invalidate.NewFollower(b.opts.Path, b.cur.position())
	b.mu.Unlock()
	defer fo.Close()
	w, err := wake.New(b.opts.Path, b.opts.PollInterval)
	if err != nil {
		b.warn("watch", "no file events; polling the log", "err", err)
	}
	defer w.Close()
	oldest := int64(0)
	if b.first {
		oldest = b.opts.Now().Add(-b.opts.InitialWindow).UnixMilli()
	}
	var pending []item
	backoff := b.opts.RetryMin
	for ctx.Err() == nil {
		caughtUp := false
		for len(pending) < b.opts.Batch {
			rec, err := fo.Next()
			if errors.Is(err, invalidate.ErrNoRecord) {
				caughtUp = true
				break
			}
			if errors.Is(err, invalidate.ErrGap) {
				b.count(func(s *Stats) { s.Gaps++ })
				b.warn("loggap", "the log was rotated past records not yet published; invalidating everything on every pod")
				all := invalidate.AllRecord(invalidate.Hard)
				all.Origin, all.TimeMs = LogGapOrigin, b.opts.Now().UnixMilli()
				enc, _ := invalidate.AppendRecord(nil, &all)
				pending = append(pending, item{rec: enc, pos: fo.Position()})
				continue
			}
			if err != nil {
				b.warn("read", "reading the log failed", "err", err)
				caughtUp = true
				break
			}
			it := item{pos: fo.Position()}
			switch {
			case rec.Flags&invalidate.FlagRemote != 0:
				it.skip = true
				b.count(func(s *Stats) { s.SkippedRemote++ })
			case rec.TimeMs < oldest:
				it.skip = true
				b.count(func(s *Stats) { s.SkippedOld++ })
			default:
				it.rec, _ = invalidate.AppendRecord(nil, &rec)
			}
			pending = append(pending, it)
		}
		if len(pending) > 0 {
			if err := b.publish(ctx, pending); err != nil {
				b.count(func(s *Stats) { s.PublishErrors++ })
				b.warn("publish", "publishing to Redis failed; retrying", "err", err)
				if !b.pause(ctx, &backoff) {
					return
				}
				continue
			}
			backoff = b.opts.RetryMin
			b.mu.Lock()
			b.cur.setPosition(pending[len(pending)-1].pos)
			b.mu.Unlock()
			b.markDirty()
			pending = pending[:0]
		} else if fo.Position().Off != b.curOffset() && caughtUp {
			// Marks and garbage consumed: move the cursor along.
			b.mu.Lock()
			b.cur.setPosition(fo.Position())
			b.mu.Unlock()
			b.markDirty()
		}
		if !caughtUp {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.C:
		case <-b.kick:
		}
	}
}

func (b *Bridge) curOffset() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur.Offset
}

// publish sends the pending records with one pipeline of XADDs.
func (b *Bridge) publish(ctx context.Context, items []item) error {
	n := 0
	pipe := b.rdb.Pipeline()
	for _, it := range items {
		if it.skip {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.opts.Stream, MaxLen: b.opts.MaxLen, Approx: true,
			Values: []any{fieldPod, b.opts.Pod, fieldRec, it.rec}})
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	b.count(func(s *Stats) { s.Published += uint64(n) })
	return nil
}

func (b *Bridge) consumeLoop(ctx context.Context) {
	backoff := b.opts.RetryMin
	checkGap := true
	b.mu.Lock()
	last := b.cur.LastID
	b.mu.Unlock()
	for ctx.Err() == nil {
		if last == "" || checkGap {
			// Where to start, and whether entries after our cursor were
			// trimmed away while we were not reading.
			info, err := b.rdb.XInfoStream(ctx, b.opts.Stream).Result()
			if err == nil && last == "" {
				last = info.LastGeneratedID
			}
			switch {
			case err != nil && isNoStream(err):
				if last == "" {
					last = "0-0"
				}
			case err != nil:
				b.count(func(s *Stats) { s.ReadErrors++ })
				b.warn("xinfo", "reading the stream's state from Redis failed; retrying", "err", err)
				if !b.pause(ctx, &backoff) {
					return
				}
				continue
			case trimmedPast(info, last):
				b.count(func(s *Stats) { s.Gaps++ })
				b.warn("streamgap", "the stream was trimmed past this pod's cursor; invalidating everything",
					"cursor", last, "first", info.FirstEntry.ID)
				all := invalidate.AllRecord(invalidate.Hard)
				all.Origin, all.Flags = StreamGapOrigin, invalidate.FlagRemote
				if _, err := b.log.Append(ctx, all); err != nil {
					b.count(func(s *Stats) { s.AppendErrors++ })
					if !b.pause(ctx, &backoff) {
						return
					}
					continue
				}
			}
			checkGap = false
			b.mu.Lock()
			b.cur.LastID = last
			b.mu.Unlock()
		}
		res, err := b.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{b.opts.Stream, last},
			Count: int64(b.opts.Batch), Block: b.opts.Block}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing within Block
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.count(func(s *Stats) { s.ReadErrors++ })
			b.warn("xread", "reading from Redis failed; retrying", "err", err)
			checkGap = true
			if !b.pause(ctx, &backoff) {
				return
			}
			continue
		}
		var batch []invalidate.Record
		newLast := last
		if len(res) > 0 && len(res[0].Messages) >= b.opts.Batch {
			checkGap = true // lagging: make sure trimming is not overtaking us
		}
		for _, st := range res {
			for _, m := range st.Messages {
				newLast = m.ID
				if rec, ok := b.decode(m); ok {
					batch = append(batch, rec)
				}
			}
		}
		for len(batch) > 0 {
			if _, _, err := b.log.AppendBatch(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return
				}
				b.count(func(s *Stats) { s.AppendErrors++ })
				b.warn("append", "appending received records to the local log failed; retrying", "err", err)
				if !b.pause(ctx, &backoff) {
					return
				}
				continue
			}
			b.count(func(s *Stats) { s.Received += uint64(len(batch)) })
			break
		}
		backoff = b.opts.RetryMin
		last = newLast
		b.mu.Lock()
		b.cur.LastID = last
		b.mu.Unlock()
		b.markDirty()
	}
}

// decode turns a stream entry into a record to append, or reports false
// for this pod's own entries and bad ones (counted).
func (b *Bridge) decode(m redis.XMessage) (invalidate.Record, bool) {
	pod, _ := m.Values[fieldPod].(string)
	if pod == b.opts.Pod {
		b.count(func(s *Stats) { s.SkippedOwn++ })
		return invalidate.Record{}, false
	}
	raw, _ := m.Values[fieldRec].(string)
	rec, n, err := invalidate.DecodeRecord([]byte(raw))
	if err == nil && n == len(raw) {
		rec.Seq = 0 // the local log numbers it
		rec.Flags |= invalidate.FlagRemote
		err = rec.Validate()
	} else if err == nil {
		err = fmt.Errorf("%d trailing bytes", len(raw)-n)
	}
	if err != nil {
		b.count(func(s *Stats) { s.BadEntries++ })
		b.warn("entry", "skipping a stream entry that is not a valid record", "id", m.ID, "pod", pod, "err", err)
		return invalidate.Record{}, false
	}
	return rec, true
}

// trimmedPast reports whether entries after the cursor last were removed:
// the oldest entry left is newer than the cursor, and the stream has lost
// entries (more were ever added than it holds). A stream recreated empty
// after a Redis restart has lost none since.
func trimmedPast(info *redis.XInfoStream, last string) bool {
	return info.Length > 0 && info.EntriesAdded > info.Length && idLess(last, info.FirstEntry.ID) &&
		!idNext(last, info.FirstEntry.ID)
}

// idNext reports whether b is the id right after a in the same
// millisecond (nothing can lie between them).
func idNext(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return am == bm && as+1 == bs
}

func isNoStream(err error) bool {
	return errors.Is(err, redis.Nil) || strings.Contains(err.Error(), "no such key")
}

// idLess compares stream ids "ms-seq".
func idLess(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return am < bm || am == bm && as < bs
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// warn logs at most one message of each kind every 10s.
func (b *Bridge) warn(kind, msg string, args ...any) {
	now := time.Now()
	b.mu.Lock()
	last, ok := b.warned[kind]
	if ok && now.Sub(last) < 10*time.Second {
		b.mu.Unlock()
		return
	}
	b.warned[kind] = now
	b.mu.Unlock()
	b.opts.Logger.Warn("zerohop invalidation: "+msg, append(args, "path", b.opts.Path, "stream", b.opts.Stream)...)
}
