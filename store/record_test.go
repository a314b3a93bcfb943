package store

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/shm"
)

// TestRoundTrip stores items exercising every shm.Item field and checks
// that Get returns them exactly, before and after a reopen.
func TestRoundTrip(t *testing.T) {
	c := newClock()
	now := c.Ms()
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, compressible
	rnd := make([]byte, 8<<10)
	for i := range rnd {
		rnd[i] = byte(mix(uint64(i)))
	}
	key := func(t string) []byte { return shm.AppendKey(nil, "GET", "https", "Example.COM:443", t) }
	cases := []struct {
		name string
		it   shm.Item
	}{
		{"minimal", shm.Item{Key: key("/a"), Status: 200, StoredMs: now, ExpiresMs: now + 1000}},
		{"every field", shm.Item{
			Key:    shm.AppendVary(key("/b?x=1"), []shm.VaryField{{Name: "accept-encoding", Present: true, Value: "gzip"}}),
			Status: 203,
			Header: http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"},
				"X-Empty": {""}, "Link": {"</x>; rel=preload", "</y>; rel=preload"}},
			Body:     []byte(strings.Repeat(`{"a":1,"b":[true,false,null]}`, 40)),
			StoredMs: now - 5000, ExpiresMs: now + 60_000, InitialAge: 7, SWR: 30, SIE: 86400,
			Flags: shm.FlagMustRevalidate | shm.FlagAuthShared | shm.FlagNoCache,
			ETag:  `W/"xyz"`, LastModified: "Tue, 15 Nov 1994 08:12:31 GMT",
			Vary: []string{"accept-encoding"}, Tags: []string{"product:1", "catalog", shm.VariantTag(key("/b?x=1"))},
		}},
		{"vary index", shm.Item{Key: key("/c"), Flags: shm.FlagVaryIndex, Vary: []string{"accept", "accept-language"},
			StoredMs: now, ExpiresMs: now + 365*24*3600*1000}},
		{"headers only", shm.Item{Key: key("/d"), Status: 204, Flags: shm.FlagHeadersOnly, Header: http.Header{"X": {"y"}},
			StoredMs: now, ExpiresMs: now + 1000}},
		{"large compressible", shm.Item{Key: key("/e"), Status: 200, Body: big, Header: http.Header{"Content-Type": {"text/plain"}},
			StoredMs: now, ExpiresMs: now + 1000}},
		{"random bytes", shm.Item{Key: key("/f"), Status: 200, Body: rnd, StoredMs: now, ExpiresMs: now + 1000}},
		{"stale with validator", shm.Item{Key: key("/g"), Status: 200, Body: []byte("x"), StoredMs: now, ExpiresMs: now - 1,
			SWR: 60, ETag: `"1"`}},
		{"status 599, binary key", shm.Item{Key: append(key("/h"), 0, 0xff, 1), Status: 599, StoredMs: now, ExpiresMs: now + 1}},
	}
	dir := t.TempDir()
	s := mustOpen(t, dir, testOpts(t, c))
	for i := range cases {
		putAll(t, s, &cases[i].it)
	}
	flush(t, s)
	check := func(s *Store, when string) {
		t.Helper()
		for _, tc := range cases {
			got, ok := s.Get(tc.it.Key, now)
			if !ok {
				t.Errorf("%s: %s: miss", when, tc.name)
				continue
			}
			if err := sameItem(got, &tc.it, false); err != nil {
				t.Errorf("%s: %s: %v", when, tc.name, err)
			}
		}
	}
	check(s, "before reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, testOpts(t, c))
	check(s, "after reopen")
	if st := s.Stats(); st.Entries != int64(len(cases)) {
		t.Errorf("Entries = %d, want %d", st.Entries, len(cases))
	}
}

// TestCompressionRules checks which bodies are stored compressed.
func TestCompressionRules(t *testing.T) {
	c := newClock()
	now := c.Ms()
	text := []byte(strings.Repeat("compress me, compress me please. ", 100))
	rnd := make([]byte, 4096)
	for i := range rnd {
		rnd[i] = byte(mix(uint64(i) * 7))
	}
	cases := []struct {
		name   string
		ct, ce string
		body   []byte
		want   byte
	}{
		{"html", "text/html; charset=utf-8", "", text, codecZstd},
		{"json", "application/json", "", text, codecZstd},
		{"no content type", "", "", text, codecZstd},
		{"svg", "image/svg+xml", "", text, codecZstd},
		{"identity encoding", "text/plain", "identity", text, codecZstd},
		{"gzip encoded", "text/html", "gzip", text, codecRaw},
		{"br encoded", "text/html", "br", text, codecRaw},
		{"png", "image/png", "", text, codecRaw},
		{"jpeg", "IMAGE/JPEG", "", text, codecRaw},
		{"video", "video/mp4", "", text, codecRaw},
		{"audio", "audio/mpeg", "", text, codecRaw},
		{"zip", "application/zip", "", text, codecRaw},
		{"gzip file", "application/gzip", "", text, codecRaw},
		{"woff2", "font/woff2", "", text, codecRaw},
		{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "", text, codecRaw},
		{"epub", "application/epub+zip", "", text, codecRaw},
		{"small", "text/plain", "", text[:100], codecRaw},
		{"incompressible", "application/octet-stream", "", rnd, codecRaw},
	}
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	for i, tc := range cases {
		h := http.Header{}
		if tc.ct != "" {
			h.Set("Content-Type", tc.ct)
		}
		if tc.ce != "" {
			h.Set("Content-Encoding", tc.ce)
		}
		putAll(t, s, &shm.Item{Key: shm.AppendKey(nil, "GET", "http", "c.test", "/"+string(rune('a'+i))),
			Status: 200, Header: h, Body: tc.body, StoredMs: now, ExpiresMs: now + 10000})
	}
	flush(t, s)
	for i, tc := range cases {
		key := shm.AppendKey(nil, "GET", "http", "c.test", "/"+string(rune('a'+i)))
		v, closer, err := s.db.Get(appendRecKey(nil, key))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v[rCodec] != tc.want {
			t.Errorf("%s: codec %d, want %d", tc.name, v[rCodec], tc.want)
		}
		closer.Close()
		got, ok := s.Get(key, now)
		if !ok || !bytes.Equal(got.Body, tc.body) {
			t.Errorf("%s: body did not round-trip", tc.name)
		}
	}
}

