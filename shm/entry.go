package shm

import (
	"bytes"
	"hash/crc32"
	"net/http"
	"sort"
)

// Item is a response to store. The writer copies everything it needs; the
// caller may reuse Item's memory after Put returns.
type Item struct {
	Key    []byte // canonical key (AppendKey, AppendVary)
	Status int
	// Header is the stored response header, without hop-by-hop fields.
	// It is encoded sorted by name so that equal items encode to equal bytes.
	Header http.Header
	Body   []byte

	StoredMs   int64  // response_time, unix ms
	ExpiresMs  int64  // fresh until, unix ms (0: stale at once)
	InitialAge uint32 // corrected_initial_age, seconds (RFC 9111 §4.2.3)
	SWR        uint32 // stale-while-revalidate window, seconds
	SIE        uint32 // stale-if-error window, seconds
	Flags      uint16

	ETag         string
	LastModified string
	Vary         []string // lower-case names, sorted; for FlagVaryIndex and variants
	Tags         []string // surrogate keys
}

// Entry is a decoded entry. Its byte slices alias the buffer it was copied
// into and stay valid until that buffer is reused.
type Entry struct {
	Raw          []byte
	Pos          uint64
	Hash         uint64
	StoredMs     int64
	ExpiresMs    int64 // effective: the earlier of the entry's and its slot's
	InitialAge   uint32
	SWR          uint32
	SIE          uint32
	Status       int
	Flags        uint16
	Key          []byte
	Vary         []byte // block of str16 names (NewStringIter)
	ETag         []byte
	LastModified []byte
	Tags         []byte // block of str16 tags (NewStringIter)
	Headers      []byte // header block (NewHeaderIter)
	Body         []byte
}

// Fresh reports whether the entry is fresh at nowMs.
func (e *Entry) Fresh(nowMs int64) bool {
	return e.Flags&FlagNoCache == 0 && nowMs < e.ExpiresMs
}

// AgeSeconds is the entry's current age at nowMs (RFC 9111 §4.2.3:
// corrected_initial_age + resident_time).
func (e *Entry) AgeSeconds(nowMs int64) int64 {
	resident := (nowMs - e.StoredMs) / 1000
	if resident < 0 {
		resident = 0
	}
	return int64(e.InitialAge) + resident
}

// Header returns the first value of the stored header name (canonical form,
// as http.CanonicalHeaderKey gives), without allocating.
func (e *Entry) Header(name string) ([]byte, bool) {
	for it := NewHeaderIter(e.Headers); it.Next(); {
		if string(it.Name()) == name {
			return it.Value(), true
		}
	}
	return nil, false
}

// HeaderIter walks an encoded header block: repeated
// u16 name_len, u32 value_len, name, value.
type HeaderIter struct {
	b           []byte
	name, value []byte
}

// NewHeaderIter returns an iterator over block.
func NewHeaderIter(block []byte) HeaderIter { return HeaderIter{b: block} }

// Next advances to the next field; it stops at the first malformed one.
func (it *HeaderIter) Next() bool {
	if len(it.b) < 6 {
		return false
	}
	nl := int(le.Uint16(it.b))
	vl := uint64(le.Uint32(it.b[2:]))
	if uint64(len(it.b)-6) < uint64(nl)+vl {
		it.b = nil
		return false
	}
	it.name = it.b[6 : 6+nl]
	it.value = it.b[6+nl : 6+nl+int(vl)]
	it.b = it.b[6+nl+int(vl):]
	return true
}

// Name returns the current field name (canonical form); it aliases the block.
func (it *HeaderIter) Name() []byte { return it.name }

// Value returns the current field value; it aliases the block.
func (it *HeaderIter) Value() []byte { return it.value }

// AppendHeaderBlock encodes h sorted by name, one field line per value.
func AppendHeaderBlock(dst []byte, h http.Header) []byte {
	var small [16]string
	names := small[:0]
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			dst = le.AppendUint16(dst, uint16(len(k)))
			dst = le.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, k...)
			dst = append(dst, v...)
		}
	}
	return dst
}

func appendStrBlock(dst []byte, ss []string) []byte {
	for _, s := range ss {
		dst = appendStr16(dst, s)
	}
	return dst
}

// encodedLen is the arena size an item needs, with its header block already
// encoded in hdrs.
func (it *Item) encodedLen(hdrs []byte) int {
	n := EntryHeaderSize + len(it.Key) + len(hdrs) + len(it.Body) + len(it.ETag) + len(it.LastModified)
	for _, s := range it.Vary {
		n += 2 + len(s)
	}
	for _, s := range it.Tags {
		n += 2 + len(s)
	}
	return alignUp(n, EntryAlign)
}

