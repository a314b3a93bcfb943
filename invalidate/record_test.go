package invalidate_test

import (
	"bytes"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/invalidate"
)

var le32 = func(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }

func encode(t testing.TB, r invalidate.Record) []byte {
	t.Helper()
	b, err := invalidate.AppendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recrc recomputes a record's checksum after a test edited it.
func recrc(b []byte) []byte {
	n := int(b[8]) | int(b[9])<<8 | int(b[10])<<16 | int(b[11])<<24
	le32(b[4:], crc32.Checksum(b[8:n], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  invalidate.Record
	}{
		{"key hard", invalidate.Record{Seq: 1, TimeMs: 1700000000000, Kind: invalidate.KindKey, Payload: []byte("http://catalog.internal/items/42")}},
		{"prefix soft", invalidate.Record{Seq: 2, Kind: invalidate.KindPrefix, Mode: invalidate.Soft, Payload: []byte("https://a/b?")}},
		{"tag with origin", invalidate.Record{Seq: 1 << 60, Kind: invalidate.KindTag, Origin: "pod-a/123", Payload: []byte("product:42")}},
		{"all", invalidate.Record{Seq: 9, TimeMs: -1, Kind: invalidate.KindAll}},
		{"remote flag", invalidate.Record{Seq: 3, Kind: invalidate.KindTag, Flags: invalidate.FlagRemote, Origin: "b", Payload: []byte("t")}},
		{"unknown kind", invalidate.Record{Seq: 4, Kind: 77, Mode: 9, Payload: []byte("x")}},
		{"max sizes", invalidate.Record{Seq: 5, Kind: invalidate.KindTag, Origin: strings.Repeat("o", invalidate.MaxOrigin), Payload: bytes.Repeat([]byte("p"), invalidate.MaxPayload)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(t, tc.rec)
			if len(b) != tc.rec.EncodedLen() {
				t.Fatalf("encoded %d bytes, EncodedLen %d", len(b), tc.rec.EncodedLen())
			}
			got, n, err := invalidate.DecodeRecord(append(b, "trailing"...))
			if err != nil || n != len(b) {
				t.Fatalf("decode: n=%d err=%v", n, err)
			}
			if got.Seq != tc.rec.Seq || got.TimeMs != tc.rec.TimeMs || got.Kind != tc.rec.Kind || got.Mode != tc.rec.Mode ||
				got.Flags != tc.rec.Flags || got.Origin != tc.rec.Origin || !bytes.Equal(got.Payload, tc.rec.Payload) {
				t.Fatalf("got %+v, want %+v", got, tc.rec)
			}
		})
	}
}

func TestRecordGolden(t *testing.T) {
	// The byte layout docs/invalidation.md documents, for other languages.
	b := encode(t, invalidate.Record{Seq: 7, TimeMs: 1700000000123, Kind: invalidate.KindTag, Mode: invalidate.Soft, Origin: "ab", Payload: []byte("t1")})
	want := "5a484956" + "9999aa1a" + "25000000" + "01030100" +
		"0700000000000000" + "7b68e5cf8b010000" + "02" + "6162" + "7431"
	got := strings.ToLower(hexs(b))
	if got != want {
		t.Fatalf("layout\n got %s\nwant %s", got, want)
	}
	if crc := crc32.Checksum(b[8:], crc32.MakeTable(crc32.Castagnoli)); uint32(b[4])|uint32(b[5])<<8|uint32(b[6])<<16|uint32(b[7])<<24 != crc {
		t.Fatal("crc field is not CRC-32C of bytes [8, length)")
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(d[c>>4])
		s.WriteByte(d[c&15])
	}
	return s.String()
}

func TestDecodeErrors(t *testing.T) {
	good := encode(t, invalidate.Record{Seq: 1, Kind: invalidate.KindTag, Origin: "o", Payload: []byte("tag")})
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name  string
		b     []byte
		want  error
		wantN int
	}{
		{"empty", nil, invalidate.ErrIncomplete, 0},
		{"partial magic", []byte("ZH"), invalidate.ErrIncomplete, 0},
		{"not magic", []byte("ZX"), invalidate.ErrCorrupt, 0},
		{"wrong magic", mut(func(b []byte) []byte { b[0] = 'Q'; return b }), invalidate.ErrCorrupt, 0},
		{"short header", good[:10], invalidate.ErrIncomplete, 0},
		{"incomplete", good[:len(good)-1], invalidate.ErrIncomplete, len(good)},
		{"length too small", mut(func(b []byte) []byte { le32(b[8:], 10); return b }), invalidate.ErrCorrupt, 0},
		{"length too large", mut(func(b []byte) []byte { le32(b[8:], invalidate.MaxRecordSize+1); return b }), invalidate.ErrCorrupt, 0},
		{"bad crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), invalidate.ErrCorrupt, 0},
		{"flipped seq", mut(func(b []byte) []byte { b[16] ^= 0x80; return b }), invalidate.ErrCorrupt, 0},
		{"future version", mut(func(b []byte) []byte { b[12] = 2; return recrc(b) }), invalidate.ErrVersion, len(good)},
		{"origin overruns", mut(func(b []byte) []byte { b[32] = 200; return recrc(b) }), invalidate.ErrMalformed, len(good)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := invalidate.DecodeRecord(tc.b)
			if !errors.Is(err, tc.want) || n != tc.wantN {
				t.Fatalf("got n=%d err=%v, want n=%d err=%v", n, err, tc.wantN, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  invalidate.Record
		want error
	}{
		{"key", invalidate.KeyRecord("http://h/p?q", invalidate.Hard), nil},
		{"key no scheme", invalidate.KeyRecord("/p", invalidate.Hard), invalidate.ErrBadPayload},
		{"key no host", invalidate.KeyRecord("http:///p", invalidate.Hard), invalidate.ErrBadPayload},
		{"prefix", invalidate.PrefixRecord("https://h", invalidate.Soft), nil},
		{"tag", invalidate.TagRecord("t", invalidate.Hard), nil},
		{"empty tag", invalidate.TagRecord("", invalidate.Hard), invalidate.ErrBadPayload},
		{"longest tag", invalidate.TagRecord(strings.Repeat("x", invalidate.MaxTag), invalidate.Hard), nil},
		{"tag over MaxTag", invalidate.TagRecord(strings.Repeat("x", invalidate.MaxTag+1), invalidate.Hard), invalidate.ErrBadPayload},
		{"all", invalidate.AllRecord(invalidate.Soft), nil},
		{"all with payload", invalidate.Record{Kind: invalidate.KindAll, Payload: []byte("x")}, invalidate.ErrBadPayload},
		{"mark", invalidate.Record{Kind: invalidate.KindMark}, invalidate.ErrUnknownKind},
		{"kind 0", invalidate.Record{Kind: 0}, invalidate.ErrUnknownKind},
		{"mode 2", invalidate.Record{Kind: invalidate.KindAll, Mode: 2}, invalidate.ErrUnknownKind},
		{"unknown flag", invalidate.Record{Kind: invalidate.KindAll, Flags: 0x80}, invalidate.ErrBadPayload},
		{"long origin", invalidate.Record{Kind: invalidate.KindAll, Origin: strings.Repeat("x", 256)}, invalidate.ErrTooLarge},
		{"long payload", invalidate.TagRecord(strings.Repeat("x", invalidate.MaxPayload+1), invalidate.Hard), invalidate.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rec.Validate(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSplitURL(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		scheme, host, target string
		bad                  bool
	}{
		{in: "http://catalog.internal/items/42", scheme: "http", host: "catalog.internal", target: "/items/42"},
		{in: "HTTPS://Example.com:443/a%2Fb?x=1&y#frag", scheme: "HTTPS", host: "Example.com:443", target: "/a%2Fb?x=1&y"},
		{in: "http://h", scheme: "http", host: "h", target: "/"},
		{in: "http://h?q", scheme: "http", host: "h", target: "/?q"},
		{in: "http://user:pw@h:8080/p", scheme: "http", host: "h:8080", target: "/p"},
		{in: "http://[::1]:81/p", scheme: "http", host: "[::1]:81", target: "/p"},
		{in: "h/p", bad: true},
		{in: "://h/p", bad: true},
		{in: "1http://h/p", bad: true},
		{in: "http:///p", bad: true},
		{in: "http://a b/p", bad: true},
	} {
		s, h, tg, err := invalidate.SplitURL(tc.in)
		if (err != nil) != tc.bad || !tc.bad && (s != tc.scheme || h != tc.host || tg != tc.target) {
			t.Errorf("SplitURL(%q) = %q %q %q %v", tc.in, s, h, tg, err)
		}
	}
}

// FuzzDecode: no input makes the decoder or the reader panic or loop; a
// decoded record re-encodes to the same bytes; the reader's offset only
// moves forward and ends within the input.
func FuzzDecode(f *testing.F) {
	for _, r := range []invalidate.Record{
		invalidate.KeyRecord("http://h/p", invalidate.Hard),
		invalidate.TagRecord("t", invalidate.Soft),
		invalidate.AllRecord(invalidate.Hard),
		{Seq: 3, Kind: invalidate.KindMark, Payload: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	} {
		r.Seq++
		b := encode(f, r)
		f.Add(b)
		f.Add(b[:len(b)-3])
		f.Add(append([]byte("garbage ZHIV"), b...))
		f.Add(append(b[:20:20], b...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := invalidate.DecodeRecord(b)
		if err == nil {
			again, err := invalidate.AppendRecord(nil, &rec)
			if err != nil || !bytes.Equal(again, b[:n]) {
				t.Fatalf("re-encode differs: %x vs %x (%v)", again, b[:n], err)
			}
			// The purge a decoded record turns into: a value or an error,
			// never a panic.
			if p, err := invalidate.ParsePurge(rec); err == nil && p.Kind != rec.Kind {
				t.Fatalf("record kind %v parsed as purge kind %v", rec.Kind, p.Kind)
			}
		}
		r := invalidate.NewReader(bytes.NewReader(b), 0)
		last := int64(0)
		for i := 0; ; i++ {
			_, err := r.Next()
			if off := r.Offset(); off < last || off > int64(len(b)) {
				t.Fatalf("offset %d after %d (input %d bytes)", off, last, len(b))
			} else {
				last = off
			}
			if err != nil {
				if !errors.Is(err, invalidate.ErrNoRecord) {
					t.Fatal(err)
				}
				break
			}
			if i > len(b) {
				t.Fatal("more records than bytes")
			}
		}
		s := r.Stats()
		if consumed := s.GarbageBytes + s.TornBytes; consumed > uint64(last) {
			t.Fatalf("skipped %d bytes of %d consumed", consumed, last)
		}
	})
}

func TestSplitPrefix(t *testing.T) {
	for _, tc := range []struct{ in, prefix string }{
		{"http://h", ""}, {"http://h#x", ""}, {"http://h/", "/"}, {"http://h/items/", "/items/"}, {"http://h?q", "/?q"},
	} {
		if _, _, p, err := invalidate.SplitPrefix(tc.in); err != nil || p != tc.prefix {
			t.Errorf("SplitPrefix(%q) = %q %v, want %q", tc.in, p, err, tc.prefix)
		}
	}
}
