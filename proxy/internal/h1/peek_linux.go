//go:build linux && !386

package h1

import (
	"syscall"
	"unsafe"
)

// peekSocket peeks at fd without blocking and without telling the
// scheduler about a system call: syscall.Recvfrom's entersyscall let the
// runtime hand the P to another thread at an idle sidecar, which cost
// some 40 µs of CPU per miss in the open-loop suite. MSG_DONTWAIT cannot
// block, so a raw call is safe (internal/nbconn reads the same way).
func peekSocket(fd uintptr, buf []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
