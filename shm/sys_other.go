//go:build !linux

package shm

import "os"

// shared is false off Linux: the writer runs on Linux only, and a file
// reached through a VM's file sharing (Docker Desktop) is not memory the
// two sides share, so a reader there would serve what it cannot verify.
const shared = false

func allocate(f *os.File, size int64) error { return f.Truncate(size) }

func lockExclusive(f *os.File) error { return ErrUnsupported }

type fileID struct{ dev, ino uint64 }

func statID(fi os.FileInfo) fileID { return fileID{} }
