package origdst

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and
// IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h): both 80.
const soOriginalDst = 80

// Of returns the original destination of c, an accepted TCP connection.
func Of(c net.Conn) (netip.AddrPort, error) {
	rc, err := rawConn(c)
	if err != nil {
		return netip.AddrPort{}, err
	}
	v6 := false
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok && la.IP.To4() == nil {
		v6 = true
	}
	var (
		ap   netip.AddrPort
		serr error
	)
	err = rc.Control(func(fd uintptr) { ap, serr = get(fd, v6) })
	if err != nil {
		return netip.AddrPort{}, err
	}
	if serr == nil && ap == addrPort(c.LocalAddr()) {
		// Conntrack keeps an original destination for every connection;
		// one that is the listener's own address was not redirected.
		return netip.AddrPort{}, ErrNotRedirected
	}
	return ap, serr
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// get reads the sockaddr the kernel recorded: sockaddr_in (16 bytes) at
// SOL_IP, sockaddr_in6 (28 bytes) at SOL_IPV6.
func get(fd uintptr, v6 bool) (netip.AddrPort, error) {
	var buf [28]byte
	size := uint32(len(buf))
	level := unix.SOL_IP
	if v6 {
		level = unix.SOL_IPV6
	}
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if e != 0 {
		if e == syscall.ENOENT {
			return netip.AddrPort{}, ErrNotRedirected
		}
		return netip.AddrPort{}, fmt.Errorf("origdst: getsockopt: %w", e)
	}
	port := binary.BigEndian.Uint16(buf[2:4])
	switch family := binary.NativeEndian.Uint16(buf[0:2]); {
	case family == unix.AF_INET && size >= 8:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), port), nil
	case family == unix.AF_INET6 && size >= 24:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(buf[8:24])).Unmap(), port), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("origdst: unexpected address family %d", family)
	}
}
