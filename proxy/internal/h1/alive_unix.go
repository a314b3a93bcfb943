//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import "syscall"

// alive reports whether an idle connection may still be used: the server
// has not closed or reset it, and (for plain HTTP) has sent nothing
// unsolicited. It peeks at the socket without blocking. For TLS, bytes
// waiting may be a post-handshake message, so only a close counts.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.peekN, c.peekErr = 0, nil
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	switch {
	case c.peekErr == syscall.EAGAIN || c.peekErr == syscall.EWOULDBLOCK:
		return true // nothing to read: the normal case
	case c.peekErr != nil:
		return false
	case c.peekN == 0:
		return false // EOF
	}
	return c.tlsState != nil
}

func (c *conn) peek(fd uintptr) bool {
	c.peekN, _, c.peekErr = syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK)
	return true // the socket is non-blocking: never wait
}
