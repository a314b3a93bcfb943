package proxy

import "syscall"

// peekFD reads what the socket fd holds without consuming it or waiting:
// again is true when nothing has arrived yet.
func peekFD(fd uintptr, buf []byte) (n int, again bool, err error) {
	n, _, err = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN {
		return 0, true, nil
	}
	return n, false, err
}
