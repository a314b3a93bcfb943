package shm_test

// Benchmarks for the targets of the shared-memory cache:
//
//	From a process other than the writer, a hit of a 1 KiB body in a 1 GiB
//	file holding at least 500k entries: p50 < 500 ns, p99 < 5 µs, 0 allocs per
//	hit with a caller buffer, no syscalls on the hit path; the same while the
//	writer inserts 20k entries/s; two reader processes scale at least 1.7x.
//	Also 16 KiB and 256 KiB bodies. A writer insert of 1 KiB: p50 < 2 µs.
//
// The writer of the reader benchmarks is a child process (roles in
// bench_roles_test.go); the benchmark process only reads. Latencies are
// per-operation timings with the monotonic clock (time.Since on a monotonic
// base is one vDSO clock read, no syscall with the TSC clocksource), kept in
// an HDR histogram; "timer-ns" is the median cost of an empty timed interval,
// included in every percentile. ns/op includes the timing and recording.
//
// Fixtures live for one run of a top-level benchmark (all rounds of its
// sub-benchmarks share them) and are torn down by its Cleanup: with -count=N
// each file is filled N times (1-6 s per 1 GiB file here).
//
//	cd shm && go test -run '^$' -bench . -benchmem .

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cespare/xxhash/v2"
	"github.com/zerohop/zerohop/shm"
)

var benchClockBase = time.Now()

// benchMono is monotonic nanoseconds: one runtime nanotime (vDSO) read.
func benchMono() int64 { return int64(time.Since(benchClockBase)) }

const benchHistMax = int64(60 * time.Second)

type benchLatency struct{ h *hdrhistogram.Histogram }

func newBenchLatency() benchLatency { return benchLatency{hdrhistogram.New(1, benchHistMax, 3)} }

// record keeps d in range so RecordValue never builds an error.
func (l benchLatency) record(d int64) {
	if d < 1 {
		d = 1
	} else if d > benchHistMax {
		d = benchHistMax
	}
	l.h.RecordValue(d)
}

