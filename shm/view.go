package shm

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// geometry is the immutable layout of one cache file, from header line 0.
type geometry struct {
	seed         uint64
	bucketLog2   uint32
	bucketMask   uint64
	regionSize   uint64
	regionCount  uint64
	indexOff     uint64
	arenaOff     uint64
	arenaLen     uint64
	fileSize     uint64
	instanceID   uint64
	maxKey       uint32
	maxHeaders   uint32
	createdMs    uint64
	minorVersion uint16
	features     uint64

	// Reciprocals of regionSize and arenaLen: the lookup takes a position
	// modulo both, and a 64-bit DIV costs tens of cycles.
	regionDiv, arenaDiv divisor
}

// divisor computes x mod d for a fixed d > 0 with a multiply: m is
// floor((2^64-1)/d) = 2^64/d - e with 0 < e <= 1, so the high word of x*m is
// floor(x/d) or one less, and one conditional subtraction corrects the
// remainder (TestDivisor).
type divisor struct{ d, m uint64 }

func newDivisor(d uint64) divisor { return divisor{d: d, m: ^uint64(0) / d} }

func (v divisor) mod(x uint64) uint64 {
	q, _ := bits.Mul64(x, v.m)
	r := x - q*v.d
	if r >= v.d {
		r -= v.d
	}
	return r
}

// view is a mapped cache file with typed pointers to its shared words.
type view struct {
	data []byte
	geo  geometry

	state     *atomic.Uint32
	adoptGen  *atomic.Uint32
	head      *atomic.Uint64
	tail      *atomic.Uint64
	heartbeat *atomic.Uint64
	invalSeq  *atomic.Uint64
	invalOff  *atomic.Uint64
	stats     [statCount]*atomic.Uint64
}

// layoutParams are what a writer chooses when it creates a file.
type layoutParams struct {
	fileSize    int64
	regionSize  int64
	regionCount int64
	bucketLog2  uint32
	seed        uint64
	instanceID  uint64
	createdMs   int64
	maxKey      uint32
	maxHeaders  uint32
}

// computeLayout derives the geometry for a file of about size bytes.
func computeLayout(size, regionSize int64, expectedEntries int64) (layoutParams, error) {
	var p layoutParams
	if regionSize < 64<<10 || regionSize > 1<<30 || regionSize%pageSize != 0 {
		return p, fmt.Errorf("%w: region size %d must be a multiple of 4 KiB between 64 KiB and 1 GiB", ErrOptions, regionSize)
	}
	if expectedEntries <= 0 {
		expectedEntries = size / 1024
	}
	// Aim for 80% slot load at the expected entry count (two-choice, 5 slots).
	buckets := expectedEntries * 10 / (SlotsPerBucket * 8)
	if buckets < 2 {
		buckets = 2
	}
	log2 := uint32(bits.Len64(uint64(buckets - 1)))
	if log2 > 32 {
		return p, fmt.Errorf("%w: %d expected entries is too many", ErrOptions, expectedEntries)
	}
	indexLen := int64(BucketSize) << log2
	arena := size - HeaderSize - indexLen
	regions := arena / regionSize
	if regions < 4 {
		return p, fmt.Errorf("%w: size %d holds %d regions of %d bytes after a %d-byte index; need at least 4", ErrOptions, size, regions, regionSize, indexLen)
	}
	p.regionSize = regionSize
	p.regionCount = regions
	p.bucketLog2 = log2
	p.fileSize = HeaderSize + indexLen + regions*regionSize
	return p, nil
}

// writeLayout fills header line 0 of a new file. The state stays StateInit.
func writeLayout(m []byte, p layoutParams) {
	copy(m[offMagic:], Magic)
	le.PutUint16(m[offMajor:], MajorVersion)
	le.PutUint16(m[offMinor:], MinorVersion)
	le.PutUint32(m[offHeaderSize:], HeaderSize)
	le.PutUint64(m[offFeatures:], 0)
	le.PutUint64(m[offSeed:], p.seed)
	le.PutUint32(m[offBucketLog2:], p.bucketLog2)
	le.PutUint32(m[offSlotsPerBkt:], SlotsPerBucket)
	le.PutUint32(m[offRegionSize:], uint32(p.regionSize))
	le.PutUint32(m[offRegionCount:], uint32(p.regionCount))
	le.PutUint64(m[offIndexOff:], HeaderSize)
	le.PutUint64(m[offArenaOff:], uint64(HeaderSize+(int64(BucketSize)<<p.bucketLog2)))
	le.PutUint64(m[offInstanceID:], p.instanceID)
	le.PutUint64(m[offCreatedMs:], uint64(p.createdMs))
	le.PutUint64(m[offFileSize:], uint64(p.fileSize))
	le.PutUint32(m[offMaxKey:], p.maxKey)
	le.PutUint32(m[offMaxHeaders:], p.maxHeaders)
	le.PutUint64(m[offLayoutSum:], xxhash.Sum64(m[:layoutSummedLen]))
}

