package shm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/zerohop/zerohop/shm"
)

// small is a layout that wraps quickly: 8 regions of 64 KiB.
func small(t testing.TB) *shm.Options {
	return &shm.Options{Size: 1 << 20, RegionSize: 64 << 10, ExpectedEntries: 2048, HeartbeatInterval: 20 * time.Millisecond}
}

func key(path string) []byte { return shm.AppendKey(nil, "GET", "http", "example.com", path) }

func item(path string, body string, tags ...string) *shm.Item {
	now := time.Now()
	return &shm.Item{
		Key: key(path), Status: 200,
		Header:   http.Header{"Content-Type": {"text/plain"}, "X-Path": {path}},
		Body:     []byte(body),
		StoredMs: now.UnixMilli(), ExpiresMs: now.Add(time.Hour).UnixMilli(),
		ETag: `"v1"`, Tags: tags,
	}
}

func openPair(t *testing.T, o *shm.Options) (*shm.Writer, *shm.Reader, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err := shm.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return w, r, dir
}

func now() int64 { return time.Now().UnixMilli() }

func TestPutGetRoundTrip(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	it := item("/a?x=1", "hello", "t1", "t2")
	it.LastModified = "Sun, 22 Nov 2026 10:00:00 GMT"
	it.SWR, it.SIE, it.InitialAge = 30, 60, 5
	if err := w.Put(it); err != nil {
		t.Fatal(err)
	}
	e, _, ok := r.Get(make([]byte, 4096), it.Key, now())
	if !ok {
		t.Fatalf("miss; stats %+v", r.Stats())
	}
	if got := string(e.Body); got != "hello" {
		t.Errorf("body %q; want hello", got)
	}
	if e.Status != 200 || e.SWR != 30 || e.SIE != 60 || e.InitialAge != 5 {
		t.Errorf("meta %+v", e)
	}
	if got, _ := e.Header("X-Path"); string(got) != "/a?x=1" {
		t.Errorf("X-Path %q", got)
	}
	if string(e.ETag) != `"v1"` || string(e.LastModified) != it.LastModified {
		t.Errorf("validators %q %q", e.ETag, e.LastModified)
	}
	var tags []string
	for ti := shm.NewStringIter(e.Tags); ti.Next(); {
		tags = append(tags, ti.String())
	}
	if fmt.Sprint(tags) != "[t1 t2]" {
		t.Errorf("tags %v", tags)
	}
	if _, _, ok := r.Get(nil, key("/other"), now()); ok {
		t.Error("hit for a key never stored")
	}
}

func TestFreshness(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	it := item("/f", "x")
	it.ExpiresMs = now() + 1500
	w.Put(it)
	if _, _, ok := r.Get(nil, it.Key, now()); !ok {
		t.Fatal("fresh entry missed")
	}
	if _, _, ok := r.Get(nil, it.Key, now()+2000); ok {
		t.Fatal("expired entry served as fresh")
	}
	if _, _, ok := r.GetStale(nil, it.Key, now()); !ok {
		t.Fatal("GetStale missed a stored entry")
	}
}

func TestReplaceDeleteMarkStale(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	w.Put(item("/r", "one"))
	w.Put(item("/r", "two"))
	e, _, ok := r.Get(nil, key("/r"), now())
	if !ok || string(e.Body) != "two" {
		t.Fatalf("after replace: ok=%v body=%q", ok, e.Body)
	}
	if s := w.Stats(); s.Entries != 1 || s.Replaces != 1 {
		t.Errorf("stats %+v", s)
	}
	if !w.MarkStale(key("/r")) {
		t.Fatal("MarkStale found nothing")
	}
	if _, _, ok := r.Get(nil, key("/r"), now()); ok {
		t.Error("soft-purged entry served as fresh")
	}
	if e, _, ok := r.GetStale(nil, key("/r"), now()); !ok || e.Fresh(now()) {
		t.Error("soft-purged entry should be kept, stale")
	}
	if !w.Delete(key("/r")) || w.Delete(key("/r")) {
		t.Fatal("Delete should succeed once")
	}
	if _, _, ok := r.GetStale(nil, key("/r"), now()); ok {
		t.Error("deleted entry served")
	}
}

