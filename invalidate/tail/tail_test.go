package tail_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/tail"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is an Apply that remembers what it applied.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
	recs []invalidate.Record
	fail func(invalidate.Record) error
}

func (r *recorder) apply(rec invalidate.Record) error {
	if r.fail != nil {
		if err := r.fail(rec); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.seqs = append(r.seqs, rec.Seq)
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}

func (r *recorder) snapshot() []invalidate.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]invalidate.Record(nil), r.recs...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// runTailer starts a tailer and stops it at cleanup (or by the returned
// stop func, which waits for Run to return).
func runTailer(t *testing.T, opts tail.Options) (*tail.Tailer, func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	tl, err := tail.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Error("Run:", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("tailer did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return tl, stop
}

func openLog(t testing.TB, path, origin string) *invalidate.Log {
	t.Helper()
	l, err := invalidate.OpenLog(path, &invalidate.LogOptions{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t testing.TB, l *invalidate.Log, n int, tag string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last uint64
	for i := 0; i < n; i++ {
		seq, err := l.Append(ctx, invalidate.TagRecord(tag+strconv.Itoa(i), invalidate.Hard))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	return last
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func checkContiguous(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(seqs)) != to-from+1 {
		t.Fatalf("%d records applied, want %d..%d", len(seqs), from, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("applied #%d is seq %d, want %d", i, s, from+uint64(i))
		}
	}
}

func seqsOf(recs []invalidate.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func TestTailerAppliesInOrderAndPublishes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval", "inval.log") // directory created by the tailer
	var rec recorder
	var pubSeq, pubOff atomic.Uint64
	tl, stop := runTailer(t, tail.Options{Path: path, Apply: rec.apply,
		Publish: func(seq, off uint64) { pubSeq.Store(seq); pubOff.Store(off) }})
	waitFor(t, 5*time.Second, "directory", func() bool { _, err := os.Stat(filepath.Dir(path)); return err == nil })
	l := openLog(t, path, "w")
	last := appendN(t, l, 500, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := invalidate.WaitApplied(ctx, tl, last); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, seqsOf(rec.snapshot()), 1, last)
	fi, _ := os.Stat(path)
	if pubSeq.Load() != last || pubOff.Load() != uint64(fi.Size()) {
		t.Fatalf("published %d@%d, want %d@%d", pubSeq.Load(), pubOff.Load(), last, fi.Size())
	}
	stop()
	if s := tl.Stats(); s.Applied != last || s.AppliedSeq != last || s.LagBytes != 0 || s.AppliedOffset != fi.Size() {
		t.Fatalf("stats %+v", s)
	}
	if _, err := os.Stat(path + ".ckpt"); err != nil {
		t.Fatal("no checkpoint:", err)
	}

	// Restart: resumes after the last record, publishes the checkpoint's
	// sequence at once, applies only what is new.
	var rec2 recorder
	pubSeq.Store(0)
	tl2, _ := runTailer(t, tail.Options{Path: path, Apply: rec2.apply,
		Publish: func(seq, off uint64) { pubSeq.Store(seq) }})
	waitFor(t, 5*time.Second, "published checkpoint", func() bool { return pubSeq.Load() == last })
	last2 := appendN(t, l, 10, "u")
	if err := invalidate.WaitApplied(ctx, tl2, last2); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, seqsOf(rec2.snapshot()), last+1, last2)
}

func TestTailerBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	l := openLog(t, path, "")
	appendN(t, l, 3, "a") // 1..3
	raw := func(b []byte) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		f.Close()
	}
	enc := func(r invalidate.Record) []byte {
		b, err := invalidate.AppendRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw([]byte("this is garbage\n"))
	raw(enc(invalidate.Record{Seq: 4, Kind: 42, Payload: []byte("from the future")}))           // unknown kind
	raw(enc(invalidate.Record{Seq: 5, Kind: invalidate.KindAll, Mode: 7}))                      // unknown mode: never "all"
	raw(enc(invalidate.Record{Seq: 6, Kind: invalidate.KindKey, Payload: []byte("not a url")})) // bad payload
	torn := enc(invalidate.Record{Seq: 7, Kind: invalidate.KindTag, Payload: []byte("torn record tag")})
	raw(torn[:len(torn)-4])
	var rec recorder
	rec.fail = func(r invalidate.Record) error {
		if r.Kind == invalidate.KindKey {
			if _, _, _, err := invalidate.SplitURL(string(r.Payload)); err != nil {
				return err
			}
		}
		return nil
	}
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "first records", func() bool { return rec.count() == 3 })
	last := appendN(t, l, 2, "b") // 7, 8 (after the torn tail)
	if last != 8 {
		t.Fatalf("appender numbered past the torn record: %d", last)
	}
	waitFor(t, 5*time.Second, "records after the torn tail", func() bool { return rec.count() == 5 })
	got := rec.snapshot()
	if got[3].Seq != 7 || got[4].Seq != 8 {
		t.Fatalf("applied %v", seqsOf(got))
	}
	s := tl.Stats()
	if s.UnknownKinds != 2 || s.BadPayloads != 1 || s.Reader.Garbage != 1 || s.Reader.Torn != 1 || s.Applied != 5 {
		t.Fatalf("stats %+v", s)
	}
	for _, r := range got {
		if r.Kind == invalidate.KindAll {
			t.Fatal("an unknown mode was applied as \"all\"")
		}
	}
}

func TestTailerApplyRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	var fails atomic.Int32
	var rec recorder
	rec.fail = func(r invalidate.Record) error {
		if r.Seq == 2 && fails.Add(1) <= 3 {
			return errors.New("store unavailable")
		}
		return nil
	}
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, RetryMax: 5 * time.Millisecond})
	l := openLog(t, path, "")
	last := appendN(t, l, 3, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := invalidate.WaitApplied(ctx, tl, last); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, seqsOf(rec.snapshot()), 1, 3)
	if s := tl.Stats(); s.ApplyErrors != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTailerReplacedWhileTailed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	l := openLog(t, path, "")
	var rec recorder
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 20 * time.Millisecond})
	last := appendN(t, l, 20, "old") // 1..20
	waitFor(t, 5*time.Second, "old records", func() bool { return rec.count() == 20 })

	// Another file, numbered from 1, is renamed over the log.
	other := filepath.Join(dir, "other.log")
	lo := openLog(t, other, "")
	appendN(t, lo, 3, "new")
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the new file's records", func() bool { return rec.count() == 23 })
	got := rec.snapshot()[20:]
	for i, r := range got {
		if string(r.Payload) != "new"+strconv.Itoa(i) {
			t.Fatalf("applied %v", got)
		}
	}
	// The tailer lifted the numbering: a new append's wait is honest.
	waitFor(t, 5*time.Second, "replacement noticed", func() bool { return tl.Stats().Replaced == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var seq uint64
	waitFor(t, 5*time.Second, "reseq mark", func() bool {
		recs, _ := readAll(t, path)
		return len(recs) == 4 && recs[3].Kind == invalidate.KindMark
	})
	seq, err := l.Append(ctx, invalidate.TagRecord("after", invalidate.Hard))
	if err != nil || seq <= last {
		t.Fatalf("append after replacement got seq %d (published %d): %v", seq, last, err)
	}
	if err := invalidate.WaitApplied(ctx, tl, seq); err != nil {
		t.Fatal(err)
	}
	if r := rec.snapshot(); string(r[len(r)-1].Payload) != "after" {
		t.Fatalf("last applied %v", r[len(r)-1])
	}

	// Truncated in place, then written again.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	n := rec.count()
	seq2, err := l.Append(ctx, invalidate.TagRecord("after truncate", invalidate.Hard))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "record after truncation", func() bool { return rec.count() == n+1 })
	if r := rec.snapshot(); string(r[n].Payload) != "after truncate" || r[n].Seq != seq2 {
		t.Fatalf("applied %v", r[n])
	}
	if s := tl.Stats(); s.Replaced != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func readAll(t *testing.T, path string) ([]invalidate.Record, invalidate.ReaderStats) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := invalidate.NewReader(f, 0)
	var out []invalidate.Record
	for {
		rec, err := r.Next()
		if err != nil {
			return out, r.Stats()
		}
		out = append(out, rec)
	}
}

