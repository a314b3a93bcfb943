//go:build linux

package shm

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// shared is whether a reader's mapping sees the writer's stores as they
// happen: on Linux the containers of a pod share the host's page cache.
const shared = true

// allocate reserves size bytes for f so that a full tmpfs fails here, at
// start, rather than as SIGBUS on the first touch of a sparse page.
func allocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EFBIG) {
			return fmt.Errorf("%w: fallocate %d bytes: %v", ErrNoSpace, size, err)
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			// Some filesystems cannot preallocate; a sized file is the best we can do.
			return f.Truncate(size)
		}
		return fmt.Errorf("shm: fallocate: %w", err)
	}
}

// lockExclusive takes a non-blocking exclusive flock on f. flock locks belong
// to the open file description, so they survive other fds of the same file
// being closed (unlike classic POSIX fcntl locks) and are released by the
// kernel when the process dies; they work across containers sharing a volume.
func lockExclusive(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return ErrLocked
		}
		if err != nil {
			return fmt.Errorf("shm: flock: %w", err)
		}
		return nil
	}
}

// fileID identifies the inode behind a path, to notice a replaced file.
type fileID struct{ dev, ino uint64 }

func statID(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}
