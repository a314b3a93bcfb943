//go:build !linux

package bench

import "syscall"

// childAttr is nil off Linux: there is no parent-death signal, and Stop
// (or the deferred cleanup) ends the peers.
func childAttr() *syscall.SysProcAttr { return nil }