// parseLayout validates header line 0 against the mapping's length.
func parseLayout(m []byte) (geometry, error) {
	var g geometry
	if len(m) < HeaderSize {
		return g, fmt.Errorf("%w: %d bytes is shorter than the header", ErrTruncated, len(m))
	}
	if string(m[offMagic:offMagic+8]) != Magic {
		return g, ErrBadMagic
	}
	if major := le.Uint16(m[offMajor:]); major != MajorVersion {
		return g, fmt.Errorf("%w: file is version %d.%d, this build reads %d.x", ErrVersion, major, le.Uint16(m[offMinor:]), MajorVersion)
	}
	if xxhash.Sum64(m[:layoutSummedLen]) != le.Uint64(m[offLayoutSum:]) {
		return g, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	g.minorVersion = le.Uint16(m[offMinor:])
	g.features = le.Uint64(m[offFeatures:])
	g.seed = le.Uint64(m[offSeed:])
	g.bucketLog2 = le.Uint32(m[offBucketLog2:])
	g.regionSize = uint64(le.Uint32(m[offRegionSize:]))
	g.regionCount = uint64(le.Uint32(m[offRegionCount:]))
	g.indexOff = le.Uint64(m[offIndexOff:])
	g.arenaOff = le.Uint64(m[offArenaOff:])
	g.fileSize = le.Uint64(m[offFileSize:])
	g.instanceID = le.Uint64(m[offInstanceID:])
	g.createdMs = le.Uint64(m[offCreatedMs:])
	g.maxKey = le.Uint32(m[offMaxKey:])
	g.maxHeaders = le.Uint32(m[offMaxHeaders:])
	switch {
	case le.Uint32(m[offHeaderSize:]) != HeaderSize,
		le.Uint32(m[offSlotsPerBkt:]) != SlotsPerBucket,
		g.bucketLog2 < 1 || g.bucketLog2 > 32,
		g.regionSize < pageSize || g.regionSize%pageSize != 0,
		g.regionCount < 4,
		g.indexOff != HeaderSize,
		g.arenaOff != g.indexOff+(uint64(BucketSize)<<g.bucketLog2),
		g.fileSize != g.arenaOff+g.regionSize*g.regionCount:
		return g, fmt.Errorf("%w: inconsistent layout", ErrCorrupt)
	}
	if uint64(len(m)) < g.fileSize {
		return g, fmt.Errorf("%w: %d bytes, header says %d", ErrTruncated, len(m), g.fileSize)
	}
	g.bucketMask = 1<<g.bucketLog2 - 1
	g.arenaLen = g.regionSize * g.regionCount
	g.regionDiv = newDivisor(g.regionSize)
	g.arenaDiv = newDivisor(g.arenaLen)
	return g, nil
}

func newView(m []byte) (*view, error) {
	g, err := parseLayout(m)
	if err != nil {
		return nil, err
	}
	v := &view{data: m, geo: g}
	v.state = u32at(m, offState)
	v.adoptGen = u32at(m, offAdoptGen)
	v.head = u64at(m, offHead)
	v.tail = u64at(m, offTail)
	v.heartbeat = u64at(m, offHeartbeat)
	v.invalSeq = u64at(m, offInvalSeq)
	v.invalOff = u64at(m, offInvalOff)
	for i := range v.stats {
		v.stats[i] = u64at(m, offStats+8*i)
	}
	return v, nil
}

// buckets returns the two candidate bucket offsets for hash h. The second
// choice mixes the high bits so that keys sharing a first bucket spread out.
func (v *view) buckets(h uint64) (b1, b2 int) {
	i1 := h & v.geo.bucketMask
	i2 := (bits.RotateLeft64(h, 32) * 0x9e3779b97f4a7c15 >> 17) & v.geo.bucketMask
	if i2 == i1 {
		i2 = i1 ^ 1
	}
	base := v.geo.indexOff
	return int(base + i1*BucketSize), int(base + i2*BucketSize)
}

// slotTag is the index tag of hash h; 0 marks an empty slot.
func slotTag(h uint64) uint64 { return h | 1 }

// phys is the file offset of arena position pos.
func (v *view) phys(pos uint64) uint64 { return v.geo.arenaOff + v.geo.arenaDiv.mod(pos) }

// Stats are the counters the writer keeps in the file header.
type Stats struct {
	Entries          uint64 // live slots
	Inserts          uint64 // entries written
	Replaces         uint64 // inserts that replaced the same key
	Deletes          uint64 // entries removed by delete or purge
	Evictions        uint64 // entries pushed out of a full bucket pair
	Reclaimed        uint64 // entries whose region was reused
	RegionsReclaimed uint64
	Purges           uint64 // purge operations (tag, prefix, all)
	BytesWritten     uint64
	Rejected         uint64 // items over a limit
	Head, Tail       uint64
	InvalSeq         uint64
	HeartbeatMs      uint64
	State            State
	AdoptGen         uint32
}

func (v *view) writerStats() Stats {
	l := func(i int) uint64 { return v.stats[i].Load() }
	return Stats{
		Entries: l(statEntries), Inserts: l(statInserts), Replaces: l(statReplaces),
		Deletes: l(statDeletes), Evictions: l(statEvictions), Reclaimed: l(statReclaimed),
		RegionsReclaimed: l(statRegionsReclaimed), Purges: l(statPurges),
		BytesWritten: l(statBytesWritten), Rejected: l(statRejected),
		Head: v.head.Load(), Tail: v.tail.Load(), InvalSeq: v.invalSeq.Load(),
		HeartbeatMs: v.heartbeat.Load(), State: State(v.state.Load()), AdoptGen: v.adoptGen.Load(),
	}
}
