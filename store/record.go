package store

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/zerohop/zerohop/shm"
)

// A record is the value of an entry's 0x01 key: every field of the shm.Item
// the proxy stored, in a versioned encoding sealed with a checksum over the
// cache key and the record. All integers are little-endian.
//
//	0  u64 checksum: xxhash64 of (cache key ‖ bytes [8, end))
//	8  u8  version (1)
//	9  u8  codec: 0 body stored as is, 1 body zstd-compressed
//	10 u16 status
//	12 u16 shm flags
//	14 u16 etag length
//	16 i64 stored (unix ms)
//	24 i64 expires (unix ms; 0: stale at once)
//	32 u32 initial age (s)
//	36 u32 stale-while-revalidate (s)
//	40 u32 stale-if-error (s)
//	44 u16 last-modified length
//	46 u16 reserved (0)
//	48 u32 vary block length (str16 names)
//	52 u32 tags block length (str16 tags)
//	56 u32 header block length (shm header block)
//	60 u32 body length (decoded)
//	64 u32 stored body length
//	68 u32 reserved (0)
//	72 etag, last-modified, vary block, tags block, header block, stored body
const (
	recHeaderLen = 72
	recVersion   = 1

	codecRaw  = 0
	codecZstd = 1

	rSum       = 0
	rVer       = 8
	rCodec     = 9
	rStatus    = 10
	rFlags     = 12
	rETagLen   = 14
	rStored    = 16
	rExpires   = 24
	rInitAge   = 32
	rSWR       = 36
	rSIE       = 40
	rLMLen     = 44
	rVaryLen   = 48
	rTagsLen   = 52
	rHdrsLen   = 56
	rBodyLen   = 60
	rStoredLen = 64

	// maxBody bounds a decoded body (a corrupt length must not make a
	// reader allocate gigabytes).
	maxBody = 1 << 30
)

var (
	errRecord   = errors.New("malformed record")
	errChecksum = errors.New("record checksum mismatch")
	errTooLarge = errors.New("item field over the record's limits")
)

// recView is a parsed record; its slices alias the record bytes.
type recView struct {
	codec      byte
	status     int
	flags      uint16
	storedMs   int64
	expiresMs  int64
	initialAge uint32
	swr, sie   uint32
	etag       []byte
	lastMod    []byte
	vary       []byte
	tags       []byte
	hdrs       []byte
	body       []byte // stored form
	bodyLen    uint32 // decoded length
}

// recordLen is the size of it's record with a raw body and hdrs as its
// encoded header block, or an error if a field is over the encoding's
// limits.
func recordLen(it *shm.Item, hdrs []byte) (int, error) {
	if it.Status < 0 || it.Status > 0xffff || len(it.ETag) > 0xffff || len(it.LastModified) > 0xffff ||
		len(it.Body) > maxBody || len(hdrs) > maxBody {
		return 0, errTooLarge
	}
	n := recHeaderLen + len(it.ETag) + len(it.LastModified) + len(hdrs) + len(it.Body)
	for _, s := range it.Vary {
		if len(s) > 0xffff {
			return 0, errTooLarge
		}
		n += 2 + len(s)
	}
	for _, s := range it.Tags {
		if len(s) > 0xffff {
			return 0, errTooLarge
		}
		n += 2 + len(s)
	}
	if n > maxBody+(64<<20) {
		return 0, errTooLarge
	}
	return n, nil
}

