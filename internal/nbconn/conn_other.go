//go:build !linux || 386

package nbconn

import "net"

// Wrap returns c: raw socket calls are used on Linux only, and not on
// linux/386, where the socket calls go through socketcall(2) and the
// saving is not worth a second implementation.
func Wrap(c net.Conn) net.Conn { return c }
