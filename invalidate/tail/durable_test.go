package tail_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/tail"
)

// forgeRecord appends rec's encoding as is, the way an app that ignores
// the protocol could.
func forgeRecord(t *testing.T, path string, rec invalidate.Record) {
	t.Helper()
	b, err := invalidate.AppendRecord(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestPublishWaitsForPersist: nothing is published (neither through
// Publish nor InvalidationSeq) before Persist has returned for it.
func TestPublishWaitsForPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	var rec recorder
	release := make(chan struct{})
	var persisted, published atomic.Uint64
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 5 * time.Millisecond,
		Persist: func(ctx context.Context, seq uint64) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			persisted.Store(seq)
			return nil
		},
		Publish: func(seq, off uint64) {
			if seq > persisted.Load() {
				t.Errorf("published %d, persisted %d", seq, persisted.Load())
			}
			published.Store(seq)
		},
		DurableSeq: math.MaxUint64,
	})
	l := openLog(t, path, "w")
	last := appendN(t, l, 5, "t")
	waitFor(t, 5*time.Second, "a record to be applied", func() bool { return rec.count() > 0 })
	time.Sleep(20 * time.Millisecond)
	if p, q := published.Load(), tl.InvalidationSeq(); p != 0 || q != 0 {
		t.Fatalf("published %d (InvalidationSeq %d) before Persist returned", p, q)
	}
	close(release)
	waitFor(t, 5*time.Second, "the records to be published", func() bool { return published.Load() == last })
}

// TestReplayFromDurableSeq: a consumer whose durable state is behind the
// checkpoint gets the records after its DurableSeq again, from the same
// file or, after a rotation that dropped some, an "all" for the gap.
func TestReplayFromDurableSeq(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		name := "same-file"
		if rotate {
			name = "rotated-away"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inval.log")
			l := openLog(t, path, "w")
			appendN(t, l, 10, "t")
			var first recorder
			opts := tail.Options{Path: path, Apply: first.apply, PollInterval: 5 * time.Millisecond}
			if rotate {
				opts.MaxSize = 1 // rotate after every batch: the file keeps only the mark
			}
			tl, stop := runTailer(t, opts)
			waitFor(t, 5*time.Second, "the first tailer", func() bool { return tl.InvalidationSeq() == 10 })
			if rotate {
				waitFor(t, 5*time.Second, "a rotation", func() bool { return tl.Stats().Rotations > 0 })
			}
			stop()

			var again recorder
			var persistedTo atomic.Uint64
			tl2, _ := runTailer(t, tail.Options{Path: path, Apply: again.apply, PollInterval: 5 * time.Millisecond,
				Persist:    func(_ context.Context, seq uint64) error { persistedTo.Store(seq); return nil },
				DurableSeq: 6})
			select {
			case <-tl2.Ready():
			case <-time.After(5 * time.Second):
				t.Fatal("never ready")
			}
			got := again.snapshot()
			if rotate {
				if len(got) != 1 || got[0].Kind != invalidate.KindAll || got[0].Origin != tail.GapOrigin {
					t.Fatalf("replay after the records were rotated away applied %v, want one gap \"all\"", got)
				}
			} else {
				checkContiguous(t, seqsOf(got), 7, 10)
			}
			if s := tl2.Stats(); s.Replays != 1 || s.AppliedSeq != 10 || persistedTo.Load() != 10 {
				t.Fatalf("stats %+v, persisted to %d", s, persistedTo.Load())
			}
		})
	}
}

// TestForgedSeqNotBelieved: a record numbered 2^64-1, a rotation mark
// numbered 2^64-1 and a record 2^40 above the log are applied but their
// numbers are never published; the tailer rotates them away, and the next
// honest append is numbered from the log and published once applied.
func TestForgedSeqNotBelieved(t *testing.T) {
	forged := []invalidate.Record{
		{Seq: math.MaxUint64, Kind: invalidate.KindTag, Payload: []byte("x")},
		{Seq: math.MaxUint64, Kind: invalidate.KindMark, Payload: []byte{invalidate.MarkRotate, 0, 0, 0, 0, 0, 0, 0, 0}},
		{Seq: 1 << 40, Kind: invalidate.KindTag, Payload: []byte("y")},
	}
	for _, f := range forged {
		t.Run(f.Kind.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inval.log")
			var rec recorder
			tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 5 * time.Millisecond})
			l, err := invalidate.OpenLog(path, &invalidate.LogOptions{Applied: tl})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			appendN(t, l, 3, "t")
			waitFor(t, 5*time.Second, "3 published", func() bool { return tl.InvalidationSeq() == 3 })
			forgeRecord(t, path, f)
			waitFor(t, 5*time.Second, "the forged record counted", func() bool { return tl.Stats().SeqJumps == 1 })
			waitFor(t, 5*time.Second, "the healing rotation", func() bool { return tl.Stats().Rotations == 1 })
			if s := tl.InvalidationSeq(); s != 3 {
				t.Fatalf("published %d after a forged record", s)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			seq, err := l.Append(ctx, invalidate.TagRecord("honest", invalidate.Hard))
			if err != nil || seq != 4 {
				t.Fatalf("honest append after the forged record: seq %d, %v", seq, err)
			}
			if err := invalidate.WaitApplied(ctx, tl, seq); err != nil {
				t.Fatal(err)
			}
			if got := rec.snapshot(); string(got[len(got)-1].Payload) != "honest" {
				t.Fatalf("applied %v", got)
			}
		})
	}
}

