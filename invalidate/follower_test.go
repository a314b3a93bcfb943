package invalidate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
)

func nextSeq(t *testing.T, fo *invalidate.Follower) (uint64, error) {
	t.Helper()
	rec, err := fo.Next()
	return rec.Seq, err
}

// TestFollowerGap: a follower that resumes from a saved position after a
// rotation dropped records it had not read gets ErrGap once, then goes on
// with the new file. (A follower still holding the old file drains it: no
// gap.)
func TestFollowerGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inval.log")
	owner := openLog(t, path, "")
	ctx := ctxT(t, 10*time.Second)
	appendNRecs(t, owner, 5)
	fo := invalidate.NewFollower(path, invalidate.Position{})
	for want := uint64(1); want <= 2; want++ {
		if s, err := nextSeq(t, fo); s != want || err != nil {
			t.Fatalf("got %d %v", s, err)
		}
	}
	saved := fo.Position()
	// Holding the old file: records 3..5 are drained from it.
	probe := invalidate.NewFollower(path, invalidate.Position{})
	for {
		if _, err := probe.Next(); err != nil {
			break
		}
	}
	pos := probe.Position()
	probe.Close()
	if _, err := owner.Rotate(ctx, invalidate.RotateSpec{Want: pos.File, KeepFrom: pos.Off, MarkSeq: pos.Seq}); err != nil {
		t.Fatal(err)
	}
	appendNRecs(t, owner, 1) // 6
	var drained []uint64
	for {
		s, err := nextSeq(t, fo)
		if err != nil {
			break
		}
		drained = append(drained, s)
	}
	fo.Close()
	if len(drained) != 4 || drained[0] != 3 || drained[3] != 6 || fo.Stats().Gaps != 0 {
		t.Fatalf("drained %v stats %+v", drained, fo.Stats())
	}
	// Resuming from the saved position: 3..5 are gone.
	fo2 := invalidate.NewFollower(path, saved)
	defer fo2.Close()
	if _, err := fo2.Next(); !errors.Is(err, invalidate.ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	if s, err := nextSeq(t, fo2); s != 6 || err != nil {
		t.Fatalf("after the gap: %d %v", s, err)
	}
	if st := fo2.Stats(); st.Gaps != 1 || st.Rotations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFollowerResumesAndDrains: a follower resumes at a saved position,
// and drains the old file when the path is replaced under it.
func TestFollowerResumesAndDrains(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	l := openLog(t, path, "")
	appendNRecs(t, l, 3)
	fo := invalidate.NewFollower(path, invalidate.Position{})
	if s, _ := nextSeq(t, fo); s != 1 {
		t.Fatal(s)
	}
	saved := fo.Position()
	fo.Close()
	fo2 := invalidate.NewFollower(path, saved)
	defer fo2.Close()
	if s, _ := nextSeq(t, fo2); s != 2 {
		t.Fatalf("resumed at %d", s)
	}
	// A foreign file replaces the log; record 3 is still read from the
	// old one first, then the new file's from its start.
	other := filepath.Join(dir, "other")
	lo := openLog(t, other, "")
	appendNRecs(t, lo, 2)
	if err := renameFile(other, path); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for {
		s, err := nextSeq(t, fo2)
		if err != nil {
			break
		}
		seqs = append(seqs, s)
	}
	if len(seqs) != 3 || seqs[0] != 3 || seqs[1] != 1 || seqs[2] != 2 || fo2.Stats().Replaced != 1 {
		t.Fatalf("seqs %v stats %+v", seqs, fo2.Stats())
	}
}

func appendNRecs(t *testing.T, l *invalidate.Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Append(ctxT(t, 5*time.Second), invalidate.TagRecord("t", invalidate.Hard)); err != nil {
			t.Fatal(err)
		}
	}
}

func renameFile(from, to string) error { return os.Rename(from, to) }
