package invalidate

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The numbers in this file are the log format; docs/invalidation.md is the
// prose version. A change here needs a Version bump there.
const (
	// Magic is the first four bytes of every record.
	Magic = "ZHIV"
	// Version is the record format version this build writes and reads.
	Version = 1
	// HeaderSize is the fixed part of a record, before origin and payload.
	HeaderSize = 33
	// MaxOrigin is the longest origin a record can carry.
	MaxOrigin = 255
	// MaxPayload is the longest payload a record can carry.
	MaxPayload = 64 << 10
	// MaxRecordSize is the longest valid record.
	MaxRecordSize = HeaderSize + MaxOrigin + MaxPayload
	// MaxSeq is the highest sequence number a record may carry (2^53, exact
	// in a float64, so in JSON and in metrics). Readers treat a record
	// numbered above it as garbage for its sequence number, appenders
	// ignore it, and no appender numbers past it: sequence numbers never
	// wrap. At a million purges a second it lasts 285 years.
	MaxSeq uint64 = 1 << 53
	// MaxSeqJump bounds how far one record's sequence number may lie above
	// the highest one a reader has believed so far. Honest appenders number
	// each record one above the highest they found in the log (or the
	// published one), so a larger jump can only come from a forged or
	// corrupted record: readers apply it but do not take its number.
	MaxSeqJump uint64 = 1 << 20
)

// Record field offsets.
const (
	offMagic     = 0  // [4]byte
	offCRC       = 4  // u32 CRC-32C of bytes [8, length)
	offLength    = 8  // u32 whole record, header included
	offVersion   = 12 // u8
	offKind      = 13 // u8
	offMode      = 14 // u8
	offFlags     = 15 // u8
	offSeq       = 16 // u64
	offTime      = 24 // i64 unix ms
	offOriginLen = 32 // u8
	crcFrom      = 8
)

var (
	le       = binary.LittleEndian
	crcTable = crc32.MakeTable(crc32.Castagnoli)
)

// Kind says what a record invalidates.
type Kind uint8

// Record kinds. Values not listed are unknown: consumers count and skip
// them, never guess.
const (
	// KindKey invalidates one URL and all its Vary variants. Payload: an
	// absolute URL ("http://catalog.internal/items/42").
	KindKey Kind = 1
	// KindPrefix invalidates every URL of one scheme and host whose path
	// and query start with the prefix's. Payload: an absolute URL prefix
	// ("http://catalog.internal/items/").
	KindPrefix Kind = 2
	// KindTag invalidates every response carrying a surrogate key.
	// Payload: the tag.
	KindTag Kind = 3
	// KindAll invalidates everything. Payload: empty.
	KindAll Kind = 4
	// KindMark is written by the log's owner, never by clients: the first
	// record of a rotated file, or a floor raised after the log was
	// replaced. It carries a sequence number and applies nothing.
	// Payload: a reason byte (MarkRotate or MarkReseq) and 8 random bytes.
	KindMark Kind = 0x80
)

// Mark reasons, the first payload byte of a KindMark record.
const (
	MarkRotate = 1 // first record of a file made by rotation
	MarkReseq  = 2 // sequence floor raised after the log was replaced
)