// appendRecord appends it's record with a raw body, unsealed (checksum 0).
func appendRecord(dst []byte, it *shm.Item, hdrs []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recHeaderLen)...)
	h := dst[start:]
	h[rVer] = recVersion
	h[rCodec] = codecRaw
	le.PutUint16(h[rStatus:], uint16(it.Status))
	le.PutUint16(h[rFlags:], it.Flags)
	le.PutUint16(h[rETagLen:], uint16(len(it.ETag)))
	le.PutUint64(h[rStored:], uint64(it.StoredMs))
	le.PutUint64(h[rExpires:], uint64(it.ExpiresMs))
	le.PutUint32(h[rInitAge:], it.InitialAge)
	le.PutUint32(h[rSWR:], it.SWR)
	le.PutUint32(h[rSIE:], it.SIE)
	le.PutUint16(h[rLMLen:], uint16(len(it.LastModified)))
	le.PutUint32(h[rHdrsLen:], uint32(len(hdrs)))
	le.PutUint32(h[rBodyLen:], uint32(len(it.Body)))
	le.PutUint32(h[rStoredLen:], uint32(len(it.Body)))
	dst = append(dst, it.ETag...)
	dst = append(dst, it.LastModified...)
	m := len(dst)
	for _, s := range it.Vary {
		dst = appendStr16(dst, s)
	}
	le.PutUint32(dst[start+rVaryLen:], uint32(len(dst)-m))
	m = len(dst)
	for _, s := range it.Tags {
		dst = appendStr16(dst, s)
	}
	le.PutUint32(dst[start+rTagsLen:], uint32(len(dst)-m))
	dst = append(dst, hdrs...)
	return append(dst, it.Body...)
}

// recordSum is the checksum of a record stored under key.
func recordSum(key, rec []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(key)
	d.Write(rec[8:])
	return d.Sum64()
}

// seal writes rec's checksum and returns it.
func seal(key, rec []byte) uint64 {
	s := recordSum(key, rec)
	le.PutUint64(rec[rSum:], s)
	return s
}

// parseRecord verifies rec (stored under key) and splits it. It never reads
// outside rec.
func parseRecord(key, rec []byte) (v recView, err error) {
	if len(rec) < recHeaderLen || rec[rVer] != recVersion {
		return v, errRecord
	}
	if recordSum(key, rec) != le.Uint64(rec[rSum:]) {
		return v, errChecksum
	}
	return splitRecord(rec)
}

// splitRecord parses a record whose checksum was verified (or is about to
// be rewritten).
func splitRecord(rec []byte) (v recView, err error) {
	if len(rec) < recHeaderLen || rec[rVer] != recVersion {
		return v, errRecord
	}
	etagLen := uint64(le.Uint16(rec[rETagLen:]))
	lmLen := uint64(le.Uint16(rec[rLMLen:]))
	varyLen := uint64(le.Uint32(rec[rVaryLen:]))
	tagsLen := uint64(le.Uint32(rec[rTagsLen:]))
	hdrsLen := uint64(le.Uint32(rec[rHdrsLen:]))
	storedLen := uint64(le.Uint32(rec[rStoredLen:]))
	v.bodyLen = le.Uint32(rec[rBodyLen:])
	v.codec = rec[rCodec]
	if recHeaderLen+etagLen+lmLen+varyLen+tagsLen+hdrsLen+storedLen != uint64(len(rec)) ||
		v.bodyLen > maxBody || v.codec > codecZstd || (v.codec == codecRaw && uint64(v.bodyLen) != storedLen) {
		return v, errRecord
	}
	v.status = int(le.Uint16(rec[rStatus:]))
	v.flags = le.Uint16(rec[rFlags:])
	v.storedMs = int64(le.Uint64(rec[rStored:]))
	v.expiresMs = int64(le.Uint64(rec[rExpires:]))
	v.initialAge = le.Uint32(rec[rInitAge:])
	v.swr = le.Uint32(rec[rSWR:])
	v.sie = le.Uint32(rec[rSIE:])
	p := uint64(recHeaderLen)
	cut := func(n uint64) []byte {
		s := rec[p : p+n : p+n]
		p += n
		return s
	}
	v.etag = cut(etagLen)
	v.lastMod = cut(lmLen)
	v.vary = cut(varyLen)
	v.tags = cut(tagsLen)
	v.hdrs = cut(hdrsLen)
	v.body = cut(storedLen)
	return v, nil
}

// hotSize is the size of v's entry, stored under a key of keyLen bytes, in
// a shared-memory file (shm's entry header and payload, 8-aligned).
func (v *recView) hotSize(keyLen int) uint32 {
	n := shm.EntryHeaderSize + keyLen + len(v.etag) + len(v.lastMod) + len(v.vary) + len(v.tags) + len(v.hdrs) + int(v.bodyLen)
	return uint32((n + shm.EntryAlign - 1) &^ (shm.EntryAlign - 1))
}

