//go:build !unix

package safefile

import (
	"errors"
	"os"
)

var errNotDir = errors.New("not a directory")

// openNoFollow checks the last component with Lstat before opening: a
// window remains where a link could be swapped in, which platforms without
// O_NOFOLLOW cannot close.
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, unsafeErr("%s is a %v", path, fi.Mode().Type())
	}
	return os.OpenFile(path, flag, perm)
}

func openDirNoFollow(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, errNotDir
	}
	return os.Open(path)
}

func isLoop(err error) bool { return false }