// TestAppendNeverWraps: an appender ignores numbers above MaxSeq, refuses
// to number past it, and stays above its Applied floor.
func TestAppendNeverWraps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	l := openLog(t, path, "w")
	appendN(t, l, 2, "t")
	forgeRecord(t, path, invalidate.Record{Seq: math.MaxUint64, Kind: invalidate.KindAll, Payload: []byte{}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if seq, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil || seq != 3 {
		t.Fatalf("after a record numbered 2^64-1: seq %d, %v; want 3", seq, err)
	}
	forgeRecord(t, path, invalidate.Record{Seq: invalidate.MaxSeq, Kind: invalidate.KindAll, Payload: []byte{}})
	if seq, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); !errors.Is(err, invalidate.ErrSeqExhausted) {
		t.Fatalf("after a record numbered MaxSeq: seq %d, %v; want ErrSeqExhausted", seq, err)
	}
	floor := fixedSeq(1000)
	p2 := filepath.Join(t.TempDir(), "inval.log")
	l2, err := invalidate.OpenLog(p2, &invalidate.LogOptions{Applied: floor})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if seq, err := l2.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil || seq != 1001 {
		t.Fatalf("with a published floor of 1000: seq %d, %v", seq, err)
	}
}

type fixedSeq uint64

func (f fixedSeq) InvalidationSeq() uint64 { return uint64(f) }

// TestBadCheckpointDiscarded: a checkpoint that is not JSON, numbered past
// MaxSeq or claiming far more than the log holds is discarded (counted)
// and the log applied from its start; what is published is the log's.
func TestBadCheckpointDiscarded(t *testing.T) {
	for name, body := range map[string]string{
		"garbage":     "{not json",
		"beyond-max":  `{"version":1,"dev":1,"ino":1,"head":"","offset":0,"seq":18446744073709551615,"published":18446744073709551615}`,
		"beyond-log":  `{"version":1,"dev":1,"ino":1,"head":"","offset":0,"seq":3,"published":1099511627776}`,
		"past-offset": `{"version":1,"dev":1,"ino":1,"head":"","offset":0,"seq":9007199254740992,"published":0}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inval.log")
			l := openLog(t, path, "w")
			appendN(t, l, 3, "t")
			if err := os.WriteFile(path+".ckpt", []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var rec recorder
			var published atomic.Uint64
			tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 5 * time.Millisecond,
				Publish: func(seq, _ uint64) { published.Store(seq) }})
			waitFor(t, 5*time.Second, "the log applied", func() bool { return rec.count() == 3 })
			waitFor(t, 5*time.Second, "3 published", func() bool { return published.Load() == 3 })
			if s := tl.Stats(); s.BadCheckpoints != 1 || s.AppliedSeq != 3 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestNoBaseBelievesFirstNumber: a tailer without a (valid) checkpoint
// believes the first number it reads, so a log that was rotated many times
// (it starts with a mark numbered in the millions) is published as usual.
func TestNoBaseBelievesFirstNumber(t *testing.T) {
	for _, ckpt := range []string{"", "{not json"} {
		t.Run(strconv.Quote(ckpt), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inval.log")
			forgeRecord(t, path, invalidate.Record{Seq: 5_000_000, Kind: invalidate.KindMark,
				Payload: []byte{invalidate.MarkRotate, 0, 0, 0, 0, 0, 0, 0, 0}})
			l := openLog(t, path, "w")
			last := appendN(t, l, 3, "t")
			if last != 5_000_003 {
				t.Fatalf("appended up to %d", last)
			}
			if ckpt != "" {
				os.WriteFile(path+".ckpt", []byte(ckpt), 0o644)
			}
			var rec recorder
			tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 5 * time.Millisecond})
			waitFor(t, 5*time.Second, "the log published", func() bool { return tl.InvalidationSeq() == last })
			if s := tl.Stats(); s.SeqJumps != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestPlantedRotationMarkLiftsNumbers: the log replaced by a file that
// starts with a forged rotation mark numbered low looks like a rotation,
// whose records up to the tailer's position are duplicates. The tailer
// raises the file's numbers above what it published, so that a record
// appended by a writer without a floor is neither skipped nor acknowledged
// before it is applied.
func TestPlantedRotationMarkLiftsNumbers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	var rec recorder
	tl, _ := runTailer(t, tail.Options{Path: path, Apply: rec.apply, PollInterval: 5 * time.Millisecond})
	l := openLog(t, path, "w")
	appendN(t, l, 10, "t")
	waitFor(t, 5*time.Second, "10 published", func() bool { return tl.InvalidationSeq() == 10 })
	planted := filepath.Join(dir, "planted")
	forgeRecord(t, planted, invalidate.Record{Seq: 2, Kind: invalidate.KindMark,
		Payload: []byte{invalidate.MarkRotate, 0, 0, 0, 0, 0, 0, 0, 0}})
	if err := os.Rename(planted, path); err != nil {
		t.Fatal(err)
	}
	tl.Kick()
	waitFor(t, 5*time.Second, "the re-sequence mark", func() bool {
		recs, _ := readAll(t, path)
		return len(recs) == 2 && recs[1].Kind == invalidate.KindMark && recs[1].Seq == 10
	})
	fresh := openLog(t, path, "other-writer")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seq, err := fresh.Append(ctx, invalidate.TagRecord("after-plant", invalidate.Hard))
	if err != nil || seq != 11 {
		t.Fatalf("append after the planted file: seq %d, %v; want 11", seq, err)
	}
	if err := invalidate.WaitApplied(ctx, tl, seq); err != nil {
		t.Fatal(err)
	}
	if got := rec.snapshot(); string(got[len(got)-1].Payload) != "after-plant" {
		t.Fatalf("the record after the planted mark was not applied: %v", seqsOf(got))
	}
}
