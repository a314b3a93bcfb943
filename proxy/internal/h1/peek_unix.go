//go:build (linux && 386) || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import "syscall"

// peekSocket peeks at fd without blocking (linux/386 has no recvfrom
// system call of its own, only socketcall).
func peekSocket(fd uintptr, buf []byte) (int, error) {
	n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
