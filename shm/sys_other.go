//go:build !linux

package shm

import "os"

func allocate(f *os.File, size int64) error { return f.Truncate(size) }

func lockExclusive(f *os.File) error { return ErrUnsupported }

type fileID struct{ dev, ino uint64 }

func statID(fi os.FileInfo) fileID { return fileID{} }
