//go:build !linux

package origdst

import (
	"net"
	"net/netip"
)

// Of returns ErrUnsupported: only Linux records original destinations.
func Of(c net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, ErrUnsupported }
