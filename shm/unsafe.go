package shm

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// The only place where the mapping is viewed through pointers. Every shared
// word is touched through a typed atomic: the other side of the protocol is
// another process, invisible to the race detector and the compiler.

// u32at returns the atomic word at off; off must be 4-aligned and in bounds.
func u32at(m []byte, off int) *atomic.Uint32 {
	_ = m[off+3]
	return (*atomic.Uint32)(unsafe.Pointer(&m[off]))
}

// u64at returns the atomic word at off; off must be 8-aligned and in bounds.
// The mapping is page-aligned, so 8-aligned offsets are 8-aligned addresses,
// which 64-bit atomics need on 32-bit platforms.
func u64at(m []byte, off int) *atomic.Uint64 {
	_ = m[off+7]
	return (*atomic.Uint64)(unsafe.Pointer(&m[off]))
}

// Plain little-endian accessors for private copies and writer-owned bytes.
var le = binary.LittleEndian
