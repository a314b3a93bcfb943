//go:build !linux || 386

package nbconn_test

import "net"

// rawPlatform: Wrap returns the connection unchanged here.
const rawPlatform = false

func isRaw(c net.Conn) bool { _, ok := c.(*net.TCPConn); return !ok }
