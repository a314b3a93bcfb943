//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import "syscall"

// idleState peeks at an idle connection's socket without blocking: it is
// usable only if the server has neither closed it nor sent anything. Bytes
// waiting are bytes no request asked for (a second response, a body after
// HEAD, 204 or 304), which the next request would read as its answer. On
// TLS they could also be a post-handshake message (a key update); such a
// connection is closed all the same: a reconnect is cheap, a desync is not.
func (c *conn) idleState() idleState {
	if c.raw == nil {
		return idleOK
	}
	c.peekN, c.peekErr = 0, nil
	if err := c.raw.Read(c.peekFn); err != nil {
		return idleClosed
	}
	switch {
	case c.peekErr == syscall.EAGAIN || c.peekErr == syscall.EWOULDBLOCK:
		return idleOK // nothing to read: the normal case
	case c.peekErr != nil:
		return idleClosed
	case c.peekN == 0:
		return idleClosed // EOF
	}
	return idleUnsolicited
}

func (c *conn) peek(fd uintptr) bool {
	c.peekN, c.peekErr = peekSocket(fd, c.peekBuf[:])
	return true // never wait
}
