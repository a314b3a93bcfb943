package shm_test

// Child-process roles and shared helpers for the multi-process benchmarks in
// bench_test.go. Every child reads commands from its stdin and exits when
// stdin reaches EOF, so a child never outlives the benchmark process even if
// that process is killed; every loop in a child is bounded by a count or a
// deadline as well.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

const (
	roleBenchWriter  = "bench-writer"  // fills a file, then idles or rewrites at a paced rate
	roleBenchReader  = "bench-reader"  // warm, wait for "go", Get for a fixed duration
	roleBenchHitLoop = "bench-hitloop" // fixed number of Gets between two marker writes (syscall test)

	envBenchDir   = "ZH_BENCH_DIR"
	envBenchSpec  = "ZH_BENCH_SPEC"  // body,file,region,expected
	envBenchKeys  = "ZH_BENCH_KEYS"  // number of keys present (0..n-1)
	envBenchCount = "ZH_BENCH_COUNT" // hit loop: number of Gets

	childMaxLife = 30 * time.Minute // hard bound on any child's life
)

func init() {
	registerRole(roleBenchWriter, benchWriterRole)
	registerRole(roleBenchReader, benchReaderRole)
	registerRole(roleBenchHitLoop, benchHitLoopRole)
}

// benchSpec is the layout of a benchmark cache file and its entries.
type benchSpec struct {
	Body     int   // body bytes per entry
	File     int64 // cache file size
	Region   int64 // region size
	Expected int64 // Options.ExpectedEntries (index sizing)
}

// benchSpecFor is a 1 GiB file with 4 MiB regions whose index is sized for as
// many bodies as the file holds (about 1M for 1 KiB bodies).
func benchSpecFor(body int) benchSpec {
	return benchSpec{Body: body, File: 1 << 30, Region: 4 << 20, Expected: (1 << 30) / int64(body)}
}

func (s benchSpec) env() string {
	return fmt.Sprintf("%s=%d,%d,%d,%d", envBenchSpec, s.Body, s.File, s.Region, s.Expected)
}

func specFromEnv() (benchSpec, error) {
	var s benchSpec
	f := strings.Split(os.Getenv(envBenchSpec), ",")
	if len(f) != 4 {
		return s, fmt.Errorf("bad %s %q", envBenchSpec, os.Getenv(envBenchSpec))
	}
	var v [4]int64
	for i := range f {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return s, err
		}
		v[i] = n
	}
	return benchSpec{Body: int(v[0]), File: v[1], Region: v[2], Expected: v[3]}, nil
}

func (s benchSpec) options() *shm.Options {
	return &shm.Options{Size: s.File, RegionSize: s.Region, ExpectedEntries: s.Expected, Seed: 0x5eed, NoSalvage: true}
}

// regions is the arena's region count, computed as docs/format.md and
// computeLayout do (two-choice buckets of 5 slots at 80% load).
func (s benchSpec) regions() int64 {
	buckets := s.Expected * 10 / (shm.SlotsPerBucket * 8)
	if buckets < 2 {
		buckets = 2
	}
	log2 := bits.Len64(uint64(buckets - 1))
	return (s.File - shm.HeaderSize - int64(shm.BucketSize)<<log2) / s.Region
}

func benchSizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// benchKey builds the fixed-length key of object i in place: no allocation.
type benchKey struct {
	buf    []byte
	digits int
}

const benchKeyDigits = 9

func newBenchKey() *benchKey {
	k := shm.AppendKey(nil, "GET", "https", "bench.zerohop.test", "/objects/000000000?rev=1")
	return &benchKey{buf: k, digits: bytes.Index(k, []byte("000000000"))}
}

// set writes i's digits into the key and returns it (aliasing k's buffer).
func (k *benchKey) set(i uint64) []byte {
	d := k.buf[k.digits : k.digits+benchKeyDigits]
	for j := benchKeyDigits - 1; j >= 0; j-- {
		d[j] = byte('0' + i%10)
		i /= 10
	}
	return k.buf
}