func (l benchLatency) report(b *testing.B) {
	b.ReportMetric(float64(l.h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(90)), "p90-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99.9)), "p99.9-ns")
	b.ReportMetric(float64(l.h.Max()), "max-ns")
	b.ReportMetric(l.h.Mean(), "mean-ns")
}

// benchTimerOverhead is the median of an empty timed interval.
func benchTimerOverhead() int64 {
	l := newBenchLatency()
	for i := 0; i < 200000; i++ {
		t0 := benchMono()
		t1 := benchMono()
		l.record(t1 - t0)
	}
	return l.h.ValueAtQuantile(50)
}

// benchDir is a fresh directory on tmpfs (/dev/shm) when there is one.
// ZH_BENCH_ROOT overrides the parent directory (a tmpfs mounted with
// huge=within_size, say, to try huge pages).
func benchDir(tb, owner testing.TB) string {
	tb.Helper()
	root := "/dev/shm"
	if r := os.Getenv("ZH_BENCH_ROOT"); r != "" {
		root = r
	}
	if fi, err := os.Stat(root); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp(root, "zerohop-bench-"); err == nil {
			owner.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return owner.TempDir()
}

// benchFile is a cache file filled by a writer child that keeps it live
// (heartbeating) and can rewrite it on command.
type benchFile struct {
	spec     benchSpec
	dir      string
	w        *benchChild
	n        int // keys 0..n-1 were put (a few may have been evicted)
	entryLen int
}

// newBenchFile starts the writer child and waits for the file to fill.
// Its cleanup (stop the child, remove the directory) belongs to owner.
func newBenchFile(tb, owner testing.TB, spec benchSpec) *benchFile {
	tb.Helper()
	dir := benchDir(tb, owner)
	cmd := roleCommand(roleBenchWriter, envBenchDir+"="+dir, spec.env())
	w := startBenchChild(tb, owner, cmd)
	f := w.expect(tb, "ready", 5*time.Minute)
	fx := &benchFile{spec: spec, dir: dir, w: w, n: benchAtoi(tb, f, 1), entryLen: benchAtoi(tb, f, 2)}
	tb.Logf("%s fixture: %d puts of %d-byte entries (%d live in the index) in a %d MiB file, filled in %d ms",
		benchSizeName(spec.Body), fx.n, fx.entryLen, benchAtoi(tb, f, 3), spec.File>>20, benchAtoi(tb, f, 4))
	return fx
}

func (fx *benchFile) env() []string {
	return []string{envBenchDir + "=" + fx.dir, fx.spec.env(), fmt.Sprintf("%s=%d", envBenchKeys, fx.n)}
}

// close stops the writer child and removes the file now (the owner's
// cleanup would do it later), so fixtures do not pile up on tmpfs.
func (fx *benchFile) close() {
	fx.w.stop()
	os.RemoveAll(fx.dir)
}

// benchReaderFixture adds an in-process reader, warmed up.
type benchReaderFixture struct {
	*benchFile
	r       *shm.Reader
	buf     []byte
	present []uint32 // keys that hit at warm-up
}

func newBenchReaderFixture(tb, owner testing.TB, spec benchSpec) *benchReaderFixture {
	tb.Helper()
	fx := newBenchFile(tb, owner, spec)
	r, err := shm.Open(fx.dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(func() { r.Close() })
	buf := make([]byte, spec.Body+64<<10)
	present, cold, buf := benchWarm(r, newBenchKey(), fx.n, buf)
	if len(present) < fx.n*95/100 {
		tb.Fatalf("warm-up: %d of %d keys present; stats %+v", len(present), fx.n, r.Stats())
	}
	tb.Logf("%s warm-up: %d of %d keys present (rest evicted from full bucket pairs at fill); cold Get (first touch, page faults) %.0f ns mean",
		benchSizeName(spec.Body), len(present), fx.n, cold)
	return &benchReaderFixture{benchFile: fx, r: r, buf: buf, present: present}
}

func (fx *benchReaderFixture) close() {
	fx.r.Close()
	fx.benchFile.close()
}

// benchRunGets times b.N Gets, one histogram sample each. Keys are uniformly
// random: present (0..n-1) for hits, absent (n..) for misses. The key is
// built and the clock for freshness read outside the timed interval.
func benchRunGets(b *testing.B, fx *benchReaderFixture, present []uint32, wantHit bool) {
	r, n, body := fx.r, fx.n, fx.spec.Body
	key := newBenchKey()
	buf := fx.buf
	lat := newBenchLatency()
	timer := benchTimerOverhead()
	rng := benchRNG(0x9E3779B97F4A7C15)
	hits := 0
	now := time.Now().UnixMilli()
	runtime.GC()
	b.ReportAllocs()
	b.SetBytes(int64(body))
	cpu0, wall0 := benchCPUTime(), time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i&1023 == 0 {
			now = time.Now().UnixMilli()
		}
		var k int
		if wantHit {
			k = int(present[rng.intn(len(present))])
		} else {
			k = n + rng.intn(n)
		}
		kb := key.set(uint64(k))
		t0 := benchMono()
		e, out, ok := r.Get(buf, kb, now)
		t1 := benchMono()
		buf = out
		if ok && len(e.Body) == body {
			hits++
		}
		lat.record(t1 - t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(benchCPUTime()-cpu0)/float64(time.Since(wall0).Nanoseconds()), "cpu-util")
	fx.buf = buf
	lat.report(b)
	b.ReportMetric(float64(timer), "timer-ns")
	if wantHit {
		b.ReportMetric(100*float64(hits)/float64(b.N), "hit-%")
		if (b.N-hits)*100 > b.N {
			b.Fatalf("hit rate %d/%d below 99%%; reader stats %+v", hits, b.N, r.Stats())
		}
	} else if hits != 0 {
		b.Fatalf("%d hits for absent keys", hits)
	}
}

// BenchmarkReaderHit: Get of a random present key, writer idle in another
// process. 1 GiB file per body size; at least 500k entries for 1 KiB.
// 1KiB-hot1k draws from 1024 keys only (about 1.3 MiB of entries, all in
// cache): the same code path without the DRAM and TLB misses of a 1 GiB
// working set, to tell software cost from memory latency.
func BenchmarkReaderHit(b *testing.B) {
	cases := []struct {
		name string
		body int
		hot  int // draw from this many keys (0: all)
	}{
		{"1KiB", 1 << 10, 0},
		{"1KiB-hot1k", 1 << 10, 1024},
		{"16KiB", 16 << 10, 0},
		{"256KiB", 256 << 10, 0},
	}
	var fx *benchReaderFixture
	for i, c := range cases {
		b.Run(c.name, func(sb *testing.B) {
			if fx == nil {
				fx = newBenchReaderFixture(sb, b, benchSpecFor(c.body))
				if c.body == 1<<10 && fx.n < 500000 {
					sb.Fatalf("only %d entries; the target needs at least 500k", fx.n)
				}
			}
			keys := fx.present
			if c.hot > 0 && c.hot < len(keys) {
				keys = keys[:c.hot]
			}
			benchRunGets(sb, fx, keys, true)
		})
		// One 1 GiB file at a time: close it when the next case needs another.
		if fx != nil && (i+1 == len(cases) || cases[i+1].body != c.body) {
			fx.close()
			fx = nil
		}
	}
}

// BenchmarkReaderHitWhileWriting: as ReaderHit, while the writer process
// rewrites entries of the same size at 20k puts/s (oldest first, so the
// horizon only reclaims superseded versions and the hit rate stays ~100%).
func BenchmarkReaderHitWhileWriting(b *testing.B) {
	const rate = 20000
	var fx *benchReaderFixture
	b.Run("1KiB", func(sb *testing.B) {
		if fx == nil {
			fx = newBenchReaderFixture(sb, b, benchSpecFor(1<<10))
			fx.w.send(sb, fmt.Sprintf("write %d", rate))
			fx.w.expect(sb, "writing", 10*time.Second)
			time.Sleep(250 * time.Millisecond)
		}
		ins0, t0 := fx.r.WriterStats().Inserts, time.Now()
		benchRunGets(sb, fx, fx.present, true)
		ins1, el := fx.r.WriterStats().Inserts, time.Since(t0)
		sb.ReportMetric(float64(ins1-ins0)/el.Seconds(), "writer-puts/s")
		if st := fx.r.Stats(); st.TornRetries+st.Overruns+st.Torn > 0 {
			sb.Logf("reader stats: %+v", st)
		}
	})
	if fx != nil {
		fx.close()
	}
}

// BenchmarkReaderMiss: Get of an absent key in the same 1 GiB file.
func BenchmarkReaderMiss(b *testing.B) {
	var fx *benchReaderFixture
	b.Run("1KiB", func(sb *testing.B) {
		if fx == nil {
			fx = newBenchReaderFixture(sb, b, benchSpecFor(1<<10))
		}
		benchRunGets(sb, fx, nil, false)
	})
	if fx != nil {
		fx.close()
	}
}

// BenchmarkReaderScaling: reader processes (children) doing Gets of random
// present keys for a fixed time, the writer process idle: one reader alone,
// then two at once, alternating (1, 2, 1, 2, ...), best of each: two rounds,
// up to five while the machine is busy (see cpu-util). Two children are
// started and warmed once; the first also runs the one-reader phases. It
// ignores b.N: one measurement per run; ns/op is the aggregate time per hit
// with two readers (1e9 / hits/s-2r). cpu-util-* is CPU time over wall time
// per reader: well under 1 means the readers were not on a CPU all along
// (this machine is shared), which makes the numbers low and the ratio noisy.
func BenchmarkReaderScaling(b *testing.B) {
	dur := 2 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ZH_BENCH_SCALE_DUR")); err == nil && d > 0 && d <= time.Minute {
		dur = d
	}
	var fx *benchFile
	b.Run("1KiB", func(sb *testing.B) {
		if fx == nil {
			fx = newBenchFile(sb, b, benchSpecFor(1<<10))
		}
		cs := []*benchChild{
			startBenchChild(sb, sb, roleCommand(roleBenchReader, fx.env()...)),
			startBenchChild(sb, sb, roleCommand(roleBenchReader, fx.env()...)),
		}
		for _, c := range cs {
			c.expect(sb, "ready", 2*time.Minute)
		}
		// At least two rounds, at most five: more only while a phase has
		// not yet had its readers on a CPU 90% of the time.
		var best [3]benchReaderRun
		for rep := 0; rep < 5; rep++ {
			if rep >= 2 && best[1].cpuUtil >= 0.9 && best[2].cpuUtil >= 0.9 {
				break
			}
			for _, k := range []int{1, 2} {
				if run := benchRunReaders(sb, cs[:k], dur); run.hitsPerSec > best[k].hitsPerSec {
					best[k] = run
				}
			}
		}
		for _, c := range cs {
			c.stop()
		}
		one, two := best[1], best[2]
		sb.ReportMetric(one.hitsPerSec, "hits/s-1r")
		sb.ReportMetric(two.hitsPerSec, "hits/s-2r")
		sb.ReportMetric(1e9/one.hitsPerSec, "ns/hit-1r")
		sb.ReportMetric(two.hitsPerSec/one.hitsPerSec, "scale-2x")
		sb.ReportMetric(one.cpuUtil, "cpu-util-1r")
		sb.ReportMetric(two.cpuUtil, "cpu-util-2r")
		sb.ReportMetric(1e9/two.hitsPerSec, "ns/op")
	})
	if fx != nil {
		fx.close()
	}
}

type benchReaderRun struct {
	hitsPerSec float64 // summed over the readers
	cpuUtil    float64 // mean CPU time / wall time per reader
}

// benchRunReaders starts the warmed reader children at once for dur.
func benchRunReaders(b *testing.B, cs []*benchChild, dur time.Duration) benchReaderRun {
	b.Helper()
	for _, c := range cs {
		c.send(b, fmt.Sprintf("go %d", dur.Milliseconds()))
	}
	var run benchReaderRun
	for i, c := range cs {
		f := c.expect(b, "done", dur+time.Minute)
		ops, hits, ns, cpu := benchAtoi(b, f, 1), benchAtoi(b, f, 2), benchAtoi(b, f, 3), benchAtoi(b, f, 4)
		if (ops-hits)*100 > ops {
			b.Fatalf("reader %d/%d: %d hits of %d (%d refused: writer heartbeat stale)", i+1, len(cs), hits, ops, benchAtoi(b, f, 5))
		}
		run.hitsPerSec += float64(hits) / (float64(ns) / 1e9)
		run.cpuUtil += float64(cpu) / float64(ns) / float64(len(cs))
	}
	return run
}

// BenchmarkWriterPut: in-process Put of 1 KiB bodies under random keys from
// a key space 5x the capacity of a 256 MiB file, after a full lap, so every
// run wraps, reclaims and evicts.
func BenchmarkWriterPut(b *testing.B) {
	var (
		w    *shm.Writer
		it   *shm.Item
		spec = benchSpec{Body: 1 << 10, File: 256 << 20, Region: 4 << 20, Expected: 256 << 10}
	)
	const keySpace = 1 << 20
	key := newBenchKey()
	rng := benchRNG(0xD1B54A32D192ED03)
	b.Run("1KiB", func(sb *testing.B) {
		if w == nil {
			var err error
			if w, err = shm.OpenWriter(benchDir(sb, b), spec.options()); err != nil {
				sb.Fatal(err)
			}
			b.Cleanup(func() { w.Close() })
			it = benchItem(spec)
			// One and a half laps: every page mapped, reclaim in steady state.
			for i := 0; w.Stats().Tail < uint64(spec.File)/2*3 && i < 10*keySpace; i++ {
				it.Key = key.set(uint64(rng.intn(keySpace)))
				if err := w.Put(it); err != nil {
					sb.Fatal(err)
				}
			}
		}
		lat := newBenchLatency()
		timer := benchTimerOverhead()
		st0 := w.Stats()
		runtime.GC()
		sb.ReportAllocs()
		sb.SetBytes(int64(spec.Body))
		sb.ResetTimer()
		for i := 0; i < sb.N; i++ {
			it.Key = key.set(uint64(rng.intn(keySpace)))
			t0 := benchMono()
			err := w.Put(it)
			t1 := benchMono()
			if err != nil {
				sb.Fatal(err)
			}
			lat.record(t1 - t0)
		}
		sb.StopTimer()
		lat.report(sb)
		sb.ReportMetric(float64(timer), "timer-ns")
		st := w.Stats()
		if d := float64(st.Inserts - st0.Inserts); d > 0 {
			sb.ReportMetric(100*float64(st.Evictions-st0.Evictions)/d, "evict-%")
		}
	})
}

// BenchmarkKeyBuild: AppendKey into a reused buffer (host with a default
// port and upper case, so trimming and lower-casing run).
func BenchmarkKeyBuild(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = shm.AppendKey(buf[:0], "GET", "HTTPS", "Bench.Zerohop.Test:443", "/objects/000123456?rev=1&lang=en")
	}
	if len(buf) == 0 {
		b.Fatal("empty key")
	}
}

// TestHitPathNoSyscalls runs a reader child doing 1M hits under strace -f
// and counts the system calls its hit-loop thread makes between the loop's
// two marker writes. The child runs with GOMAXPROCS=1 and async preemption
// off, so the Go scheduler has no reason to enter the kernel on that thread
// either. Skipped without strace or when ptrace is not permitted.
func TestHitPathNoSyscalls(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed")
	}
	if out, err := exec.Command(strace, "-f", "-qq", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		t.Skipf("strace unusable here (ptrace not permitted?): %v %s", err, out)
	}
	// A 64 MiB file of 1 KiB entries written by this process; the child reads.
	spec := benchSpec{Body: 1 << 10, File: 64 << 20, Region: 1 << 20, Expected: 64 << 10}
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, spec.options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	key, it := newBenchKey(), benchItem(spec)
	n := 20000
	for i := 0; i < n; i++ {
		it.Key = key.set(uint64(i))
		if err := w.Put(it); err != nil {
			t.Fatal(err)
		}
	}
	const count = 1000000
	// The loop runs on one thread unless the scheduler moves its goroutine
	// (its P handed off around the marker write, on a busy machine). Then
	// the calls cannot be attributed, and the run is repeated.
	var calls map[string]int
	var tid string
	for attempt := 1; ; attempt++ {
		trace := filepath.Join(t.TempDir(), "strace.out")
		cmd := roleCommand(roleBenchHitLoop, envBenchDir+"="+dir, spec.env(),
			fmt.Sprintf("%s=%d", envBenchKeys, n), fmt.Sprintf("%s=%d", envBenchCount, count),
			"GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1")
		cmd.Args = append([]string{strace, "-f", "-qq", "-o", trace}, cmd.Args...)
		cmd.Path = strace
		c := startBenchChild(t, t, cmd)
		f := c.expect(t, "ZH-HITLOOP-END", 2*time.Minute)
		c.stop()
		if hits := benchAtoi(t, f, 2); hits != count {
			t.Fatalf("%d hits of %d Gets", hits, count)
		}
		calls, tid, err = benchSyscallsBetweenMarkers(trace)
		if errors.Is(err, errLoopMoved) && attempt < 5 {
			t.Logf("attempt %d: %v; again", attempt, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// A lone futex is the Go runtime waking or parking a thread (a
		// timer, or sysmon when the loaded machine deschedules the loop),
		// not the hit path, which has no lock to wait on: once seen in CI,
		// never in 40 quiet runs. Such a run is repeated; the one kept must
		// still have no call at all, and any other call fails at once.
		if onlyFutex(calls) && attempt < 5 {
			t.Logf("attempt %d: the runtime's %v on the loop thread; again", attempt, calls)
			continue
		}
		break
	}
	total := 0
	names := make([]string, 0, len(calls))
	for name, k := range calls {
		total += k
		names = append(names, fmt.Sprintf("%s=%d", name, k))
	}
	sort.Strings(names)
	t.Logf("hit-loop thread %s: %d syscalls during %d hits %v", tid, total, count, names)
	if total != 0 {
		t.Errorf("hit path made %d syscalls in %d hits: %v", total, count, names)
	}
}

// errLoopMoved: the hit loop ended on another thread than it began on.
var errLoopMoved = errors.New("hit loop moved threads; cannot attribute syscalls")

// benchSyscallsBetweenMarkers parses strace -f output and counts, by name, the
// calls made by the thread that wrote ZH-HITLOOP-BEGIN, after that write and
// before its ZH-HITLOOP-END write.
func benchSyscallsBetweenMarkers(path string) (map[string]int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	calls := map[string]int{}
	tid, state := "", 0 // 0 before BEGIN, 1 inside, 2 after END
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && state < 2 {
		line := sc.Text()
		id, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		switch {
		case state == 0:
			if strings.Contains(rest, "ZH-HITLOOP-BEGIN") {
				tid, state = id, 1
			}
		case strings.Contains(rest, "ZH-HITLOOP-END"):
			if id != tid {
				return nil, tid, fmt.Errorf("%w: from thread %s to %s", errLoopMoved, tid, id)
			}
			state = 2
		case id != tid:
		case strings.HasPrefix(rest, "<..."), strings.HasPrefix(rest, "---"), strings.HasPrefix(rest, "+++"):
			// resumed calls are counted at their start; signals are not calls
			if strings.HasPrefix(rest, "---") {
				calls["signal:"+strings.Fields(rest)[1]]++
			}
		default:
			name, _, _ := strings.Cut(rest, "(")
			calls[name]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	if state != 2 {
		return nil, tid, fmt.Errorf("markers not found in %s (state %d)", path, state)
	}
	return calls, tid, nil
}

// BenchmarkChecksum compares, side by side, the candidate entry checksums
// over the bytes a 1 KiB-body entry covers (about 1.3 KB), a small entry
// and a 16 KiB one: XXH64 with a seed as format 1 used it (a Digest, the
// only seeded API of cespare/xxhash), CRC-32C (SSE4.2 on amd64) and
// CRC-32/IEEE continuing from a seed as format 2 uses it (PCLMULQDQ on
// amd64; what Python's and Node's zlib.crc32 give).
func BenchmarkChecksum(b *testing.B) {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for _, n := range []int{240, 1304, 16 << 10} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		var sink uint64
		for _, c := range []struct {
			name string
			f    func([]byte) uint64
		}{
			{"xxhash64", func(p []byte) uint64 {
				var d xxhash.Digest
				d.ResetWithSeed(0x9E3779B97F4A7C15)
				d.Write(p)
				return d.Sum64()
			}},
			{"crc32c", func(p []byte) uint64 { return uint64(crc32.Checksum(p, castagnoli)) }},
			{"crc32ieee", func(p []byte) uint64 { return uint64(crc32.Update(0x7F4A7C15, crc32.IEEETable, p)) }},
		} {
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					sink += c.f(data)
				}
			})
		}
		if sink == 42 {
			b.Log(sink)
		}
	}
}

// onlyFutex reports whether calls holds futex calls and nothing else.
func onlyFutex(calls map[string]int) bool {
	return len(calls) == 1 && calls["futex"] > 0
}
