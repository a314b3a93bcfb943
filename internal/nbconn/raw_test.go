//go:build linux && !386

package nbconn_test

import (
	"net"

	"github.com/zerohop/zerohop/internal/nbconn"
)

// rawPlatform: Wrap returns a *nbconn.Conn here.
const rawPlatform = true

func isRaw(c net.Conn) bool { _, ok := c.(*nbconn.Conn); return ok }