// benchItem is a 200 response with two headers, an ETag and a body of
// s.Body bytes, fresh for two days. Key and the body's first 8 bytes are
// rewritten per Put.
func benchItem(s benchSpec) *shm.Item {
	now := time.Now()
	body := make([]byte, s.Body)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return &shm.Item{
		Status: 200,
		Header: http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Cache-Control": {"public, max-age=172800"},
		},
		Body:     body,
		StoredMs: now.UnixMilli(), ExpiresMs: now.Add(48 * time.Hour).UnixMilli(),
		ETag: `"0123456789abcdef"`,
	}
}

// benchRNG is xorshift64*: a few ns, no allocation.
type benchRNG uint64

func (r *benchRNG) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = benchRNG(x)
	return x * 2685821657736338717
}

// intn is uniform in [0, n) for n < 2^32 (multiply-shift, no division).
func (r *benchRNG) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// benchStdinLines delivers the lines of stdin; the channel closes at EOF, which
// is how a child learns that its parent is done (or gone).
func benchStdinLines() <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func benchChildFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "bench child: "+format+"\n", args...)
	return 1
}

// benchWriterRole fills the file with n entries (as many as the first lap
// holds, less three regions of slack), prints "ready n entryLen entries
// fillMs", then serves commands until stdin closes:
//
//	write RATE  rewrite the keys in insertion (FIFO) order at RATE puts/s
//	stop        stop rewriting; prints "stopped puts elapsedNs"
//
// Rewriting in FIFO order with entries of the same size means the region the
// writer reclaims only ever holds superseded versions: every key stays live,
// so a reader's hit rate stays ~100% while the writer churns the arena.
func benchWriterRole() int {
	spec, err := specFromEnv()
	if err != nil {
		return benchChildFail("%v", err)
	}
	w, err := shm.OpenWriter(os.Getenv(envBenchDir), spec.options())
	if err != nil {
		return benchChildFail("open writer: %v", err)
	}
	defer w.Close()
	start := time.Now()
	key := newBenchKey()
	it := benchItem(spec)
	put := func(i int, version uint64) error {
		it.Key = key.set(uint64(i))
		binary.LittleEndian.PutUint64(it.Body, version<<32|uint64(i))
		return w.Put(it)
	}
	if err := put(0, 0); err != nil {
		return benchChildFail("put: %v", err)
	}
	entryLen := int64(w.Stats().BytesWritten)
	n := int(spec.Region/entryLen) * int(spec.regions()-3)
	for i := 1; i < n; i++ {
		if err := put(i, 0); err != nil {
			return benchChildFail("put %d: %v", i, err)
		}
	}
	// Entries can be a little under n: a key whose two buckets are full
	// evicts the older entry of the pair (the reader samples only present
	// keys). The first lap must not have reclaimed anything.
	st := w.Stats()
	if st.Tail != 0 || st.Entries < uint64(n)*95/100 {
		return benchChildFail("fill: %d puts left %d entries, tail %d", n, st.Entries, st.Tail)
	}
	fmt.Printf("ready %d %d %d %d\n", n, entryLen, st.Entries, time.Since(start).Milliseconds())

	cmds := benchStdinLines()
	life := time.NewTimer(childMaxLife)
	defer life.Stop()
	var (
		tick    *time.Ticker
		tickC   <-chan time.Time
		rate    float64
		wStart  time.Time
		puts    int
		next    int
		version uint64 = 1
	)
	stopWriting := func() {
		if tick != nil {
			tick.Stop()
			tick, tickC = nil, nil
			fmt.Printf("stopped %d %d\n", puts, time.Since(wStart).Nanoseconds())
		}
	}
	for {
		select {
		case c, ok := <-cmds:
			if !ok {
				stopWriting()
				return 0
			}
			f := strings.Fields(c)
			switch {
			case len(f) == 2 && f[0] == "write":
				if rate, err = strconv.ParseFloat(f[1], 64); err != nil || rate <= 0 {
					return benchChildFail("bad command %q", c)
				}
				stopWriting()
				puts, wStart = 0, time.Now()
				tick = time.NewTicker(time.Millisecond)
				tickC = tick.C
				fmt.Println("writing")
			case len(f) == 1 && f[0] == "stop":
				stopWriting()
			default:
				return benchChildFail("bad command %q", c)
			}
		case <-tickC:
			// Catch up to the paced total; a bounded batch per tick keeps
			// one late tick from turning into a burst.
			due := int(rate * time.Since(wStart).Seconds())
			for k := 0; puts < due && k < 1000; k++ {
				if err := put(next, version); err != nil {
					return benchChildFail("rewrite %d: %v", next, err)
				}
				puts++
				if next++; next == n {
					next, version = 0, version+1
				}
			}
		case <-life.C:
			return benchChildFail("lived %v, exiting", childMaxLife)
		}
	}
}