// encodeEntry writes the item into dst (len(dst) == total length, zeroed or
// not) at arena position pos, with the key hash h, and seals it with the
// checksum. The payload order is key, vary, etag, last-modified, tags,
// headers, body, then zero padding to 8 bytes.
func encodeEntry(dst []byte, it *Item, hdrs []byte, pos, h, seed uint64) {
	le.PutUint32(dst[eKind:], KindEntry)
	le.PutUint32(dst[eTotalLen:], uint32(len(dst)))
	le.PutUint64(dst[ePos:], pos)
	le.PutUint64(dst[eHash:], h)
	le.PutUint64(dst[eStoredMs:], uint64(it.StoredMs))
	le.PutUint64(dst[eExpiresMs:], uint64(it.ExpiresMs))
	le.PutUint32(dst[eInitialAge:], it.InitialAge)
	le.PutUint32(dst[eSWR:], it.SWR)
	le.PutUint32(dst[eSIE:], it.SIE)
	le.PutUint16(dst[eStatus:], uint16(it.Status))
	le.PutUint16(dst[eFlags:], it.Flags)
	le.PutUint32(dst[eKeyLen:], uint32(len(it.Key)))
	le.PutUint32(dst[eHdrsLen:], uint32(len(hdrs)))
	le.PutUint32(dst[eBodyLen:], uint32(len(it.Body)))
	le.PutUint16(dst[eETagLen:], uint16(len(it.ETag)))
	le.PutUint16(dst[eLastModLen:], uint16(len(it.LastModified)))
	le.PutUint64(dst[eReserved:], 0)

	p := dst[EntryHeaderSize:EntryHeaderSize]
	p = append(p, it.Key...)
	varyStart := len(p)
	p = appendStrBlock(p, it.Vary)
	le.PutUint32(dst[eVaryLen:], uint32(len(p)-varyStart))
	p = append(p, it.ETag...)
	p = append(p, it.LastModified...)
	tagsStart := len(p)
	p = appendStrBlock(p, it.Tags)
	le.PutUint32(dst[eTagsLen:], uint32(len(p)-tagsStart))
	p = append(p, hdrs...)
	p = append(p, it.Body...)
	clear(dst[EntryHeaderSize+len(p):])

	le.PutUint32(dst[eSumPad:], 0)
	le.PutUint32(dst[eSum:], entrySum(dst[sumFrom:], seed))
}

// entrySum is an entry's checksum: CRC-32/IEEE (the zlib crc32, which
// Python and Node have built in) of b continuing from the low 32 bits of
// the file's seed, that is zlib.crc32(b, seed & 0xffffffff). Over the
// ~1.3 KB of a 1 KiB-body entry it costs a third of XXH64 here (PCLMULQDQ;
// BenchmarkChecksum), and the hit path is a couple of hundred nanoseconds.
func entrySum(b []byte, seed uint64) uint32 {
	// hash/crc32's PCLMULQDQ kernel takes whole 16-byte blocks and leaves
	// the rest to a byte-at-a-time table: 8 dependent lookups for the 8
	// bytes that half of all entries (total_len - 16 = 8 mod 16) end with,
	// about 7 ns. Those go through one slicing-by-8 step instead.
	n := len(b) - 8
	if len(b)&15 != 8 || n < 16 {
		return crc32.Update(uint32(seed), crc32.IEEETable, b)
	}
	crc := ^crc32.Update(uint32(seed), crc32.IEEETable, b[:n])
	p := b[n:]
	crc ^= le.Uint32(p)
	t := &crcSlice8
	return ^(t[0][p[7]] ^ t[1][p[6]] ^ t[2][p[5]] ^ t[3][p[4]] ^
		t[4][crc>>24] ^ t[5][crc>>16&0xff] ^ t[6][crc>>8&0xff] ^ t[7][crc&0xff])
}

// crcSlice8 are the slicing-by-8 tables of CRC-32/IEEE, as hash/crc32
// builds them: t[0] is the byte-at-a-time table and t[j][i] is t[0]
// applied j more times to i.
var crcSlice8 = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for i := 0; i < 256; i++ {
		crc := t[0][i]
		for j := 1; j < 8; j++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[j][i] = crc
		}
	}
	return t
}()

// keyHash is the index hash of a canonical key: XXH64 with the file's seed,
// computed in one pass (keys are short, and a Digest's buffering costs more
// than hashing them).
func keyHash(key []byte, seed uint64) uint64 { return xxh64(key, seed) }

