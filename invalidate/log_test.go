package invalidate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
)

func openLog(t testing.TB, path string, origin string) *invalidate.Log {
	t.Helper()
	l, err := invalidate.OpenLog(path, &invalidate.LogOptions{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// readAll returns every record of the file at path.
func readAll(t testing.TB, path string) ([]invalidate.Record, invalidate.ReaderStats) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := invalidate.NewReader(f, 0)
	var out []invalidate.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, invalidate.ErrNoRecord) {
			return out, r.Stats()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

func TestAppendSequence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	l := openLog(t, path, "w1")
	ctx := ctxT(t, 10*time.Second)
	for i := 1; i <= 100; i++ {
		seq, err := l.Append(ctx, invalidate.TagRecord("t"+strconv.Itoa(i), invalidate.Hard))
		if err != nil || seq != uint64(i) {
			t.Fatalf("append %d: seq %d err %v", i, seq, err)
		}
	}
	first, last, err := l.AppendBatch(ctx, []invalidate.Record{invalidate.AllRecord(invalidate.Soft), invalidate.KeyRecord("http://h/", invalidate.Hard)})
	if err != nil || first != 101 || last != 102 {
		t.Fatalf("batch %d..%d %v", first, last, err)
	}
	if _, err := l.Append(ctx, invalidate.Record{Kind: 99}); !errors.Is(err, invalidate.ErrUnknownKind) {
		t.Fatalf("unknown kind appended: %v", err)
	}
	recs, _ := readAll(t, path)
	if len(recs) != 102 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Origin != "w1" || r.TimeMs == 0 {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	// A second Log (another process, as far as the file knows) continues.
	l2 := openLog(t, path, "w2")
	if seq, err := l2.Append(ctx, invalidate.TagRecord("x", invalidate.Hard)); err != nil || seq != 103 {
		t.Fatalf("second log: %d %v", seq, err)
	}
	if seq, err := l.Append(ctx, invalidate.TagRecord("y", invalidate.Hard)); err != nil || seq != 104 {
		t.Fatalf("first log again: %d %v", seq, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o600 != 0o600 {
		t.Fatalf("log file mode: %v %v", fi, err)
	}
}

func TestAppendClosedAndCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	l := openLog(t, path, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	l.Close()
	if _, err := l.Append(context.Background(), invalidate.AllRecord(invalidate.Hard)); !errors.Is(err, invalidate.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	if _, err := invalidate.OpenLog(filepath.Join(t.TempDir(), "missing", "inval.log"), nil); err != nil {
		t.Fatal("OpenLog is lazy:", err)
	}
	l2 := openLog(t, filepath.Join(t.TempDir(), "missing", "inval.log"), "")
	if _, err := l2.Append(context.Background(), invalidate.AllRecord(invalidate.Hard)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestAppendTornTailAndGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	l := openLog(t, path, "")
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, invalidate.TagRecord("t", invalidate.Hard)); err != nil {
			t.Fatal(err)
		}
	}
	// A writer died mid-record (seq 4, never finished), then someone
	// appended garbage.
	torn := encode(t, invalidate.Record{Seq: 4, Kind: invalidate.KindTag, Payload: []byte("never finished")})
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn[:len(torn)-5])
	f.Close()
	l2 := openLog(t, path, "") // a fresh appender: finds the last valid seq behind the torn tail
	if seq, err := l2.Append(ctx, invalidate.TagRecord("after torn", invalidate.Hard)); err != nil || seq != 4 {
		t.Fatalf("after torn tail: seq %d err %v", seq, err)
	}
	if s := l2.Stats(); s.TornTails != 1 {
		t.Fatalf("log stats %+v", s)
	}
	f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("\x00\x01garbage\xffZHIV!")
	f.Close()
	if seq, err := l.Append(ctx, invalidate.TagRecord("after garbage", invalidate.Hard)); err != nil || seq != 5 {
		t.Fatalf("after garbage: seq %d err %v", seq, err)
	}
	recs, st := readAll(t, path)
	if len(recs) != 5 || recs[3].Seq != 4 || string(recs[3].Payload) != "after torn" || recs[4].Seq != 5 {
		t.Fatalf("records %v", recs)
	}
	if st.Torn != 1 || st.Garbage != 1 {
		t.Fatalf("reader stats %+v", st)
	}
}

func TestAppendFindsSeqAfterLongGap(t *testing.T) {
	// An appender that last looked long ago reads only the end of the log.
	path := filepath.Join(t.TempDir(), "inval.log")
	idle := openLog(t, path, "idle")
	busy := openLog(t, path, "busy")
	ctx := ctxT(t, 20*time.Second)
	if _, err := idle.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil {
		t.Fatal(err)
	}
	big := make([]invalidate.Record, 100)
	for i := range big {
		big[i] = invalidate.TagRecord(fmt.Sprintf("%01000d", i), invalidate.Hard)
	}
	for i := 0; i < 10; i++ { // ~1 MB
		if _, _, err := busy.AppendBatch(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := idle.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil || seq != 1002 {
		t.Fatalf("seq %d err %v", seq, err)
	}
}

func TestAppendAfterReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	l := openLog(t, path, "")
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 5; i++ {
		l.Append(ctx, invalidate.AllRecord(invalidate.Hard))
	}
	// Replaced by an empty file: the appender notices under the lock and
	// keeps numbering above what it knew.
	os.WriteFile(filepath.Join(dir, "new"), nil, 0o644)
	os.Rename(filepath.Join(dir, "new"), path)
	if seq, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil || seq != 6 {
		t.Fatalf("seq %d err %v", seq, err)
	}
	if s := l.Stats(); s.Reopens != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Removed: the next append creates it again.
	os.Remove(path)
	if seq, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil || seq != 7 {
		t.Fatalf("seq %d err %v", seq, err)
	}
	// A fresh appender on the replaced file numbers from the file; the
	// owner raises the floor.
	os.WriteFile(path, nil, 0o644)
	l2 := openLog(t, path, "")
	if seq, _ := l2.Append(ctx, invalidate.AllRecord(invalidate.Hard)); seq != 1 {
		t.Fatalf("fresh appender on an empty file: seq %d", seq)
	}
	if ok, err := l2.RaiseSeq(ctx, 100); !ok || err != nil {
		t.Fatalf("RaiseSeq: %v %v", ok, err)
	}
	if ok, _ := l2.RaiseSeq(ctx, 50); ok {
		t.Fatal("RaiseSeq below the last seq appended")
	}
	if seq, _ := l2.Append(ctx, invalidate.AllRecord(invalidate.Hard)); seq != 101 {
		t.Fatalf("after RaiseSeq: seq %d", seq)
	}
}

// writerCount is how many records each writer process appends.
func writerCount() int {
	if raceEnabled {
		return 10_000
	}
	return 50_000
}

func init() {
	registerRole("writer", func() int {
		path, id := os.Getenv("LOG"), os.Getenv("WRITER")
		n, _ := strconv.Atoi(os.Getenv("COUNT"))
		l, err := invalidate.OpenLog(path, &invalidate.LogOptions{Origin: id})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < n; i++ {
			if _, err := l.Append(ctx, invalidate.TagRecord(id+":"+strconv.Itoa(i), invalidate.Hard)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return 0
	})
}

// TestConcurrentWriterProcesses: 4 processes append at once; every
// sequence number is unique and contiguous, every record decodes, and each
// writer's records are in its own order.
func TestConcurrentWriterProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	const writers = 4
	n := writerCount()
	start := time.Now()
	var cmds []*os.Process
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		cmd := roleCommand("writer", "LOG="+path, "WRITER=w"+strconv.Itoa(w), "COUNT="+strconv.Itoa(n))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd.Process)
		go func() { errs <- cmd.Wait() }()
	}
	t.Cleanup(func() {
		for _, p := range cmds {
			p.Kill()
		}
	})
	timeout := time.After(80 * time.Second)
	for w := 0; w < writers; w++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal("writer:", err)
			}
		case <-timeout:
			t.Fatal("writers did not finish")
		}
	}
	el := time.Since(start)
	recs, st := readAll(t, path)
	t.Logf("%d records from %d processes in %v: %.0f records/s", len(recs), writers, el, float64(len(recs))/el.Seconds())
	if len(recs) != writers*n || st.Garbage+st.Torn+st.Unusable != 0 {
		t.Fatalf("%d records, want %d; stats %+v", len(recs), writers*n, st)
	}
	next := map[string]int{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		want := r.Origin + ":" + strconv.Itoa(next[r.Origin])
		if string(r.Payload) != want {
			t.Fatalf("record %d: %q, want %q", i, r.Payload, want)
		}
		next[r.Origin]++
	}
}

// TestRotateUnderAppenders: the owner rotates repeatedly while appenders
// (separate Logs, as separate processes would be) append; a follower sees
// every record exactly once, in order.
func TestRotateUnderAppenders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	owner := openLog(t, path, "owner")
	ctx := ctxT(t, 30*time.Second)
	if _, err := owner.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil {
		t.Fatal(err)
	}
	const appenders, per = 4, 3000
	var wg sync.WaitGroup
	var failed atomic.Value
	for a := 0; a < appenders; a++ {
		l := openLog(t, path, "a"+strconv.Itoa(a))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := l.Append(ctx, invalidate.TagRecord("t", invalidate.Hard)); err != nil {
					failed.Store(err)
					return
				}
				if i%100 == 99 {
					time.Sleep(time.Millisecond) // let rotations interleave
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	fo := invalidate.NewFollower(path, invalidate.Position{})
	defer fo.Close()
	var got []uint64
	rotations := 0
	drain := func() {
		for {
			rec, err := fo.Next()
			if errors.Is(err, invalidate.ErrNoRecord) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec.Seq)
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		drain()
		if fo.Size() > 8<<10 {
			pos := fo.Position()
			res, err := owner.Rotate(ctx, invalidate.RotateSpec{Want: pos.File, KeepFrom: pos.Off, MarkSeq: pos.Seq})
			if errors.Is(err, invalidate.ErrChanged) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			rotations++
			fo.Rebase(invalidate.Position{File: res.New, Head: res.Head, Off: res.MarkLen + pos.Off - pos.Off, Seq: pos.Seq})
		}
	}
	drain()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1+appenders*per {
		t.Fatalf("%d records, want %d (%d rotations, stats %+v)", len(got), 1+appenders*per, rotations, fo.Stats())
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, s)
		}
	}
	if rotations < 3 {
		t.Fatalf("only %d rotations", rotations)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatal("old file not kept:", err)
	}
	t.Logf("%d rotations, follower stats %+v", rotations, fo.Stats())
}