// benchReaderEnv is the environment every reader child reads.
func benchReaderEnv() (r *shm.Reader, spec benchSpec, n int, err error) {
	if spec, err = specFromEnv(); err != nil {
		return nil, spec, 0, err
	}
	if n, err = strconv.Atoi(os.Getenv(envBenchKeys)); err != nil || n <= 0 {
		return nil, spec, 0, fmt.Errorf("bad %s: %v", envBenchKeys, err)
	}
	r, err = shm.Open(os.Getenv(envBenchDir), nil)
	return r, spec, n, err
}

// benchWarm gets every key 0..n-1 once, in insertion order: it maps the
// reader's page tables (first touches are minor faults) and pulls what fits
// into the caches. It returns the keys that hit (the fill can evict a few
// from full bucket pairs) and the mean cost of a cold Get. A pass during
// which the reader saw the writer's heartbeat as stale (a starved writer
// process on a busy machine) is repeated, up to three passes.
func benchWarm(r *shm.Reader, key *benchKey, n int, buf []byte) (present []uint32, meanNs float64, out []byte) {
	present = make([]uint32, 0, n)
	for pass := 0; pass < 3; pass++ {
		present = present[:0]
		stale0 := r.Stats().WriterStale
		now := time.Now().UnixMilli()
		start := time.Now()
		for i := 0; i < n; i++ {
			if i&1023 == 0 {
				now = time.Now().UnixMilli()
			}
			var ok bool
			_, buf, ok = r.Get(buf, key.set(uint64(i)), now)
			if ok {
				present = append(present, uint32(i))
			}
		}
		meanNs = float64(time.Since(start).Nanoseconds()) / float64(n)
		if r.Stats().WriterStale == stale0 {
			break
		}
	}
	return present, meanNs, buf
}

// benchReaderRole warms up, prints "ready", then for each "go DURATION_MS"
// does Gets of uniformly random present keys for that long and prints
// "done ops hits elapsedNs cpuNs stale" (cpuNs: the process's user+system
// time over the run, from getrusage outside the loop; stale: lookups refused
// because the writer's heartbeat looked stale). It exits when stdin closes.
func benchReaderRole() int {
	r, spec, n, err := benchReaderEnv()
	if err != nil {
		return benchChildFail("%v", err)
	}
	defer r.Close()
	key := newBenchKey()
	buf := make([]byte, spec.Body+64<<10)
	present, _, buf := benchWarm(r, key, n, buf)
	if len(present) < n*95/100 {
		return benchChildFail("warm-up: %d of %d keys present; reader stats %+v", len(present), n, r.Stats())
	}
	fmt.Println("ready")
	cmds := benchStdinLines()
	rng := benchRNG(uint64(os.Getpid())*0x9e3779b97f4a7c15 | 1)
	life := time.NewTimer(childMaxLife)
	defer life.Stop()
	for runs := 0; runs < 1000; runs++ {
		var dur time.Duration
		select {
		case c, ok := <-cmds:
			if !ok {
				return 0
			}
			f := strings.Fields(c)
			if len(f) != 2 || f[0] != "go" {
				return benchChildFail("want go, got %q", c)
			}
			ms, err := strconv.Atoi(f[1])
			if err != nil || ms <= 0 || time.Duration(ms)*time.Millisecond > 10*time.Minute {
				return benchChildFail("bad duration %q", c)
			}
			dur = time.Duration(ms) * time.Millisecond
		case <-life.C:
			return benchChildFail("lived %v, exiting", childMaxLife)
		}
		var ops, hits int
		stale0 := r.Stats().WriterStale
		cpu0 := benchCPUTime()
		start := time.Now()
		for time.Since(start) < dur { // the clock is read every 256 Gets
			now := time.Now().UnixMilli()
			for j := 0; j < 256; j++ {
				e, out, ok := r.Get(buf, key.set(uint64(present[rng.intn(len(present))])), now)
				buf = out
				if ok && len(e.Body) == spec.Body {
					hits++
				}
			}
			ops += 256
		}
		elapsed := time.Since(start)
		fmt.Printf("done %d %d %d %d %d\n", ops, hits, elapsed.Nanoseconds(), benchCPUTime()-cpu0, r.Stats().WriterStale-stale0)
	}
	return 0
}

