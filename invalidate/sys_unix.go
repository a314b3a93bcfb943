//go:build unix

package invalidate

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes a non-blocking exclusive flock on f. busy reports that
// another open file description holds it. flock locks belong to the open
// file description, are dropped by the kernel when the holder dies and work
// across containers that share the inode; classic POSIX fcntl locks would be
// lost when any fd of the file is closed.
func tryLock(f *os.File) (busy bool, err error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return true, nil
		}
		return false, fmt.Errorf("invalidate: flock %s: %w", f.Name(), err)
	}
}

// unlock releases the flock on f.
func unlock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_UN)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}

// fstatID returns the identity and size of the open file f.
func fstatID(f *os.File) (FileID, int64, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(int(f.Fd()), &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return FileID{}, 0, err
		}
		return FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, st.Size, nil
	}
}

// statID returns the identity and size of the file at path, not following
// a symlink at its last component: a link planted in place of the log is a
// different file, which the opener then refuses. A missing file wraps
// os.ErrNotExist.
func statID(path string) (FileID, int64, error) {
	var st unix.Stat_t
	for {
		err := unix.Lstat(path, &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return FileID{}, 0, &os.PathError{Op: "lstat", Path: path, Err: err}
		}
		return FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, st.Size, nil
	}
}