// String returns the kind's name as the CLI spells it.
func (k Kind) String() string {
	switch k {
	case KindKey:
		return "key"
	case KindPrefix:
		return "prefix"
	case KindTag:
		return "tag"
	case KindAll:
		return "all"
	case KindMark:
		return "mark"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Known reports whether k is a kind a client may append and a consumer
// applies (KindMark is neither).
func (k Kind) Known() bool { return k >= KindKey && k <= KindAll }

// Mode says how a record invalidates.
type Mode uint8

// Modes.
const (
	// Hard deletes the matching entries.
	Hard Mode = 0
	// Soft marks them stale, so that stale-while-revalidate can serve them
	// while one refresh runs.
	Soft Mode = 1
)

// String returns "hard" or "soft".
func (m Mode) String() string {
	switch m {
	case Hard:
		return "hard"
	case Soft:
		return "soft"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Known reports whether m is Hard or Soft.
func (m Mode) Known() bool { return m <= Soft }

// Record flags. Unknown bits are ignored by readers and must be zero.
const (
	// FlagRemote marks a record received from another pod through the
	// fan-out bridge: it is applied locally but never published again.
	FlagRemote uint8 = 1 << 0
)

// Record is one invalidation.
type Record struct {
	// Seq is the record's sequence number, assigned by Log.Append under
	// the log's lock: strictly increasing in the log, across every writer.
	Seq uint64
	// TimeMs is when the record was made, unix milliseconds. Append fills
	// it if zero.
	TimeMs int64
	Kind   Kind
	Mode   Mode
	// Flags holds FlagRemote and future bits.
	Flags uint8
	// Origin names the writer or pod the record came from, at most
	// MaxOrigin bytes. It is informational and survives fan-out.
	Origin string
	// Payload depends on Kind: a URL, a URL prefix, a tag or nothing.
	Payload []byte
}

// String formats a record for logs.
func (r Record) String() string {
	return fmt.Sprintf("#%d %s/%s %q origin=%q", r.Seq, r.Kind, r.Mode, r.Payload, r.Origin)
}

// EncodedLen is the record's size in the log.
func (r *Record) EncodedLen() int { return HeaderSize + len(r.Origin) + len(r.Payload) }

// AppendRecord appends r's encoding to dst. It checks only the sizes; Append
// also checks kind, mode and payload.
func AppendRecord(dst []byte, r *Record) ([]byte, error) {
	if len(r.Origin) > MaxOrigin {
		return dst, fmt.Errorf("%w: origin of %d bytes, limit %d", ErrTooLarge, len(r.Origin), MaxOrigin)
	}
	if len(r.Payload) > MaxPayload {
		return dst, fmt.Errorf("%w: payload of %d bytes, limit %d", ErrTooLarge, len(r.Payload), MaxPayload)
	}
	start := len(dst)
	n := r.EncodedLen()
	dst = append(dst, Magic...)
	dst = le.AppendUint32(dst, 0) // crc, below
	dst = le.AppendUint32(dst, uint32(n))
	dst = append(dst, Version, byte(r.Kind), byte(r.Mode), r.Flags)
	dst = le.AppendUint64(dst, r.Seq)
	dst = le.AppendUint64(dst, uint64(r.TimeMs))
	dst = append(dst, byte(len(r.Origin)))
	dst = append(dst, r.Origin...)
	dst = append(dst, r.Payload...)
	le.PutUint32(dst[start+offCRC:], crc32.Checksum(dst[start+crcFrom:], crcTable))
	return dst, nil
}

// DecodeRecord decodes the record at the start of b. On success it returns
// the record, whose Payload aliases b, and its length. Errors:
//   - ErrIncomplete: b is a prefix of a record (n is the full length when
//     known, else 0);
//   - ErrCorrupt: b does not start with a record (n is 0: resynchronise);
//   - ErrVersion, ErrMalformed: a checksummed record that cannot be used;
//     n is its length, to skip it whole.
func DecodeRecord(b []byte) (rec Record, n int, err error) {
	if len(b) < len(Magic) {
		if string(b) == Magic[:len(b)] {
			return rec, 0, ErrIncomplete
		}
		return rec, 0, ErrCorrupt
	}
	if string(b[:len(Magic)]) != Magic {
		return rec, 0, ErrCorrupt
	}
	if len(b) < offLength+4 {
		return rec, 0, ErrIncomplete
	}
	n = int(le.Uint32(b[offLength:]))
	if n < HeaderSize || n > MaxRecordSize {
		return rec, 0, ErrCorrupt
	}
	if len(b) < n {
		return rec, n, ErrIncomplete
	}
	if crc32.Checksum(b[crcFrom:n], crcTable) != le.Uint32(b[offCRC:]) {
		return rec, 0, ErrCorrupt
	}
	if b[offVersion] != Version {
		return rec, n, fmt.Errorf("%w: %d", ErrVersion, b[offVersion])
	}
	ol := int(b[offOriginLen])
	if HeaderSize+ol > n {
		return rec, n, fmt.Errorf("%w: origin of %d bytes in a record of %d", ErrMalformed, ol, n)
	}
	rec = Record{
		Seq:     le.Uint64(b[offSeq:]),
		TimeMs:  int64(le.Uint64(b[offTime:])),
		Kind:    Kind(b[offKind]),
		Mode:    Mode(b[offMode]),
		Flags:   b[offFlags],
		Origin:  string(b[HeaderSize : HeaderSize+ol]),
		Payload: b[HeaderSize+ol : n : n],
	}
	return rec, n, nil
}

// Validate checks what Append requires of a client record: a known kind
// and mode, an origin and payload within limits, and a payload that fits
// the kind.
func (r *Record) Validate() error {
	if !r.Kind.Known() || !r.Mode.Known() {
		return fmt.Errorf("%w: %s/%s", ErrUnknownKind, r.Kind, r.Mode)
	}
	if len(r.Origin) > MaxOrigin {
		return fmt.Errorf("%w: origin of %d bytes, limit %d", ErrTooLarge, len(r.Origin), MaxOrigin)
	}
	if len(r.Payload) > MaxPayload {
		return fmt.Errorf("%w: payload of %d bytes, limit %d", ErrTooLarge, len(r.Payload), MaxPayload)
	}
	if r.Flags&^FlagRemote != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadPayload, r.Flags)
	}
	switch r.Kind {
	case KindKey, KindPrefix:
		if _, _, _, err := SplitURL(string(r.Payload)); err != nil {
			return err
		}
	case KindTag:
		if len(r.Payload) == 0 || len(r.Payload) > MaxTag {
			return fmt.Errorf("%w: tag of %d bytes (1 to %d)", ErrBadPayload, len(r.Payload), MaxTag)
		}
	case KindAll:
		if len(r.Payload) != 0 {
			return fmt.Errorf("%w: payload on an \"all\" record", ErrBadPayload)
		}
	}
	return nil
}
