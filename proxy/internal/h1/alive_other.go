//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package h1

// alive cannot look at the socket on this platform; a connection the
// server closed while idle is found out by the exchange (and retried when
// the request allows).
func (c *conn) alive() bool { return true }

func (c *conn) peek(fd uintptr) bool { return true }