// TestCorruptRecord flips bytes of stored records: a corrupt record is a
// counted miss, never a response, and is removed.
func TestCorruptRecord(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	var items []*shm.Item
	for id := 0; id < 20; id++ {
		items = append(items, genItem(id, 1, c.Ms(), time.Hour, 100, 3000))
	}
	putAll(t, s, items...)
	flush(t, s)
	for i, it := range items {
		k := appendRecKey(nil, it.Key)
		v, closer, err := s.db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(v)
		closer.Close()
		switch i % 4 {
		case 0:
			bad[len(bad)/2] ^= 0x40 // payload
		case 1:
			bad[rStored] ^= 1 // a header field
		case 2:
			bad = bad[:len(bad)-1] // truncated
		case 3:
			bad[rSum] ^= 0x80 // the checksum itself
		}
		if err := s.db.Set(k, bad, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range items {
		if got, ok := s.Get(it.Key, c.Ms()); ok {
			t.Fatalf("corrupt record served: %q", got.Key)
		}
	}
	flush(t, s)
	st := s.Stats()
	if st.Corrupt != uint64(len(items)) {
		t.Errorf("Corrupt = %d, want %d", st.Corrupt, len(items))
	}
	for _, it := range items {
		if _, closer, err := s.db.Get(appendRecKey(nil, it.Key)); err == nil {
			closer.Close()
			t.Errorf("corrupt record %q not removed", it.Key)
		}
	}
	if st.Entries != 0 {
		t.Errorf("Entries = %d after removing every corrupt record", st.Entries)
	}
}

// FuzzRecord feeds arbitrary bytes to the record decoder: it must never
// panic or read out of bounds, and anything it accepts must decode.
func FuzzRecord(f *testing.F) {
	now := int64(1_800_000_000_000)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBody))
	defer dec.Close()
	for id := 0; id < 4; id++ {
		it := genItem(id, 1, now, time.Hour, 10, 2000)
		rec := appendRecord(nil, it, shm.AppendHeaderBlock(nil, it.Header))
		seal(it.Key, rec)
		f.Add(it.Key, rec)
		// A compressed one.
		v, _ := splitRecord(rec)
		z := enc.EncodeAll(v.body, nil)
		zr := append(bytes.Clone(rec[:len(rec)-len(v.body)]), z...)
		zr[rCodec] = codecZstd
		le.PutUint32(zr[rStoredLen:], uint32(len(z)))
		seal(it.Key, zr)
		f.Add(it.Key, zr)
	}
	f.Add([]byte("k"), []byte{})
	f.Fuzz(func(t *testing.T, key, rec []byte) {
		for _, verify := range []bool{true, false} {
			var v recView
			var err error
			if verify {
				v, err = parseRecord(key, rec)
			} else {
				v, err = splitRecord(rec)
			}
			if err != nil {
				continue
			}
			body, err := decodeBody(dec, nil, &v)
			if err == nil && len(body) != int(v.bodyLen) {
				t.Fatalf("decoded %d bytes, record says %d", len(body), v.bodyLen)
			}
			for h := shm.NewHeaderIter(v.hdrs); h.Next(); {
			}
			for it := newStrIter(v.tags); it.next(); {
			}
		}
		if _, ok := decodeInfo(rec); ok {
			return
		}
	})
}

// TestParseRecordErrors checks the decoder's refusals.
func TestParseRecordErrors(t *testing.T) {
	it := genItem(1, 1, 1, time.Hour, 10, 10)
	rec := appendRecord(nil, it, shm.AppendHeaderBlock(nil, it.Header))
	seal(it.Key, rec)
	if _, err := parseRecord(it.Key, rec); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	if _, err := parseRecord(append(bytes.Clone(it.Key), 'x'), rec); !errors.Is(err, errChecksum) {
		t.Errorf("record under another key: %v, want checksum error", err)
	}
	bad := bytes.Clone(rec)
	bad[rVer] = 2
	if _, err := parseRecord(it.Key, bad); !errors.Is(err, errRecord) {
		t.Errorf("future version: %v", err)
	}
	if _, err := parseRecord(it.Key, rec[:recHeaderLen-1]); !errors.Is(err, errRecord) {
		t.Errorf("short: %v", err)
	}
}