// TestTailerRotationUnderAppenders: a small MaxSize makes the tailer rotate
// many times while 4 appenders write; every record is applied exactly once,
// in order, and the log stays bounded.
func TestTailerRotationUnderAppenders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	var rec recorder
	var maxSize atomic.Int64
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: func(r invalidate.Record) error {
		if fi, err := os.Stat(path); err == nil && fi.Size() > maxSize.Load() {
			maxSize.Store(fi.Size())
		}
		return rec.apply(r)
	}, MaxSize: 16 << 10, PollInterval: 10 * time.Millisecond})
	const appenders, per = 4, 2500
	var wg sync.WaitGroup
	for a := 0; a < appenders; a++ {
		l := openLog(t, path, "a"+strconv.Itoa(a))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per/100; i++ {
				appendN(t, l, 100, "t")
				time.Sleep(time.Millisecond) // let rotations interleave with appends
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := invalidate.WaitApplied(ctx, tl, appenders*per); err != nil {
		t.Fatal(err, tl.Stats())
	}
	checkContiguous(t, seqsOf(rec.snapshot()), 1, appenders*per)
	// Once idle, the log is rotated down below MaxSize.
	waitFor(t, 5*time.Second, "final rotation", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() <= 16<<10
	})
	waitFor(t, 5*time.Second, "rotations", func() bool { return tl.Stats().Rotations >= 3 })
	s := tl.Stats()
	if s.Gaps != 0 || s.Replaced != 0 {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("%d rotations, largest log seen %d bytes", s.Rotations, maxSize.Load())
	if maxSize.Load() > 1<<20 {
		t.Fatalf("log grew to %d bytes", maxSize.Load())
	}
}

// TestTailerHold: rotation keeps what a slower consumer (the bridge) has
// not consumed; that consumer, following the same log, loses nothing.
func TestTailerHold(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	var held atomic.Uint64 // the slow consumer's durable position
	var rec recorder
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, MaxSize: 4 << 10,
		Hold: held.Load, PollInterval: 10 * time.Millisecond})
	l := openLog(t, path, "")
	slow := invalidate.NewFollower(path, invalidate.Position{})
	defer slow.Close()
	var got []uint64
	consume := func(max int) {
		for i := 0; i < max; i++ {
			r, err := slow.Next()
			if errors.Is(err, invalidate.ErrNoRecord) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Seq)
			held.Store(r.Seq)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last uint64
	for round := 0; round < 20; round++ {
		last = appendN(t, l, 100, "r"+strconv.Itoa(round))
		if err := invalidate.WaitApplied(ctx, tl, last); err != nil {
			t.Fatal(err)
		}
		consume(30) // falls behind the tailer, which rotates meanwhile
	}
	consume(1 << 30)
	checkContiguous(t, got, 1, last)
	if s := tl.Stats(); s.Rotations == 0 || s.HoldDropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	if fs := slow.Stats(); fs.Gaps != 0 || fs.Rotations == 0 {
		t.Fatalf("follower stats %+v", fs)
	}
}

