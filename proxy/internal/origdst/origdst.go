// Package origdst recovers the destination a connection was addressed to
// before an iptables REDIRECT (or DNAT) rule sent it to this process: the
// address the app dialled, which a transparent listener forwards to.
package origdst

import (
	"errors"
	"net"
	"syscall"
)

var (
	// ErrUnsupported: this system has no SO_ORIGINAL_DST (not Linux).
	ErrUnsupported = errors.New("origdst: original destination not available on this system")
	// ErrNotRedirected: the connection reached the listener directly, not
	// through a NAT rule (the kernel keeps no original destination).
	ErrNotRedirected = errors.New("origdst: connection was not redirected")
)

// rawConn finds the socket under c's wrappers (each exposing NetConn, as
// tls.Conn and the proxy's own wrappers do).
func rawConn(c net.Conn) (syscall.RawConn, error) {
	for range 8 {
		if sc, ok := c.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return nil, errors.New("origdst: not a socket")
}
