package appcounters

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/edsrzf/mmap-go"
	"github.com/zerohop/zerohop/shm/safefile"
)

// ErrUnsupported: this system has no flock, so a sidecar could not tell
// a live publisher from a departed one; nothing is published.
var ErrUnsupported = errors.New("appcounters: not supported on this system")

// Publisher is the app side: one counters file, mapped read-write and
// locked for the life of the process.
type Publisher struct {
	mu   sync.Mutex
	f    *os.File
	mm   mmap.MMap
	path string
}

// NewPublisher creates this process's counters file in dir (which must
// exist: the sidecar creates it) for a client named client ("go"). The
// file is built under a temporary name, locked, then renamed into place,
// so the sidecar never sees an unlocked file of a live process.
func NewPublisher(dir, client string) (*Publisher, error) {
	var rb [8]byte
	rand.Read(rb[:])
	instance := binary.LittleEndian.Uint64(rb[:]) | 1
	pid := os.Getpid()
	name := fmt.Sprintf("%s%d-%016x%s", FilePrefix, pid, instance, FileSuffix)
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	f, err := safefile.Create(tmp, 0o644)
	if err != nil {
		return nil, fmt.Errorf("appcounters: %w", err)
	}
	p := &Publisher{f: f, path: path}
	fail := func(err error) (*Publisher, error) {
		if p.mm != nil {
			p.mm.Unmap()
		}
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("appcounters: %s: %w", tmp, err)
	}
	if err := lock(f); err != nil {
		return fail(err)
	}
	if err := f.Truncate(HeaderSize + 8*Count); err != nil {
		return fail(err)
	}
	if p.mm, err = mmap.Map(f, mmap.RDWR, 0); err != nil {
		return fail(err)
	}
	putHeader(p.mm, uint32(pid), instance, uint64(time.Now().UnixMilli()), client)
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return p, nil
}

// Path is the counters file.
func (p *Publisher) Path() string { return p.path }

// word is the mapped u64 at off (8-aligned: the mapping is page-aligned).
func (p *Publisher) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&p.mm[off])) }

// Publish copies c into the file, each counter with one atomic store, then
// the updated time. After Close it does nothing.
func (p *Publisher) Publish(c *[Count]uint64, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mm == nil {
		return
	}
	for i, v := range c {
		atomic.StoreUint64(p.word(HeaderSize+8*i), v)
	}
	atomic.StoreUint64(p.word(offUpdated), uint64(nowMs))
}

// Close unmaps the file and releases the lock, leaving the last published
// counters for the sidecar to fold into its departed total (it then
// removes the file).
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mm == nil {
		return nil
	}
	err := p.mm.Unmap()
	p.mm = nil
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}