// The crash test's child: tail LOG, and for each record write its seq to
// OUT (8 bytes, little-endian) before the tailer checkpoints it.
func init() {
	registerRole("tailer", func() int {
		out, err := os.OpenFile(os.Getenv("OUT"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var b [8]byte
		tl, err := tail.New(tail.Options{Path: os.Getenv("LOG"), Logger: quiet, CheckpointInterval: time.Millisecond,
			MaxSize: 64 << 10, Apply: func(r invalidate.Record) error {
				binary.LittleEndian.PutUint64(b[:], r.Seq)
				_, err := out.Write(b[:])
				return err
			}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tl.Run(ctx) // until killed
		return 0
	})
}

func readSeqs(t *testing.T, path string) []uint64 {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

// TestTailerKilledMidStream: kill -9 a tailer process while records flow
// (and it rotates), restart it from its checkpoint; each run applies in
// order, the restart re-applies at most the unchecked tail, and together
// they apply every record.
//
// It waits on events, not time: the kill comes once run 1 has both made
// progress and rotated (its kept file exists), and run 2 starts once run 1
// has exited. It used to check for the kept file while run 2 was still
// rotating, and Rotate replaced that file with a remove and a link: a look
// (or a kill) between the two found no kept file ("the tailers never
// rotated"). Rotate now renames a new link over it, so once made it never
// goes missing.
func TestTailerKilledMidStream(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	l := openLog(t, path, "w")
	start := func(out string) (*os.Process, chan struct{}) {
		cmd := roleCommand("tailer", "LOG="+path, "OUT="+out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		return cmd.Process, exited
	}
	rotated := func() bool { _, err := os.Stat(path + ".1"); return err == nil }
	const total = 20000
	var appended atomic.Uint64
	stopAppend := make(chan struct{})
	appendDone := make(chan struct{})
	go func() {
		defer close(appendDone)
		for i := 0; i < total; i++ {
			select {
			case <-stopAppend:
				return
			default:
			}
			seq, err := l.Append(context.Background(), invalidate.TagRecord("t"+strconv.Itoa(i), invalidate.Hard))
			if err != nil {
				t.Error(err)
				return
			}
			appended.Store(seq)
			if i%64 == 0 {
				time.Sleep(100 * time.Microsecond) // keep the tailer mid-stream
			}
		}
	}()
	defer func() { close(stopAppend); <-appendDone }()

	out1, out2 := filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
	p, exited := start(out1)
	waitFor(t, 20*time.Second, "first run progress and a rotation", func() bool {
		return len(readSeqs(t, out1)) >= total/3 && rotated()
	})
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	start(out2)
	waitFor(t, 30*time.Second, "all records", func() bool {
		s := readSeqs(t, out2)
		return appended.Load() == total && len(s) > 0 && s[len(s)-1] == total
	})
	run1, run2 := readSeqs(t, out1), readSeqs(t, out2)
	for _, run := range [][]uint64{run1, run2} {
		for i := 1; i < len(run); i++ {
			if run[i] != run[i-1]+1 {
				t.Fatalf("a run applied %d after %d", run[i], run[i-1])
			}
		}
	}
	if run1[0] != 1 || run2[0] > run1[len(run1)-1]+1 {
		t.Fatalf("run 1 applied %d..%d, run 2 started at %d: skipped records", run1[0], run1[len(run1)-1], run2[0])
	}
	if !rotated() {
		t.Fatal("the kept file of the first run's rotation went missing")
	}
	t.Logf("run 1 applied 1..%d; killed; run 2 re-applied %d and went on to %d",
		run1[len(run1)-1], run1[len(run1)-1]+1-run2[0], run2[len(run2)-1])
}
