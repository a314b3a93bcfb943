package store

import (
	"encoding/binary"
	"math/bits"
)

// The Pebble key space. docs/store.md is the prose version; a change here
// is a format change and needs a FormatVersion bump.
//
//	0x00 name                               metadata (format marker, applied seq, counters)
//	0x01 cachekey                           record: the complete item (record.go)
//	0x02 cachekey                           info: score, deadline, uses, tags (small)
//	0x03 be64(^score) cachekey              order index: value be64(deadline) be32(shm size)
//	0x04 be64(deadline) cachekey            expiry index: empty value
//	0x05 be16(len tag) tag cachekey         tag index: empty value
const (
	pMeta  byte = 0x00
	pRec   byte = 0x01
	pInfo  byte = 0x02
	pOrder byte = 0x03
	pExp   byte = 0x04
	pTag   byte = 0x05
	pEnd   byte = 0x06 // first byte past the entry key space
)

// FormatVersion is the store's on-disk format version, kept in the marker
// key. Open refuses a store with a newer version (ErrForeign).
const FormatVersion = 1

// formatMagic starts the marker value.
const formatMagic = "zerohop-store\x00"

var (
	keyFormat   = []byte{pMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	keySeq      = []byte{pMeta, 's', 'e', 'q'}
	keyCounters = []byte{pMeta, 'c', 'o', 'u', 'n', 't', 'e', 'r', 's'}
)

var be = binary.BigEndian
var le = binary.LittleEndian

func appendRecKey(dst, key []byte) []byte  { return append(append(dst, pRec), key...) }
func appendInfoKey(dst, key []byte) []byte { return append(append(dst, pInfo), key...) }

func appendOrderKey(dst []byte, score int64, key []byte) []byte {
	dst = append(dst, pOrder)
	dst = be.AppendUint64(dst, ^uint64(max(score, 0)))
	return append(dst, key...)
}

func appendExpKey(dst []byte, deadline int64, key []byte) []byte {
	dst = append(dst, pExp)
	dst = be.AppendUint64(dst, uint64(max(deadline, 0)))
	return append(dst, key...)
}

func appendTagPrefix(dst []byte, tag string) []byte {
	dst = append(dst, pTag)
	dst = be.AppendUint16(dst, uint16(len(tag)))
	return append(dst, tag...)
}

func appendTagKey(dst []byte, tag string, key []byte) []byte {
	return append(appendTagPrefix(dst, tag), key...)
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// orderValueLen is the order index value: be64(deadline) be32(the
// entry's size in a shared-memory file), so that a refill can skip
// expired entries and stop at its budget without reading records.
const orderValueLen = 12

func appendOrderValue(dst []byte, deadline int64, hot uint32) []byte {
	dst = be.AppendUint64(dst, uint64(deadline))
	return be.AppendUint32(dst, hot)
}

// info is an entry's bookkeeping, kept apart from its record so that
// writes, uses and invalidations read a few dozen bytes, not the body.
//
//	0  u8  version (1)
//	1  [3] reserved
//	4  u32 record size
//	8  i64 score
//	16 i64 deadline (unix ms after which the entry is never served)
//	24 i64 last use (unix ms)
//	32 u32 uses
//	36 u32 tags block length
//	40 u64 record checksum
//	48 u32 size in a shared-memory file
//	52 u32 reserved (0)
//	56 tags block (str16 each)
type info struct {
	size     uint32
	hot      uint32
	score    int64
	deadline int64
	lastUse  int64
	uses     uint32
	sum      uint64
	tags     []byte // str16 block
}

const infoHeaderLen = 56

func (in *info) append(dst []byte) []byte {
	dst = append(dst, 1, 0, 0, 0)
	dst = le.AppendUint32(dst, in.size)
	dst = le.AppendUint64(dst, uint64(in.score))
	dst = le.AppendUint64(dst, uint64(in.deadline))
	dst = le.AppendUint64(dst, uint64(in.lastUse))
	dst = le.AppendUint32(dst, in.uses)
	dst = le.AppendUint32(dst, uint32(len(in.tags)))
	dst = le.AppendUint64(dst, in.sum)
	dst = le.AppendUint32(dst, in.hot)
	dst = le.AppendUint32(dst, 0)
	return append(dst, in.tags...)
}

// decodeInfo parses an info value; tags alias b.
func decodeInfo(b []byte) (in info, ok bool) {
	if len(b) < infoHeaderLen || b[0] != 1 {
		return in, false
	}
	tl := uint64(le.Uint32(b[36:]))
	if uint64(len(b)-infoHeaderLen) != tl {
		return in, false
	}
	in.size = le.Uint32(b[4:])
	in.score = int64(le.Uint64(b[8:]))
	in.deadline = int64(le.Uint64(b[16:]))
	in.lastUse = int64(le.Uint64(b[24:]))
	in.uses = le.Uint32(b[32:])
	in.sum = le.Uint64(b[40:])
	in.hot = le.Uint32(b[48:])
	in.tags = b[infoHeaderLen:]
	return in, true
}

// score ranks entries for refill (highest first) and eviction (lowest
// first): recency, plus UseWeight for each doubling of uses.
func score(lastUse int64, uses uint32, weightMs int64) int64 {
	return max(lastUse, 0) + int64(bits.Len32(uses))*weightMs
}

// entryBytes is the live-bytes charge of an entry: every key and value it
// has in the store, as encoded.
func entryBytes(keyLen int, recSize uint32, tags []byte) int64 {
	n := int64(1+keyLen) + int64(recSize) + // record
		int64(1+keyLen+infoHeaderLen+len(tags)) + // info
		int64(9+keyLen+orderValueLen) + // order
		int64(9+keyLen) // expiry
	for it := newStrIter(tags); it.next(); {
		n += int64(3 + len(it.cur) + keyLen)
	}
	return n
}

// strIter walks a block of str16 strings (u16 little-endian length, bytes),
// the encoding shm uses for vary and tag blocks.
type strIter struct {
	b, cur []byte
}

func newStrIter(b []byte) strIter { return strIter{b: b} }

func (it *strIter) next() bool {
	if len(it.b) < 2 {
		return false
	}
	n := int(le.Uint16(it.b))
	if len(it.b) < 2+n {
		it.b = nil
		return false
	}
	it.cur, it.b = it.b[2:2+n], it.b[2+n:]
	return true
}

func appendStr16(dst []byte, s string) []byte {
	dst = le.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}
