// Package appcounters is the file through which an app-side client
// publishes its counters (hits served from shared memory, misses,
// bypasses and their reasons, torn retries, corrupt entries, stale-writer
// fallbacks, bytes served) to the sidecar, which exports them on
// /metrics beside its own. docs/format.md ("App counters") specifies the
// file for clients in other languages.
//
// Each app process owns one small file in the counters directory (the
// invalidation log's directory, which the app mounts read-write). The app
// counts with process-local atomic adds as before and a Publisher copies
// the counters into the file through its own mapping once a second; the
// hit path gains nothing. The app holds an exclusive flock on the file
// for its lifetime, which is how the sidecar, in another PID namespace,
// tells a live process from a departed one: it folds a departed process's
// last counters into a total once and removes the file, so the exported
// totals never go backwards.
package appcounters

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// File layout, version 1 (all integers little-endian):
//
//	off size field
//	  0    8 magic "ZHAPPCTR"
//	  8    2 major version (1; a reader refuses another)
//	 10    2 minor version (0; additions only)
//	 12    4 header size (64; counters start here)
//	 16    4 counter count N (at most MaxCounters)
//	 20    4 pid (in the app's PID namespace; informational)
//	 24    8 instance: random, nonzero, fixed for the file's life
//	 32    8 created, unix ms
//	 40    8 updated, unix ms (last publish)
//	 48   16 client: ASCII, NUL-padded ("go", "python", "node")
//	 64  8*N counters, u64 each, in the order of Names
const (
	Magic       = "ZHAPPCTR"
	Major       = 1
	Minor       = 0
	HeaderSize  = 64
	MaxCounters = 1024
	MaxHeader   = 4096                      // a later minor version may grow the header
	MaxFileSize = MaxHeader + 8*MaxCounters // larger files are refused unread
	offMajor    = 8
	offMinor    = 10
	offHdrSize  = 12
	offCount    = 16
	offPID      = 20
	offInstance = 24
	offCreated  = 32
	offUpdated  = 40
	offClient   = 48
	clientLen   = 16
	FilePrefix  = "app-"
	FileSuffix  = ".counters"
	tmpSuffix   = ".tmp"
)

// Counter indexes, version 1. New counters are appended (a minor
// version); an index never changes meaning.
const (
	Hits              = iota // requests answered from shared memory
	NotModified              // of those, 304s to the app's conditional requests
	Misses                   // eligible, not fresh in shared memory: sent to the sidecar
	BypassMethod             // not eligible: not GET or HEAD
	BypassBody               // not eligible: a request body
	BypassConditional        // not eligible: Range, If-Match, If-Unmodified-Since, If-Range
	BypassNoCache            // not eligible: request Cache-Control no-cache, no-store, max-age=0; Pragma
	ServedBytes              // body bytes of the responses answered from shared memory
	LookupHits               // shared-memory lookups that hit (all APIs, Vary steps included)
	LookupMisses             // lookups that did not
	LookupExpired            // found but not fresh
	TornRetries              // bucket re-reads because the writer was mid-update
	Torn                     // lookups that gave up on an unstable bucket
	Overruns                 // entries reclaimed before or during the copy
	Corrupt                  // copies that failed verification
	Collisions               // same hash, different key
	WriterStale              // lookups refused because the sidecar's heartbeat was stale
	Faults                   // memory faults caught (a truncated or vanished file)
	Remaps                   // times a replaced cache file was mapped again
	Count                    // counters in version 1.0
)

// Names are the counters' names, by index: the sidecar exports counter
// "x" as zerohop_app_x_total (bypass_* as zerohop_app_bypasses_total
// with a reason label).
var Names = [Count]string{
	"hits", "not_modified", "misses",
	"bypass_method", "bypass_body", "bypass_conditional", "bypass_no_cache",
	"served_bytes",
	"lookup_hits", "lookup_misses", "lookup_expired",
	"torn_retries", "torn", "overruns", "corrupt", "collisions", "writer_stale", "faults", "remaps",
}

// Errors of Parse; the sidecar counts refusals by them.
var (
	ErrMagic    = errors.New("appcounters: not a counters file (bad magic)")
	ErrVersion  = errors.New("appcounters: unsupported major version")
	ErrSize     = errors.New("appcounters: size does not match the header")
	ErrInstance = errors.New("appcounters: zero instance")
)

// Header is a counters file's header.
type Header struct {
	Major, Minor      uint16
	HeaderSize, Count uint32
	PID               uint32
	Instance          uint64
	CreatedMs         uint64
	UpdatedMs         uint64
	Client            string
}

// Parse validates a whole counters file and returns its header and
// counters (the known ones; a newer minor version's extra counters are
// dropped, an older one's missing counters are zero). It never panics or
// allocates more than a Count-sized slice, whatever b holds.
func Parse(b []byte) (Header, [Count]uint64, error) {
	var h Header
	var c [Count]uint64
	if len(b) < HeaderSize || string(b[:8]) != Magic {
		return h, c, ErrMagic
	}
	le := binary.LittleEndian
	h.Major, h.Minor = le.Uint16(b[offMajor:]), le.Uint16(b[offMinor:])
	h.HeaderSize, h.Count = le.Uint32(b[offHdrSize:]), le.Uint32(b[offCount:])
	h.PID, h.Instance = le.Uint32(b[offPID:]), le.Uint64(b[offInstance:])
	h.CreatedMs, h.UpdatedMs = le.Uint64(b[offCreated:]), le.Uint64(b[offUpdated:])
	h.Client = strings.TrimRight(string(b[offClient:offClient+clientLen]), "\x00")
	if h.Major != Major {
		return h, c, fmt.Errorf("%w %d", ErrVersion, h.Major)
	}
	if h.HeaderSize < HeaderSize || h.HeaderSize > MaxHeader || h.HeaderSize%8 != 0 || h.Count > MaxCounters ||
		uint64(h.HeaderSize)+8*uint64(h.Count) != uint64(len(b)) {
		return h, c, fmt.Errorf("%w: header %d + %d counters, file %d bytes", ErrSize, h.HeaderSize, h.Count, len(b))
	}
	if h.Instance == 0 {
		return h, c, ErrInstance
	}
	for i := 0; i < int(h.Count) && i < Count; i++ {
		c[i] = le.Uint64(b[int(h.HeaderSize)+8*i:])
	}
	return h, c, nil
}

// putHeader writes a version 1.0 header with Count counters.
func putHeader(b []byte, pid uint32, instance, nowMs uint64, client string) {
	le := binary.LittleEndian
	copy(b, Magic)
	le.PutUint16(b[offMajor:], Major)
	le.PutUint16(b[offMinor:], Minor)
	le.PutUint32(b[offHdrSize:], HeaderSize)
	le.PutUint32(b[offCount:], Count)
	le.PutUint32(b[offPID:], pid)
	le.PutUint64(b[offInstance:], instance)
	le.PutUint64(b[offCreated:], nowMs)
	le.PutUint64(b[offUpdated:], nowMs)
	copy(b[offClient:offClient+clientLen], client)
}
