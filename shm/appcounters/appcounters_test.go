package appcounters

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func validFile(t testing.TB) []byte {
	b := make([]byte, HeaderSize+8*Count)
	putHeader(b, 42, 0x1234, 1000, "go")
	for i := range Count {
		binary.LittleEndian.PutUint64(b[HeaderSize+8*i:], uint64(i+1))
	}
	return b
}

func TestParse(t *testing.T) {
	good := validFile(t)
	h, c, err := Parse(good)
	if err != nil || h.PID != 42 || h.Instance != 0x1234 || h.Client != "go" || c[Hits] != 1 || c[Remaps] != Count {
		t.Fatalf("Parse: %+v %v %v", h, c, err)
	}
	set := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	newer := set(offCount, Count+2) // a later minor version: two more counters
	newer = append(newer, make([]byte, 16)...)
	binary.LittleEndian.PutUint16(newer[offMinor:], 3)
	older := set(offCount, 3)[:HeaderSize+24]
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMagic},
		{"short", good[:HeaderSize-1], ErrMagic},
		{"magic", append([]byte("ZHAPPCTX"), good[8:]...), ErrMagic},
		{"major", func() []byte { b := bytes.Clone(good); b[offMajor] = 2; return b }(), ErrVersion},
		{"truncated", good[:len(good)-8], ErrSize},
		{"longer", append(bytes.Clone(good), 0, 0, 0, 0, 0, 0, 0, 0), ErrSize},
		{"count huge", set(offCount, 1<<31), ErrSize},
		{"header small", set(offHdrSize, 8), ErrSize},
		{"header odd", set(offHdrSize, 65), ErrSize},
		{"header huge", set(offHdrSize, 1<<30), ErrSize},
		{"zero instance", func() []byte { b := bytes.Clone(good); clear(b[offInstance : offInstance+8]); return b }(), ErrInstance},
		{"newer minor", newer, nil},
		{"older minor", older, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, c, err := Parse(tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err %v; want %v", err, tt.want)
			}
			if tt.name == "older minor" && (c[Hits] != 1 || c[BypassMethod] != 0) {
				t.Errorf("older file: missing counters must read as zero: %v", c)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(validFile(f))
	f.Add([]byte(Magic))
	f.Add(append([]byte(Magic), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, c, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever is accepted is self-consistent.
		if h.Major != Major || h.Instance == 0 || int(h.HeaderSize)+8*int(h.Count) != len(b) {
			t.Fatalf("accepted inconsistent file: %+v (%d bytes)", h, len(b))
		}
		for i := int(h.Count); i < Count; i++ {
			if c[i] != 0 {
				t.Fatalf("counter %d beyond the file's count is %d", i, c[i])
			}
		}
	})
}

func requireUnix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
}

// TestCollectorLifecycle: two publishers sum; one closes (its process
// gone) and its counters stay in the total, once; the file is removed.
func TestCollectorLifecycle(t *testing.T) {
	requireUnix(t)
	dir := t.TempDir()
	col := NewCollector(dir, 0)
	a, err := NewPublisher(dir, "go")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPublisher(dir, "go")
	if err != nil {
		t.Fatal(err)
	}
	var ca, cb [Count]uint64
	ca[Hits], ca[ServedBytes] = 10, 1000
	cb[Hits], cb[BypassMethod] = 5, 2
	a.Publish(&ca, 1)
	b.Publish(&cb, 1)
	s := col.Scan()
	if s.Live != 2 || s.Totals[Hits] != 15 || s.Totals[ServedBytes] != 1000 || s.Totals[BypassMethod] != 2 {
		t.Fatalf("two live: %+v", s)
	}
	ca[Hits] = 20
	a.Publish(&ca, 2)
	a.Close()
	for range 2 { // folded once, not again on the next scan
		s = col.Scan()
		if s.Live != 1 || s.Departed != 1 || s.Totals[Hits] != 25 {
			t.Fatalf("after one closed: %+v", s)
		}
	}
	if _, err := os.Stat(a.Path()); !os.IsNotExist(err) {
		t.Errorf("departed file not removed: %v", err)
	}
	// A counter that goes down (a hostile write) is ignored; a file that
	// vanishes keeps its last counters.
	cb[Hits] = 1
	b.Publish(&cb, 3)
	if s = col.Scan(); s.Totals[Hits] != 25 {
		t.Errorf("a counter going down moved the total: %+v", s.Totals[Hits])
	}
	os.Remove(b.Path())
	if s = col.Scan(); s.Live != 0 || s.Totals[Hits] != 25 || s.Totals[BypassMethod] != 2 {
		t.Errorf("after the file vanished: %+v", s)
	}
	b.Close()
}

// TestCollectorRefuses: garbage, oversized, symlinked and surplus files
// are ignored and counted once each; the totals are untouched.
func TestCollectorRefuses(t *testing.T) {
	requireUnix(t)
	dir := t.TempDir()
	col := NewCollector(dir, 4)
	p, err := NewPublisher(dir, "go")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var c [Count]uint64
	c[Hits] = 7
	p.Publish(&c, 1)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app-1-garbage.counters", []byte("not a counters file at all, but long enough to have a header......"))
	write("app-2-big.counters", make([]byte, MaxFileSize+1))
	os.Symlink("/etc/passwd", filepath.Join(dir, "app-3-link.counters"))
	write("app-zz-extra.counters", []byte("more garbage")) // the fifth in name order: over maxFiles 4
	write("inval.log", []byte("not ours"))                 // not a counters name: not looked at
	for i := range 3 {
		s := col.Scan()
		if s.Totals[Hits] != 7 || s.Live != 1 {
			t.Fatalf("totals moved: %+v", s)
		}
		// The first scan reads four files and refuses the fifth; the
		// invalid one is removed, so the next scan reads the fifth.
		want := map[string]uint64{RefusedInvalid: 1, RefusedTooLarge: 1, RefusedUnsafe: 1, RefusedTooMany: 1}
		if i > 0 {
			want[RefusedInvalid] = 2
		}
		for k, v := range want {
			if s.Refused[k] != v {
				t.Errorf("scan %d: refused %v; want %v", i, s.Refused, want)
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "app-1-garbage.counters")); !os.IsNotExist(err) {
		t.Errorf("unlocked garbage not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inval.log")); err != nil {
		t.Errorf("a file that is not a counters file was touched: %v", err)
	}
}
