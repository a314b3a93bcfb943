//go:build unix

package appcounters

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lock takes f's exclusive flock: flock locks belong to the open file
// description and are released by the kernel when the process dies, in
// whatever PID namespace.
func lock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}

// tryLock reports whether f's lock was free (its publisher is gone); the
// lock is then held until f is closed.
func tryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
