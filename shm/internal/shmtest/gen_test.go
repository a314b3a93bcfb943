package shmtest

import (
	"bytes"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

func TestGenDeterministic(t *testing.T) {
	g1, g2 := &Gen{Seed: 7}, &Gen{Seed: 7}
	for id := 0; id < 200; id++ {
		for _, ver := range []uint64{1, 2, 1<<40 | 3} {
			a, b := g1.Item(id, ver, 1000), g2.Item(id, ver, 1000)
			if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Body, b.Body) ||
				!bytes.Equal(shm.AppendHeaderBlock(nil, a.Header), shm.AppendHeaderBlock(nil, b.Header)) {
				t.Fatalf("id %d ver %d: two generators with one seed disagree", id, ver)
			}
			if len(a.Body) > MaxBody {
				t.Fatalf("id %d ver %d: body %d bytes; want <= %d", id, ver, len(a.Body), MaxBody)
			}
		}
	}
	if bytes.Equal((&Gen{Seed: 1}).Item(5, 1, 0).Body, (&Gen{Seed: 2}).Item(5, 1, 0).Body) &&
		len((&Gen{Seed: 1}).Item(5, 1, 0).Body) > 32 {
		t.Error("seed does not change the content")
	}
}

// TestHeaderBlockMatchesShm pins the generator's own header encoding to
// shm.AppendHeaderBlock, which the writer uses.
func TestHeaderBlockMatchesShm(t *testing.T) {
	g := &Gen{Seed: 3}
	for id := 0; id < 500; id++ {
		s := g.Spec(id, uint64(id)*31+1)
		if got, want := shm.AppendHeaderBlock(nil, s.Header()), s.AppendHeaderBlock(nil); !bytes.Equal(got, want) {
			t.Fatalf("id %d: shm block %q; generator block %q", id, got, want)
		}
	}
}

// TestCheckerRoundTripAndDetects stores generated items, checks that every
// hit passes, and that the checker rejects each kind of wrong response (so
// that a passing torture run means something).
func TestCheckerRoundTripAndDetects(t *testing.T) {
	g := &Gen{Seed: 11}
	w, err := shm.OpenWriter(t.TempDir(), &shm.Options{Size: 4 << 20, RegionSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := NewChecker(g)
	now := time.Now().UnixMilli()
	for id := 0; id < 100; id++ {
		ver := uint64(id)<<8 | 5
		if err := w.Put(g.Item(id, ver, now)); err != nil {
			t.Fatal(err)
		}
		e, _, ok := w.GetStale(nil, g.Key(nil, id))
		if !ok {
			t.Fatalf("id %d: miss right after Put", id)
		}
		got, err := c.Check(id, &e)
		if err != nil || got != ver {
			t.Fatalf("id %d: Check = %d, %v; want %d, nil", id, got, err, ver)
		}
		if _, err := c.Check(id+1, &e); err == nil {
			t.Fatalf("id %d: entry accepted as the response of key %d", id, id+1)
		}
	}
	e, _, _ := w.GetStale(nil, g.Key(nil, 42))
	for _, tt := range []struct {
		name   string
		mangle func(e *Entry)
	}{
		{"body byte", func(e *Entry) {
			if len(e.Body) > 0 {
				e.Body = append([]byte(nil), e.Body...)
				e.Body[len(e.Body)-1] ^= 1
			} else {
				e.Body = []byte("x")
			}
		}},
		{"status", func(e *Entry) { e.Status++ }},
		{"etag", func(e *Entry) { e.ETag = append(append([]byte(nil), e.ETag...), 'x') }},
		{"tags", func(e *Entry) { e.Tags = nil }},
		{"headers", func(e *Entry) { e.Headers = append(append([]byte(nil), e.Headers...), 0, 0, 0, 0, 0, 0) }},
		{"version", func(e *Entry) {
			// Another version's X-Ver with this version's body.
			s := g.Spec(42, 42<<8|6)
			e.Headers = s.AppendHeaderBlock(nil)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := e
			tt.mangle(&m)
			if _, err := c.Check(42, &m); err == nil {
				t.Fatal("mangled entry passed the check")
			}
		})
	}
}

// Entry is a local alias to keep the table above short.
type Entry = shm.Entry