// rebase points v's fields (all but the body) into head, a copy of the
// record's bytes before its body.
func (v *recView) rebase(head []byte) {
	p := recHeaderLen
	cut := func(n int) []byte {
		s := head[p : p+n : p+n]
		p += n
		return s
	}
	v.etag = cut(len(v.etag))
	v.lastMod = cut(len(v.lastMod))
	v.vary = cut(len(v.vary))
	v.tags = cut(len(v.tags))
	v.hdrs = cut(len(v.hdrs))
	v.body = nil
}

// decodeBody appends v's decoded body to dst.
func decodeBody(dec *zstd.Decoder, dst []byte, v *recView) ([]byte, error) {
	if v.codec == codecRaw {
		return append(dst, v.body...), nil
	}
	var fh zstd.Header
	if err := fh.Decode(v.body); err != nil || !fh.HasFCS || fh.FrameContentSize != uint64(v.bodyLen) {
		return dst, fmt.Errorf("%w: zstd frame header", errRecord)
	}
	if cap(dst)-len(dst) < int(v.bodyLen) {
		dst = append(make([]byte, 0, len(dst)+int(v.bodyLen)), dst...)
	}
	start := len(dst)
	out, err := dec.DecodeAll(v.body, dst)
	if err != nil {
		return dst, fmt.Errorf("%w: zstd: %v", errRecord, err)
	}
	if len(out)-start != int(v.bodyLen) {
		return dst, fmt.Errorf("%w: body length", errRecord)
	}
	return out, nil
}

// deadline is the last moment an entry may be served: its freshness
// lifetime (from when it was stored if it was stored stale or soft-purged)
// plus the longer of its stale-while-revalidate and stale-if-error windows
// (none if it must revalidate), plus grace if it has a validator.
func deadline(storedMs, expiresMs int64, swr, sie uint32, flags uint16, hasValidator bool, graceMs int64) int64 {
	base := expiresMs
	if base <= 0 {
		base = storedMs
	}
	if flags&shm.FlagMustRevalidate == 0 {
		base += int64(max(swr, sie)) * 1000
	}
	if hasValidator {
		base += graceMs
	}
	return base
}

func (v *recView) deadline(graceMs int64) int64 {
	return deadline(v.storedMs, v.expiresMs, v.swr, v.sie, v.flags, len(v.etag) > 0 || len(v.lastMod) > 0, graceMs)
}

// compressible reports whether a body with header h is worth compressing:
// not when it already has a Content-Encoding, nor for media types that are
// compressed formats themselves.
func compressible(h http.Header) bool {
	if ce := h["Content-Encoding"]; len(ce) > 0 {
		for _, v := range ce {
			if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
				return false
			}
		}
	}
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return true
	}
	mt := strings.ToLower(strings.TrimSpace(ct[0]))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	switch {
	case strings.HasPrefix(mt, "image/"):
		// Only the uncompressed image formats.
		return mt == "image/svg+xml" || mt == "image/bmp" || mt == "image/x-icon" || mt == "image/vnd.microsoft.icon" || mt == "image/x-ms-bmp"
	case strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return false
	case strings.HasSuffix(mt, "+zip"), strings.HasSuffix(mt, "+gzip"), strings.HasSuffix(mt, "+zstd"):
		return false
	}
	switch mt {
	case "application/zip", "application/gzip", "application/x-gzip", "application/zstd", "application/x-zstd",
		"application/x-bzip", "application/x-bzip2", "application/x-xz", "application/x-lzip", "application/x-lzma",
		"application/x-7z-compressed", "application/vnd.rar", "application/x-rar-compressed", "application/x-compress",
		"application/x-brotli", "application/java-archive", "application/x-apple-diskimage", "application/ogg",
		"application/vnd.android.package-archive", "application/pdf",
		"font/woff", "font/woff2", "application/font-woff", "application/font-woff2":
		return false
	}
	if strings.HasPrefix(mt, "application/vnd.openxmlformats-") || strings.HasPrefix(mt, "application/vnd.oasis.opendocument.") {
		return false // zip containers
	}
	return true
}
