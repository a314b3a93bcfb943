//go:build unix

package safefile

import (
	"errors"
	"os"
	"syscall"
)

var errNotDir = syscall.ENOTDIR

// openNoFollow opens path with O_NOFOLLOW and O_NONBLOCK: a symlink at the
// last component fails with ELOOP, and a FIFO opens at once (then fails the
// regular-file check) instead of blocking until a peer opens it. For a
// regular file O_NONBLOCK has no effect.
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
}

func openDirNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
}

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }
