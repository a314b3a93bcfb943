package invalidate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerohop/zerohop/invalidate"
)

// growing is a log file a test appends raw bytes to.
type growing struct {
	t *testing.T
	f *os.File
}

func newGrowing(t *testing.T) *growing {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "inval.log"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &growing{t, f}
}

func (g *growing) write(b []byte) {
	if _, err := g.f.Write(b); err != nil {
		g.t.Fatal(err)
	}
}

func tagRec(seq uint64, tag string) invalidate.Record {
	return invalidate.Record{Seq: seq, Kind: invalidate.KindTag, Payload: []byte(tag)}
}

// expect reads the next record and checks its sequence number.
func expect(t *testing.T, r *invalidate.Reader, seq uint64) {
	t.Helper()
	rec, err := r.Next()
	if err != nil || rec.Seq != seq {
		t.Fatalf("got %v %v, want record %d", rec, err, seq)
	}
}

func expectNone(t *testing.T, r *invalidate.Reader) {
	t.Helper()
	if rec, err := r.Next(); !errors.Is(err, invalidate.ErrNoRecord) {
		t.Fatalf("got %v %v, want ErrNoRecord", rec, err)
	}
}

func TestReaderGarbage(t *testing.T) {
	g := newGrowing(t)
	g.write(encode(t, tagRec(1, "a")))
	g.write([]byte("hello, not a record"))
	g.write(encode(t, tagRec(2, "b")))
	bad := encode(t, tagRec(3, "c"))
	bad[len(bad)-1] ^= 0xff // checksum mismatch: skipped from the magic on
	g.write(bad)
	g.write([]byte("ZHIVZHIV\xff\xff\xff\xff")) // fake magics, impossible length
	g.write(encode(t, tagRec(4, "d")))
	r := invalidate.NewReader(g.f, 0)
	expect(t, r, 1)
	expect(t, r, 2)
	expect(t, r, 4)
	expectNone(t, r)
	s := r.Stats()
	if s.Records != 3 || s.Garbage != 2 || s.GarbageBytes != uint64(len("hello, not a record")+len(bad)+12) {
		t.Fatalf("stats %+v", s)
	}
}

func TestReaderTornTail(t *testing.T) {
	g := newGrowing(t)
	a, b, c := encode(t, tagRec(1, "a")), encode(t, tagRec(2, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")), encode(t, tagRec(3, "c"))
	g.write(a)
	g.write(b[:len(b)/2]) // a writer died mid-append
	r := invalidate.NewReader(g.f, 0)
	expect(t, r, 1)
	expectNone(t, r) // not yet: it may still be written
	expectNone(t, r)
	if r.Offset() != int64(len(a)) {
		t.Fatalf("offset %d, want %d (waiting at the incomplete record)", r.Offset(), len(a))
	}
	g.write(c) // a newer valid record follows: the half record was torn
	expect(t, r, 3)
	if s := r.Stats(); s.Torn != 1 || s.TornBytes != uint64(len(b)/2) || s.Garbage != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReaderIncompleteThenComplete(t *testing.T) {
	for _, cut := range []int{1, 3, 4, 11, 12, 20, 40} {
		g := newGrowing(t)
		a, b := encode(t, tagRec(1, "a")), encode(t, tagRec(2, "a somewhat longer tag"))
		g.write(a)
		g.write(b[:cut])
		r := invalidate.NewReader(g.f, 0)
		expect(t, r, 1)
		expectNone(t, r)
		g.write(b[cut:])
		expect(t, r, 2)
		expectNone(t, r)
		if s := r.Stats(); s.Torn+s.Garbage != 0 {
			t.Fatalf("cut %d: stats %+v", cut, s)
		}
	}
}

func TestReaderUnusable(t *testing.T) {
	g := newGrowing(t)
	future := recrc(func(b []byte) []byte { b[12] = 9; return b }(encode(t, tagRec(1, "embedded ZHIV"))))
	g.write(future)
	g.write(encode(t, tagRec(2, "b")))
	r := invalidate.NewReader(g.f, 0)
	expect(t, r, 2)
	if s := r.Stats(); s.Unusable != 1 || s.Garbage != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReaderLargeGarbage(t *testing.T) {
	g := newGrowing(t)
	junk := make([]byte, 300<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	g.write(junk)
	g.write(encode(t, tagRec(1, "after")))
	r := invalidate.NewReader(g.f, 0)
	expect(t, r, 1)
	if s := r.Stats(); s.Garbage != 1 || s.GarbageBytes != uint64(len(junk)) {
		t.Fatalf("stats %+v", s)
	}
}
