// Package safefile opens, creates and replaces files in directories that
// another, less trusted party can write: the shared cache volume, where the
// app may plant a symbolic link (or a FIFO) where the sidecar expects its
// own file. Every function refuses to follow a symlink at the last path
// component, requires a regular file, and changes modes through the open
// descriptor, never by path. Directories above the last component are
// trusted: they are the operator's configuration.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// ErrUnsafe means the path's last component is not a regular file (a
// symbolic link, a FIFO, a device, a directory where a file was expected):
// it was refused rather than followed. Errors wrap it with the path.
var ErrUnsafe = errors.New("safefile: refusing a non-regular file")

// refused counts ErrUnsafe refusals in this process, for a metric.
var refused atomic.Uint64

// Refused returns how many times this process refused a path with
// ErrUnsafe (the sidecar exports it as
// zerohop_unsafe_file_refusals_total).
func Refused() uint64 { return refused.Load() }

func unsafeErr(format string, args ...any) error {
	refused.Add(1)
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafe}, args...)...)
}

// Open opens path with flag (os.O_* flags, O_CREATE with perm) without
// following a symlink at its last component and fails with ErrUnsafe unless
// it is a regular file. It never blocks on a FIFO.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := openNoFollow(path, flag, perm)
	if err != nil {
		if isLoop(err) {
			return nil, unsafeErr("%s is a symbolic link", path)
		}
		return nil, err
	}
	if err := regular(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// regular fails with ErrUnsafe unless the open file f is a regular file.
func regular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return unsafeErr("%s is a %v", f.Name(), fi.Mode().Type())
	}
	return nil
}

// Create makes a new file at path, failing if anything (a symlink
// included) is there; perm is applied with fchmod, past the umask.
func Create(path string, perm os.FileMode) (*os.File, error) {
	f, err := Open(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// ReadFile reads the regular file at path; a missing file wraps
// os.ErrNotExist.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteAtomic replaces path with a regular file holding b, through
// path+".tmp" and a rename, so that a crash leaves the old content or the
// new, never a mix. Whatever is at the temporary name is removed first
// (unlink does not follow a symlink), and whatever was at path (a symlink
// included) is replaced, never written through.
func WriteAtomic(path string, b []byte, perm os.FileMode, sync bool) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := Create(tmp, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ChmodDir sets the mode of the directory at path through a descriptor
// opened without following a symlink: a link planted in place of the
// directory is refused (ErrUnsafe), its target left alone.
func ChmodDir(path string, perm os.FileMode) error {
	d, err := openDirNoFollow(path)
	if err != nil {
		if isLoop(err) || errors.Is(err, errNotDir) {
			return unsafeErr("%s is not a directory (a symbolic link?)", path)
		}
		return err
	}
	defer d.Close()
	return d.Chmod(perm)
}

// Chmod sets the mode of the regular file at path through a descriptor,
// refusing (ErrUnsafe) a symlink or anything else that is not a regular
// file.
func Chmod(path string, perm os.FileMode) error {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(perm)
}