// benchCPUTime is this process's user+system CPU time in ns (one getrusage call).
func benchCPUTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchHitLoopRole warms up, then writes the marker ZH-HITLOOP-BEGIN, does
// ZH_BENCH_COUNT Gets of random present keys with a fixed clock, and writes
// ZH-HITLOOP-END. Both markers are single write(2) calls on the thread
// running the loop, so a tracer can count the syscalls between them.
func benchHitLoopRole() int {
	r, spec, n, err := benchReaderEnv()
	if err != nil {
		return benchChildFail("%v", err)
	}
	defer r.Close()
	count, err := strconv.Atoi(os.Getenv(envBenchCount))
	if err != nil || count <= 0 {
		return benchChildFail("bad %s", envBenchCount)
	}
	key := newBenchKey()
	buf := make([]byte, spec.Body+64<<10)
	present, _, buf := benchWarm(r, key, n, buf)
	if len(present) == 0 {
		return benchChildFail("no key present")
	}
	rng := benchRNG(0x2545F4914F6CDD1D)
	now := time.Now().UnixMilli()
	begin := []byte("ZH-HITLOOP-BEGIN\n")
	// The END line is formatted after the loop into this buffer, without
	// allocating: an allocation between the loop and the END write can be
	// the memory profiler's first sample, whose mmap of its bucket table
	// (1.4 MB) would then count as a syscall of the hit path.
	end := make([]byte, 0, 64)
	hits := 0
	if _, err := os.Stdout.Write(begin); err != nil {
		return benchChildFail("write: %v", err)
	}
	for i := 0; i < count; i++ {
		e, out, ok := r.Get(buf, key.set(uint64(present[rng.intn(len(present))])), now)
		buf = out
		if ok && len(e.Body) == spec.Body {
			hits++
		}
	}
	end = append(end, "ZH-HITLOOP-END "...)
	end = strconv.AppendInt(end, int64(count), 10)
	end = append(end, ' ')
	end = strconv.AppendInt(end, int64(hits), 10)
	end = append(end, '\n')
	if _, err := os.Stdout.Write(end); err != nil {
		return benchChildFail("write: %v", err)
	}
	return 0
}

// benchChild is a running role process.
type benchChild struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string
	stopOnce sync.Once
}

// startBenchChild runs cmd (from roleCommand) and registers its stop with owner.
func startBenchChild(tb, owner testing.TB, cmd *exec.Cmd) *benchChild {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &benchChild{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	owner.Cleanup(c.stop)
	return c
}

// expect waits for a line starting with word and returns its fields.
func (c *benchChild) expect(tb testing.TB, word string, timeout time.Duration) []string {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				tb.Fatalf("benchChild exited while waiting for %q", word)
			}
			if f := strings.Fields(l); len(f) > 0 && f[0] == word {
				return f
			}
		case <-deadline.C:
			tb.Fatalf("no %q from benchChild within %v", word, timeout)
		}
	}
}

func (c *benchChild) send(tb testing.TB, line string) {
	tb.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		tb.Fatalf("send %q: %v", line, err)
	}
}

// stop closes the child's stdin (its signal to exit), waits up to 10s for
// it to go, kills it otherwise, and reaps it. Idempotent.
func (c *benchChild) stop() {
	c.stopOnce.Do(func() {
		c.stdin.Close()
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
	drain:
		for {
			select {
			case _, ok := <-c.lines:
				if !ok {
					break drain
				}
			case <-deadline.C:
				c.cmd.Process.Kill()
				break drain
			}
		}
		c.cmd.Wait()
	})
}

func benchAtoi(tb testing.TB, f []string, i int) int {
	tb.Helper()
	if i >= len(f) {
		tb.Fatalf("short line %q", f)
	}
	n, err := strconv.Atoi(f[i])
	if err != nil {
		tb.Fatalf("line %q: %v", f, err)
	}
	return n
}
