//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package h1

// idleState cannot look at the socket on this platform; a connection the
// server closed while idle is found out by the exchange (and retried when
// the request allows). Bytes a server sent after a complete response are
// caught only if they arrived with it (conn.release checks the buffer).
func (c *conn) idleState() idleState { return idleOK }

func (c *conn) peek(fd uintptr) bool { return true }