func TestTaggedKeys(t *testing.T) {
	w, _, _ := openPair(t, small(t))
	for i := 0; i < 6; i++ {
		tag := "even"
		if i%2 == 1 {
			tag = "odd"
		}
		w.Put(item(fmt.Sprintf("/t/%d", i), "b", tag))
	}
	w.Delete(key("/t/2"))
	var got []string
	for _, k := range w.TaggedKeys("even") {
		got = append(got, string(k))
	}
	sort.Strings(got)
	want := []string{string(key("/t/0")), string(key("/t/4"))}
	if !slices.Equal(got, want) {
		t.Errorf("TaggedKeys(even) = %q; want %q", got, want)
	}
	if ks := w.TaggedKeys("none"); len(ks) != 0 {
		t.Errorf("TaggedKeys(none) = %q", ks)
	}
	w.PurgeTag("odd", false)
	if ks := w.TaggedKeys("odd"); len(ks) != 0 {
		t.Errorf("after PurgeTag: %q", ks)
	}
}

func TestPurgeTagAndFunc(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	for i := 0; i < 50; i++ {
		tag := "even"
		if i%2 == 1 {
			tag = "odd"
		}
		w.Put(item(fmt.Sprintf("/p/%d", i), "b", tag, "all"))
	}
	if n := w.PurgeTag("odd", false); n != 25 {
		t.Fatalf("purged %d; want 25", n)
	}
	for i := 0; i < 50; i++ {
		_, _, ok := r.Get(nil, key(fmt.Sprintf("/p/%d", i)), now())
		if ok != (i%2 == 0) {
			t.Fatalf("key %d: hit=%v after purging odd", i, ok)
		}
	}
	if n := w.PurgeTag("odd", false); n != 0 {
		t.Errorf("second purge removed %d", n)
	}
	n := w.PurgeFunc(func(k []byte) bool { return bytes.Contains(k, []byte("/p/1")) }, false)
	if n != 5 { // 10,12,14,16,18
		t.Errorf("prefix purge removed %d; want 5", n)
	}
	if n := w.PurgeFunc(nil, false); n != 20 {
		t.Errorf("purge all removed %d; want 20", n)
	}
	if s := w.Stats(); s.Entries != 0 {
		t.Errorf("entries %d after purge all", s.Entries)
	}
}

// TestWrapAround writes many times the arena and checks that every hit is
// the latest version and that reclaim keeps the index consistent.
func TestWrapAround(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	body := bytes.Repeat([]byte("z"), 3000)
	const keys = 300
	for round := 0; round < 20; round++ {
		for i := 0; i < keys; i++ {
			it := item(fmt.Sprintf("/w/%d", i), "")
			it.Body = append(body[:0:0], fmt.Sprintf("%d/%d/", round, i)...)
			it.Body = append(it.Body, body...)
			if err := w.Put(it); err != nil {
				t.Fatal(err)
			}
		}
	}
	hits := 0
	for i := 0; i < keys; i++ {
		e, _, ok := r.Get(nil, key(fmt.Sprintf("/w/%d", i)), now())
		if !ok {
			continue
		}
		hits++
		if want := fmt.Sprintf("19/%d/", i); !bytes.HasPrefix(e.Body, []byte(want)) {
			t.Fatalf("key %d: body starts %q; want %q", i, e.Body[:10], want)
		}
	}
	s := w.Stats()
	if s.RegionsReclaimed == 0 || hits == 0 || uint64(hits) != s.Entries {
		t.Errorf("hits %d, stats %+v", hits, s)
	}
	if rs := r.Stats(); rs.Corrupt != 0 || rs.Collisions != 0 {
		t.Errorf("reader stats %+v", rs)
	}
}

