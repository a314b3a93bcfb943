package appcounters

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/zerohop/zerohop/shm/safefile"
)

// DefaultMaxFiles bounds the counters files a Collector reads per scan.
const DefaultMaxFiles = 256

// Refusal reasons a Collector counts, once per file.
const (
	RefusedUnsafe   = "unsafe"    // not a regular file (a symlink, a FIFO)
	RefusedTooLarge = "too_large" // over MaxFileSize: not read
	RefusedInvalid  = "invalid"   // bad magic, version, size or instance
	RefusedTooMany  = "too_many"  // over MaxFiles
	RefusedRead     = "read"      // unreadable, or never two equal reads
)

// Collector is the sidecar side: it reads the counters files in one
// directory and keeps totals that never go backwards.
type Collector struct {
	dir      string
	maxFiles int

	mu       sync.Mutex
	live     map[string]*tracked // by file name
	departed [Count]uint64       // folded in from processes gone
	gone     uint64              // processes folded in
	folded   map[uint64]bool     // instances folded, so a file that could not be removed is not folded twice
	bad      map[string]bool     // name+size of files refused, counted once
	refused  map[string]uint64   // by reason
}

type tracked struct {
	instance uint64
	last     [Count]uint64
}

// Snapshot is what a scan found.
type Snapshot struct {
	Totals   [Count]uint64     // departed plus every live process
	Live     int               // processes publishing now
	Departed uint64            // processes folded in since the collector started
	Refused  map[string]uint64 // files refused, by reason (a copy)
}

// NewCollector reads counters files in dir; maxFiles <= 0 means
// DefaultMaxFiles.
func NewCollector(dir string, maxFiles int) *Collector {
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	return &Collector{dir: dir, maxFiles: maxFiles, live: map[string]*tracked{},
		folded: map[uint64]bool{}, bad: map[string]bool{}, refused: map[string]uint64{}}
}

// Dir is the directory scanned.
func (c *Collector) Dir() string { return c.dir }

// Scan reads the directory once: new and live files update their
// process's counters (a counter that goes down is ignored), a file whose
// lock is free is folded into the departed total and removed, and a file
// that vanished is folded with the last counters read from it.
func (c *Collector) Scan() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	ents, _ := os.ReadDir(c.dir) // a missing directory: no app yet
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, FilePrefix) && strings.HasSuffix(n, FileSuffix) {
			names = append(names, n)
		}
	}
	// Files already known come first, so that planted files cannot push a
	// live process's file out of the bound.
	sort.Slice(names, func(i, j int) bool {
		ki, kj := c.live[names[i]] != nil, c.live[names[j]] != nil
		if ki != kj {
			return ki
		}
		return names[i] < names[j]
	})
	seen := make(map[string]bool, len(names))
	instances := map[uint64]bool{}
	for i, n := range names {
		if i >= c.maxFiles {
			c.refuse(n, "", RefusedTooMany)
			continue
		}
		seen[n] = true
		if inst, ok := c.scanFile(n); ok {
			instances[inst] = true
		}
	}
	for n, t := range c.live {
		if !seen[n] {
			c.fold(n, t)
		}
	}
	for inst := range c.folded {
		if !instances[inst] {
			delete(c.folded, inst) // its file is gone: no risk of folding it again
		}
	}
	s := Snapshot{Totals: c.departed, Live: len(c.live), Departed: c.gone, Refused: make(map[string]uint64, len(c.refused))}
	for _, t := range c.live {
		for i, v := range t.last {
			s.Totals[i] += v
		}
	}
	for k, v := range c.refused {
		s.Refused[k] = v
	}
	return s
}

// refuse counts a refused file once per name and size.
func (c *Collector) refuse(name, size, reason string) {
	if k := name + "\x00" + size; !c.bad[k] {
		if len(c.bad) > 4*c.maxFiles {
			clear(c.bad) // bounded; a file refused again is then counted again
		}
		c.bad[k] = true
		c.refused[reason]++
	}
}

// fold adds a process's last counters to the departed total.
func (c *Collector) fold(name string, t *tracked) {
	for i, v := range t.last {
		c.departed[i] += v
	}
	c.gone++
	c.folded[t.instance] = true
	delete(c.live, name)
}

// scanFile reads one file; it returns the file's instance when valid.
func (c *Collector) scanFile(name string) (uint64, bool) {
	path := filepath.Join(c.dir, name)
	// lstat first so that a planted symlink is counted once here, not in
	// safefile's process-wide refusals at every scan; safefile still
	// guards the open against a swap in between.
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		c.refuse(name, "", RefusedUnsafe)
		return 0, false
	}
	f, err := safefile.Open(path, os.O_RDONLY, 0)
	if errors.Is(err, safefile.ErrUnsafe) {
		c.refuse(name, "", RefusedUnsafe)
		return 0, false
	}
	if err != nil {
		return 0, false // removed meanwhile; a vanished live file is folded by Scan
	}
	defer f.Close() // also releases a lock tryLock took
	fi, err := f.Stat()
	if err != nil {
		return 0, false
	}
	size := fi.Size()
	sz := strconv.FormatInt(size, 10) // with the name, the once-per-file key
	if size > MaxFileSize {
		c.refuse(name, sz, RefusedTooLarge)
		return 0, false
	}
	b, ok := readStable(f, size)
	if !ok {
		c.refuse(name, sz, RefusedRead)
		return 0, false
	}
	h, cur, err := Parse(b)
	free, lerr := tryLock(f)
	if err != nil {
		c.refuse(name, sz, RefusedInvalid)
		if free && lerr == nil {
			os.Remove(path) // garbage nobody holds
		}
		return 0, false
	}
	if c.folded[h.Instance] {
		if free && lerr == nil {
			os.Remove(path)
		}
		return h.Instance, true
	}
	t := c.live[name]
	if t != nil && t.instance != h.Instance {
		c.fold(name, t) // another file under the same name
		t = nil
	}
	if t == nil {
		t = &tracked{instance: h.Instance}
		c.live[name] = t
	}
	for i, v := range cur {
		t.last[i] = max(t.last[i], v)
	}
	if free && lerr == nil {
		c.fold(name, t)
		os.Remove(path)
	}
	return h.Instance, true
}

// readStable reads the whole file until two reads in a row agree, so that
// a counter the app was storing meanwhile is never read torn.
func readStable(f *os.File, size int64) ([]byte, bool) {
	a, b := make([]byte, size), make([]byte, size)
	if !readAll(f, a) {
		return nil, false
	}
	for range 4 {
		if !readAll(f, b) {
			return nil, false
		}
		if bytes.Equal(a, b) {
			return a, true
		}
		a, b = b, a
	}
	return nil, false
}

func readAll(f *os.File, b []byte) bool {
	n, err := f.ReadAt(b, 0)
	return n == len(b) && (err == nil || errors.Is(err, io.EOF))
}
