//go:build !unix

package invalidate

import "os"

func tryLock(f *os.File) (bool, error) { return false, ErrUnsupported }

func unlock(f *os.File) error { return ErrUnsupported }

func fstatID(f *os.File) (FileID, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return FileID{}, 0, err
	}
	return FileID{}, fi.Size(), nil
}

func statID(path string) (FileID, int64, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return FileID{}, 0, err
	}
	return FileID{}, fi.Size(), nil
}