func TestLimits(t *testing.T) {
	o := small(t)
	o.MaxKeySize = 100
	o.MaxHeaderBytes = 200
	w, _, _ := openPair(t, o)
	for _, tt := range []struct {
		name string
		it   *shm.Item
	}{
		{"key", &shm.Item{Key: bytes.Repeat([]byte("k"), 101)}},
		{"headers", &shm.Item{Key: key("/h"), Header: http.Header{"X": {string(bytes.Repeat([]byte("v"), 300))}}}},
		{"entry", &shm.Item{Key: key("/e"), Body: make([]byte, 64<<10)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.Put(tt.it); !errors.Is(err, shm.ErrTooLarge) {
				t.Fatalf("err %v; want ErrTooLarge", err)
			}
		})
	}
	if s := w.Stats(); s.Rejected != 3 || s.Entries != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestSecondWriterLocked(t *testing.T) {
	_, _, dir := openPair(t, small(t))
	if _, err := shm.OpenWriter(dir, small(t)); !errors.Is(err, shm.ErrLocked) {
		t.Fatalf("err %v; want ErrLocked", err)
	}
}

func TestAdoptAfterCleanClose(t *testing.T) {
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, small(t))
	if err != nil {
		t.Fatal(err)
	}
	w.Put(item("/keep", "kept", "tag"))
	w.Close()
	w2, err := shm.OpenWriter(dir, small(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if s := w2.Stats(); s.AdoptGen != 1 || s.Entries != 1 {
		t.Fatalf("stats after adopt %+v", s)
	}
	if e, _, ok := w2.Get(nil, key("/keep"), now()); !ok || string(e.Body) != "kept" {
		t.Fatal("entry lost across clean restart")
	}
	if n := w2.PurgeTag("tag", false); n != 1 {
		t.Errorf("tag index not rebuilt on adopt: purged %d", n)
	}
}

func TestRebuildOnLayoutChangeSalvages(t *testing.T) {
	dir := t.TempDir()
	w, _ := shm.OpenWriter(dir, small(t))
	w.Put(item("/s", "salvaged"))
	r, err := shm.Open(dir, &shm.ReaderOptions{RecheckInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	o := small(t)
	o.Size = 2 << 20
	w2, err := shm.OpenWriter(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if s := w2.Stats(); s.Entries != 1 || s.AdoptGen != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The reader still maps the old (abandoned) file; it must move over.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, _, ok := r.Get(nil, key("/s"), now())
		if ok {
			if string(e.Body) != "salvaged" {
				t.Fatalf("body %q", e.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader never remapped; stats %+v", r.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r.Stats().Remaps == 0 {
		t.Error("no remap counted")
	}
}

func TestBadFiles(t *testing.T) {
	valid := func(t *testing.T) []byte {
		dir := t.TempDir()
		w, err := shm.OpenWriter(dir, small(t))
		if err != nil {
			t.Fatal(err)
		}
		w.Put(item("/x", "x"))
		w.Close()
		b, err := os.ReadFile(filepath.Join(dir, shm.FileName))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name   string
		mangle func([]byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, shm.ErrTruncated},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, shm.ErrBadMagic},
		{"newer major", func(b []byte) []byte { b[8] = shm.MajorVersion + 1; return b }, shm.ErrVersion},
		{"older major", func(b []byte) []byte { b[8] = shm.MajorVersion - 1; return b }, shm.ErrVersion},
		{"layout checksum", func(b []byte) []byte { b[40]++; return b }, shm.ErrCorrupt},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, shm.ErrTruncated},
		{"header only", func(b []byte) []byte { return b[:shm.HeaderSize] }, shm.ErrTruncated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, shm.FileName), tt.mangle(valid(t)), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := shm.Open(dir, nil); !errors.Is(err, tt.want) {
				t.Errorf("Open: %v; want %v", err, tt.want)
			}
			// A writer replaces an unusable file rather than failing.
			w, err := shm.OpenWriter(dir, small(t))
			if err != nil {
				t.Fatalf("OpenWriter over a bad file: %v", err)
			}
			w.Close()
		})
	}
}

// TestWriterReplacesOtherMajor: a cleanly closed file of format 1 (XXH64
// entry checksums), as left by the previous release, with the very layout
// the writer wants. The writer must not adopt or salvage it (it cannot
// verify its entries): it rebuilds a file of its own major, and readers
// refuse the old one.
func TestWriterReplacesOtherMajor(t *testing.T) {
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, small(t))
	if err != nil {
		t.Fatal(err)
	}
	w.Put(item("/old", "old"))
	w.Close()
	path := filepath.Join(dir, shm.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[8:], 1)
	binary.LittleEndian.PutUint64(b[96:], xxhash.Sum64(b[:96]))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open(dir, &shm.ReaderOptions{Offline: true}); !errors.Is(err, shm.ErrVersion) {
		t.Fatalf("Open of a major-1 file: %v; want ErrVersion", err)
	}
	w, err = shm.OpenWriter(dir, small(t))
	if err != nil {
		t.Fatalf("OpenWriter over a major-1 file: %v", err)
	}
	defer w.Close()
	if s := w.Stats(); s.AdoptGen != 0 || s.Entries != 0 || s.Inserts != 0 {
		t.Errorf("writer stats %+v; want a rebuilt, empty file (no adoption, no salvage)", s)
	}
	if b, err := os.ReadFile(path); err != nil || binary.LittleEndian.Uint16(b[8:]) != shm.MajorVersion {
		t.Fatalf("file after OpenWriter: err %v, major %d; want %d", err, binary.LittleEndian.Uint16(b[8:]), shm.MajorVersion)
	}
	if _, _, ok := w.Get(nil, key("/old"), now()); ok {
		t.Error("entry of the major-1 file served")
	}
	if err := w.Put(item("/new", "new")); err != nil {
		t.Fatal(err)
	}
	r, err := shm.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if e, _, ok := r.Get(nil, key("/new"), now()); !ok || string(e.Body) != "new" {
		t.Errorf("Get /new: %v %q", ok, e.Body)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := shm.Open(t.TempDir(), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v; want not exist", err)
	}
}

// TestTruncatedUnderReader truncates the file while it is mapped: the
// reader must fault into a counted miss, not crash.
func TestTruncatedUnderReader(t *testing.T) {
	w, r, dir := openPair(t, small(t))
	w.Put(item("/t", "t"))
	if _, _, ok := r.Get(nil, key("/t"), now()); !ok {
		t.Fatal("miss before truncation")
	}
	if err := os.Truncate(filepath.Join(dir, shm.FileName), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.Get(nil, key("/t"), now()); ok {
		t.Fatal("hit from a truncated file")
	}
	if r.Stats().Faults == 0 {
		t.Errorf("fault not counted: %+v", r.Stats())
	}
}

func TestWriterSilenceStopsHits(t *testing.T) {
	dir := t.TempDir()
	w, _ := shm.OpenWriter(dir, small(t))
	w.Put(item("/h", "h"))
	r, _ := shm.Open(dir, &shm.ReaderOptions{MaxWriterSilence: 200 * time.Millisecond})
	defer r.Close()
	if _, _, ok := r.Get(nil, key("/h"), now()); !ok {
		t.Fatal("miss with a live writer")
	}
	// A heartbeat 1s in the future of the last one: as if the writer hung.
	if _, _, ok := r.Get(nil, key("/h"), now()+1000); ok {
		t.Fatal("hit although the writer's heartbeat is stale")
	}
	w.Close() // clean close: no writer applies invalidations any more
	if _, _, ok := r.Get(nil, key("/h"), now()); ok {
		t.Fatal("hit from a closed file")
	}
	if r.Stats().WriterStale < 2 {
		t.Errorf("stats %+v", r.Stats())
	}
}