// decodeEntry parses and verifies a private copy of an entry: kind, length,
// position, hash and checksum must all agree and every length must fit. It
// never reads outside b.
func decodeEntry(b []byte, wantPos, wantHash, seed uint64) (e Entry, ok bool) {
	ok = decodeEntryInto(&e, b, wantPos, wantHash, seed)
	return e, ok
}

// decodeEntryInto is decodeEntry writing into *e (an Entry is about 250
// bytes: the hit path fills the caller's instead of copying it up through
// every layer). *e is unchanged when it reports false.
func decodeEntryInto(e *Entry, b []byte, wantPos, wantHash, seed uint64) bool {
	if len(b) < EntryHeaderSize ||
		le.Uint32(b[eKind:]) != KindEntry ||
		uint64(le.Uint32(b[eTotalLen:])) != uint64(len(b)) ||
		le.Uint64(b[ePos:]) != wantPos ||
		le.Uint64(b[eHash:]) != wantHash {
		return false
	}
	if entrySum(b[sumFrom:], seed) != le.Uint32(b[eSum:]) {
		return false
	}
	return parseEntryInto(e, b)
}

// parseEntry splits an entry's payload; lengths are checked against b.
func parseEntry(b []byte) (e Entry, ok bool) {
	ok = parseEntryInto(&e, b)
	return e, ok
}

// parseEntryInto is parseEntry writing into *e, unchanged when it reports
// false.
func parseEntryInto(e *Entry, b []byte) bool {
	if len(b) < EntryHeaderSize {
		return false
	}
	h := b[:EntryHeaderSize]
	keyLen := uint64(le.Uint32(h[eKeyLen:]))
	varyLen := uint64(le.Uint32(h[eVaryLen:]))
	etagLen := uint64(le.Uint16(h[eETagLen:]))
	lmLen := uint64(le.Uint16(h[eLastModLen:]))
	tagsLen := uint64(le.Uint32(h[eTagsLen:]))
	hdrsLen := uint64(le.Uint32(h[eHdrsLen:]))
	bodyLen := uint64(le.Uint32(h[eBodyLen:]))
	// Each length is below 2^32, so the sum cannot wrap.
	total := EntryHeaderSize + keyLen + varyLen + etagLen + lmLen + tagsLen + hdrsLen + bodyLen
	if total > uint64(len(b)) || uint64(len(b))-total >= EntryAlign {
		return false
	}
	e.Raw = b
	e.Pos = le.Uint64(h[ePos:])
	e.Hash = le.Uint64(h[eHash:])
	e.StoredMs = int64(le.Uint64(h[eStoredMs:]))
	e.ExpiresMs = int64(le.Uint64(h[eExpiresMs:]))
	e.InitialAge = le.Uint32(h[eInitialAge:])
	e.SWR = le.Uint32(h[eSWR:])
	e.SIE = le.Uint32(h[eSIE:])
	e.Status = int(le.Uint16(h[eStatus:]))
	e.Flags = le.Uint16(h[eFlags:])
	// Every cut below ends at or before total <= len(b).
	p := uint64(EntryHeaderSize)
	e.Key, p = b[p:p+keyLen:p+keyLen], p+keyLen
	e.Vary, p = b[p:p+varyLen:p+varyLen], p+varyLen
	e.ETag, p = b[p:p+etagLen:p+etagLen], p+etagLen
	e.LastModified, p = b[p:p+lmLen:p+lmLen], p+lmLen
	e.Tags, p = b[p:p+tagsLen:p+tagsLen], p+tagsLen
	e.Headers, p = b[p:p+hdrsLen:p+hdrsLen], p+hdrsLen
	e.Body = b[p : p+bodyLen : p+bodyLen]
	return true
}

// DecodeEntry verifies and parses one entry record as found in the arena
// (for tools and fuzzing; readers use Reader.Get).
func DecodeEntry(b []byte, seed uint64) (Entry, bool) {
	if len(b) < EntryHeaderSize {
		return Entry{}, false
	}
	return decodeEntry(b, le.Uint64(b[ePos:]), le.Uint64(b[eHash:]), seed)
}

// Clone returns a copy of e that owns its bytes, for keeping an entry
// beyond the life of the buffer it was copied into.
func (e *Entry) Clone() Entry {
	if e.Raw == nil {
		return *e
	}
	c, ok := parseEntry(bytes.Clone(e.Raw))
	if !ok {
		return Entry{}
	}
	c.ExpiresMs = e.ExpiresMs // effective expiry, as the lookup set it
	return c
}
