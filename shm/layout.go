package shm

// The numbers in this file are the file format. docs/format.md is the prose
// version; a change here is a format change and needs a version bump there.

const (
	// Magic is the first eight bytes of every cache file.
	Magic = "ZHCACHE\x00"
	// MajorVersion changes when an old reader would misread a new file.
	MajorVersion = 2
	// MinorVersion changes for additions old readers can ignore.
	MinorVersion = 0

	// HeaderSize is the size of the file header; the index starts after it.
	HeaderSize = 4096
	// BucketSize is the size of one index bucket: two cache lines.
	BucketSize = 128
	// SlotsPerBucket is how many slots a bucket holds.
	SlotsPerBucket = 5
	// SlotSize is the size of one slot: tag, position, length|expiry.
	SlotSize = 24
	// EntryHeaderSize is the fixed part of an arena entry.
	EntryHeaderSize = 96
	// EntryAlign is the alignment of every entry in the arena.
	EntryAlign = 8

	// KindEntry and KindPad are the first word of an arena record.
	KindEntry uint32 = 0x3145485a // "ZHE1" little-endian
	KindPad   uint32 = 0x3150485a // "ZHP1"

	pageSize = 4096
)

// Header field offsets (all little-endian, every u64 8-aligned). Line 0 is
// written once before the state turns live and never again; the writer-hot
// fields below sit on cache lines of their own so that a reader's loads of
// the reclaim horizon do not contend with the writer's head updates.
const (
	offMagic        = 0  // [8]byte
	offMajor        = 8  // u16
	offMinor        = 10 // u16
	offHeaderSize   = 12 // u32
	offFeatures     = 16 // u64
	offSeed         = 24 // u64
	offBucketLog2   = 32 // u32
	offSlotsPerBkt  = 36 // u32
	offRegionSize   = 40 // u32
	offRegionCount  = 44 // u32
	offIndexOff     = 48 // u64
	offArenaOff     = 56 // u64
	offInstanceID   = 64 // u64
	offCreatedMs    = 72 // u64
	offFileSize     = 80 // u64
	offMaxKey       = 88 // u32
	offMaxHeaders   = 92 // u32
	offLayoutSum    = 96 // u64: xxhash64(seed 0) of bytes [0, 96)
	layoutSummedLen = 96

	offState       = 128 // u32: see State
	offAdoptGen    = 132 // u32: bumped each time a writer adopts the file
	offHead        = 192 // u64: absolute arena position of the next write
	offTail        = 256 // u64: reclaim horizon; entries below it are dead
	offHeartbeat   = 320 // u64: writer heartbeat, unix ms
	offWriterStart = 328 // u64: when this writer started, unix ms
	offInvalSeq    = 384 // u64: last invalidation-log sequence applied
	offInvalOff    = 392 // u64: byte offset in the log after that record
	offStats       = 448 // statCount u64 counters, two lines
)

// Slot field offsets inside a bucket. Word 0 of a bucket is the sequence
// counter (odd while the writer changes the bucket), word 1 is writer-private.
const (
	offBucketSeq = 0
	offSlots     = 8
	offSlotTag   = 0
	offSlotPos   = 8
	offSlotMeta  = 16 // low u32 total length, high u32 fresh-until (unix s)
)

// Entry field offsets. The checksum covers bytes [16, total_len).
// Format 1 had a u64 XXH64 at offset 8; format 2 has a u32 CRC-32 there and
// a reserved zero u32 after it.
const (
	eKind       = 0  // u32
	eTotalLen   = 4  // u32
	eSum        = 8  // u32 CRC-32/IEEE, see entrySum
	eSumPad     = 12 // u32, zero
	ePos        = 16 // u64
	eHash       = 24 // u64
	eStoredMs   = 32 // i64 response_time
	eExpiresMs  = 40 // i64 fresh until
	eInitialAge = 48 // u32 corrected_initial_age, seconds
	eSWR        = 52 // u32 stale-while-revalidate, seconds
	eSIE        = 56 // u32 stale-if-error, seconds
	eStatus     = 60 // u16
	eFlags      = 62 // u16
	eKeyLen     = 64 // u32
	eVaryLen    = 68 // u32
	eHdrsLen    = 72 // u32
	eBodyLen    = 76 // u32
	eETagLen    = 80 // u16
	eLastModLen = 82 // u16
	eTagsLen    = 84 // u32
	eReserved   = 88 // u64, zero
	sumFrom     = 16
)

// State is the writer state word in the header.
type State uint32

// Writer states.
const (
	StateInit      State = 0 // being built; not readable
	StateLive      State = 1 // a writer owns it
	StateClean     State = 2 // the last writer closed it cleanly
	StateAbandoned State = 3 // replaced by a new file; readers must reopen
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateLive:
		return "live"
	case StateClean:
		return "clean"
	case StateAbandoned:
		return "abandoned"
	}
	return "unknown"
}

// Entry flags.
const (
	// FlagVaryIndex marks an entry stored under a primary key whose response
	// varies: its vary block names the request headers, and the response
	// itself is stored under the secondary key built from them.
	FlagVaryIndex uint16 = 1 << 0
	// FlagMustRevalidate forbids serving the entry stale (must-revalidate,
	// proxy-revalidate or s-maxage on the response).
	FlagMustRevalidate uint16 = 1 << 1
	// FlagNoCache means every use needs revalidation (response no-cache).
	FlagNoCache uint16 = 1 << 2
	// FlagHeadersOnly marks an entry whose body was not stored (HEAD-only).
	FlagHeadersOnly uint16 = 1 << 3
	// FlagAuthShared marks a response a shared cache may reuse for requests
	// carrying Authorization (it had public, s-maxage or must-revalidate;
	// RFC 9111 §3.5). Readers must not serve other entries to such requests.
	FlagAuthShared uint16 = 1 << 4
)

// Header statistics counters, written only by the writer.
const (
	statEntries = iota
	statInserts
	statReplaces
	statDeletes
	statEvictions
	statReclaimed
	statRegionsReclaimed
	statPurges
	statBytesWritten
	statRejected
	statCount
)

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }
