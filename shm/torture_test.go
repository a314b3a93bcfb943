package shm_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/shm/internal/shmtest"
)

// The torture and crash tests run one writer and several readers as
// separate processes (roles of this test binary, see main_test.go): the
// race detector cannot see across processes, so what they check is the
// protocol itself. Every hit is compared byte for byte with the
// deterministic generator in shm/internal/shmtest.
//
// Children take their parameters from ZH_* environment variables, report
// one JSON line on stdout ("READY {...}", "DONE {...}"), and stop when their
// stdin closes (the parent closes it, or dies) or at a hard time cap.

func init() {
	registerRole("torture-writer", writerRole)
	registerRole("torture-reader", readerRole)
}

// longRun is set by `make test-long`.
func longRun() bool { return os.Getenv("ZEROHOP_LONG") != "" }

// testSeed is the generator and writer seed: random, or ZEROHOP_SEED to
// replay a run's keys, contents and writer op sequence.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(envInt("ZEROHOP_SEED", time.Now().UnixNano()))
	t.Logf("seed %d (ZEROHOP_SEED=%d replays it)", seed, seed)
	return seed
}

// Environment names shared by the roles.
const (
	envDir      = "ZH_DIR"
	envSeed     = "ZH_SEED"
	envKeys     = "ZH_KEYS"
	envSize     = "ZH_SIZE"
	envRegion   = "ZH_REGION"
	envGen      = "ZH_GEN"      // writer generation: the high bits of its versions
	envMaxDur   = "ZH_MAXDUR"   // hard cap on a child's life
	envMinDur   = "ZH_MINDUR"   // reader: read at least this long
	envTarget   = "ZH_TARGET"   // reader: and at least this many reads
	envRegions  = "ZH_REGIONS"  // reader: and until the writer reclaimed this many regions
	envWorkers  = "ZH_WORKERS"  // reader: goroutines
	envRecheck  = "ZH_RECHECK"  // reader: ReaderOptions.RecheckInterval
	envExpected = "ZH_EXPECTED" // writer: Options.ExpectedEntries
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func kv(name string, v any) string { return fmt.Sprintf("%s=%v", name, v) }

// stdinClosed reports, through the returned flag, when the parent closes
// our stdin: the signal to finish, and what stops an orphan.
func stdinClosed() *atomic.Bool {
	var b atomic.Bool
	go func() {
		io.Copy(io.Discard, os.Stdin)
		b.Store(true)
	}()
	return &b
}

func report(prefix string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s\n", prefix, b)
}

// keyPicker draws key ids: 30% from a hot set of 32 keys, so that readers
// often hit buckets the writer is changing, the rest uniformly.
func keyPicker(rng *rand.Rand, keys int) func() int {
	hot := min(32, keys)
	return func() int {
		if rng.IntN(10) < 3 {
			return rng.IntN(hot)
		}
		return rng.IntN(keys)
	}
}

// ---------------------------------------------------------------------------
// Writer role

// writerReady is the writer's first line: how it opened and whether the
// entries it salvaged or adopted all verify.
type writerReady struct {
	OpenErr     string
	OpenMs      float64
	Salvaged    uint64 // entries re-inserted by a rebuild (Stats().Inserts at open)
	Entries     uint64 // live entries at open
	Verified    uint64 // of those, hits through GetStale that passed the check
	Wrong       uint64
	Errors      []string
	AdoptGen    uint32
	RegionSize  uint64
	RegionCount uint64
	Evicted     uint64   // evictions and reclaims while salvaging
	Versions    []uint64 // by key id, the version found at open; 0 if none
}

// writerDone is the writer's last line, after a clean Close.
type writerDone struct {
	Ops, Puts, Deletes, MarkStales, Purges uint64
	SelfChecks, SelfFailures, PutErrors    uint64
	Errors                                 []string
	Stats                                  shm.Stats
	Wraps                                  float64
	ChurnMs                                float64
	MaxOpMs, MaxHeartbeatAgeMs             float64 // the slowest op; the oldest heartbeat seen while churning
	LiveByKey                              uint64  // keys found by GetStale at the end (must equal Stats.Entries)
}

func writerRole() int {
	dir := os.Getenv(envDir)
	seed := uint64(envInt(envSeed, 1))
	keys := int(envInt(envKeys, 1024))
	gen := uint64(envInt(envGen, 1))
	maxDur := envDur(envMaxDur, time.Minute)
	stop := stdinClosed()
	start := time.Now()

	g := &shmtest.Gen{Seed: seed}
	opts := &shm.Options{
		Size:              envInt(envSize, 2<<20),
		RegionSize:        envInt(envRegion, 64<<10),
		ExpectedEntries:   envInt(envExpected, 0),
		HeartbeatInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	w, err := shm.OpenWriter(dir, opts)
	ready := writerReady{OpenMs: ms(time.Since(start))}
	if err != nil {
		ready.OpenErr = err.Error()
		report("READY", ready)
		return 3
	}
	st := w.Stats()
	ready.Salvaged, ready.Entries, ready.AdoptGen = st.Inserts, st.Entries, st.AdoptGen
	ready.Evicted = st.Evictions + st.Reclaimed
	ready.RegionSize, ready.RegionCount = fileGeometry(dir)
	ready.Versions = make([]uint64, keys)
	// Everything a rebuild salvaged (or an adopt kept) must verify, and
	// every live entry must be reachable by its key.
	c := shmtest.NewChecker(g)
	var kb, buf []byte
	for id := 0; id < keys; id++ {
		kb = g.Key(kb[:0], id)
		var e shm.Entry
		var ok bool
		if e, buf, ok = w.GetStale(buf, kb); !ok {
			continue
		}
		ver, err := c.Check(id, &e)
		if err != nil {
			ready.Wrong++
			ready.Errors = appendErr(ready.Errors, err.Error())
			continue
		}
		ready.Verified++
		ready.Versions[id] = ver
	}
	report("READY", ready)

	var d writerDone
	rng := rand.New(rand.NewPCG(seed, gen))
	pick := keyPicker(rng, keys)
	verBase := gen << 40
	var counter uint64
	fail := func(format string, args ...any) {
		d.SelfFailures++
		d.Errors = appendErr(d.Errors, fmt.Sprintf(format, args...))
	}
	churnStart := time.Now()
	prevOp := churnStart
	for {
		if d.Ops%64 == 0 {
			if age := float64(time.Now().UnixMilli() - int64(w.Stats().HeartbeatMs)); age > d.MaxHeartbeatAgeMs {
				d.MaxHeartbeatAgeMs = age
			}
			el := time.Since(start)
			if stop.Load() || el > maxDur {
				break
			}
		}
		t0 := time.Now()
		d.MaxOpMs = max(d.MaxOpMs, ms(t0.Sub(prevOp)))
		prevOp = t0
		d.Ops++
		check := d.Ops%8 == 0
		id := pick()
		kb = g.Key(kb[:0], id)
		now := time.Now().UnixMilli()
		switch op := rng.IntN(1000); {
		case op < 800:
			counter++
			ver := verBase | counter
			if err := w.Put(g.Item(id, ver, now)); err != nil {
				d.PutErrors++
				d.Errors = appendErr(d.Errors, "put: "+err.Error())
				continue
			}
			d.Puts++
			if check {
				d.SelfChecks++
				e, b, ok := w.GetStale(buf, kb)
				buf = b
				if !ok {
					fail("id %d: miss right after Put of ver %d", id, ver)
				} else if got, err := c.Check(id, &e); err != nil || got != ver {
					fail("id %d: after Put of ver %d got ver %d, %v", id, ver, got, err)
				}
			}
		case op < 900:
			w.Delete(kb)
			d.Deletes++
			if check {
				d.SelfChecks++
				if _, _, ok := w.GetStale(buf, kb); ok {
					fail("id %d: hit after Delete", id)
				}
			}
		case op < 990:
			ok := w.MarkStale(kb)
			d.MarkStales++
			if check && ok {
				d.SelfChecks++
				// Stale from the moment of the call: check at a time after
				// it (now may be in the second before).
				if _, _, hit := w.Get(buf, kb, time.Now().UnixMilli()); hit {
					fail("id %d: fresh hit after MarkStale", id)
				}
				if _, _, hit := w.GetStale(buf, kb); !hit {
					fail("id %d: MarkStale removed the entry", id)
				}
			}
		default:
			grp := id % shmtest.Groups
			soft := op%2 == 0
			w.PurgeTag(shmtest.GroupTag(grp), soft)
			d.Purges++
			// A soft purge marks entries stale from the moment it runs,
			// which may be a second boundary after now.
			now = time.Now().UnixMilli()
			// Every key of the group carries the tag: none may be served.
			d.SelfChecks++
			for k := grp; k < keys; k += shmtest.Groups {
				kb = g.Key(kb[:0], k)
				if soft {
					if _, _, hit := w.Get(buf, kb, now); hit {
						fail("id %d: fresh hit after soft PurgeTag(%s)", k, shmtest.GroupTag(grp))
					}
				} else if _, _, hit := w.GetStale(buf, kb); hit {
					fail("id %d: hit after PurgeTag(%s)", k, shmtest.GroupTag(grp))
				}
			}
		}
	}
	d.ChurnMs = ms(time.Since(churnStart))
	d.Stats = w.Stats()
	for id := 0; id < keys; id++ {
		kb = g.Key(kb[:0], id)
		e, b, ok := w.GetStale(buf, kb)
		buf = b
		if !ok {
			continue
		}
		d.LiveByKey++
		if _, err := c.Check(id, &e); err != nil {
			fail("at the end: %v", err)
		}
	}
	if arena := ready.RegionSize * ready.RegionCount; arena > 0 {
		d.Wraps = float64(d.Stats.Head) / float64(arena)
	}
	if err := w.Close(); err != nil {
		d.Errors = appendErr(d.Errors, "close: "+err.Error())
		d.SelfFailures++
	}
	report("DONE", d)
	return 0
}

// fileGeometry reads region size and count from the file header (u32 at 40
// and 44, docs/format.md).
func fileGeometry(dir string) (regionSize, regionCount uint64) {
	f, err := os.Open(filepath.Join(dir, shm.FileName))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var b [48]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, 0
	}
	return uint64(binary.LittleEndian.Uint32(b[40:])), uint64(binary.LittleEndian.Uint32(b[44:]))
}

func appendErr(errs []string, s string) []string {
	if len(errs) < 10 {
		errs = append(errs, s)
	}
	return errs
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ---------------------------------------------------------------------------
// Reader role

// readerDone is a reader's only line.
type readerDone struct {
	OpenErr     string
	Reads       uint64
	Hits        uint64
	FreshHits   uint64 // hits through Get
	Wrong       uint64 // hits whose bytes are not gen(id, version), or Get serving a stale entry
	Regressions uint64 // a key's version went backwards within one goroutine
	MaxGen      uint64 // the latest writer generation seen in a hit (version >> 40)
	Errors      []string
	Stats       shm.ReadStats
	Capped      bool // stopped by the hard cap before reaching its target
	ElapsedMs   float64
}

func readerRole() int {
	dir := os.Getenv(envDir)
	seed := uint64(envInt(envSeed, 1))
	keys := int(envInt(envKeys, 1024))
	minDur := envDur(envMinDur, 5*time.Second)
	target := uint64(envInt(envTarget, 0))
	regions := uint64(envInt(envRegions, 0))
	maxDur := envDur(envMaxDur, time.Minute)
	workers := int(envInt(envWorkers, 1))
	stop := stdinClosed()
	start := time.Now()
	var out readerDone

	ropts := &shm.ReaderOptions{RecheckInterval: envDur(envRecheck, 0)}
	var r *shm.Reader
	for {
		var err error
		if r, err = shm.Open(dir, ropts); err == nil {
			break
		}
		if time.Since(start) > maxDur || stop.Load() {
			out.OpenErr = err.Error()
			report("DONE", out)
			return 3
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer r.Close()

	g := &shmtest.Gen{Seed: seed}
	keyBytes := make([][]byte, keys)
	for id := range keyBytes {
		keyBytes[id] = g.Key(nil, id)
	}
	var (
		done    atomic.Bool
		reads   atomic.Uint64
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = make([]readerDone, workers)
	)
	for wi := 0; wi < workers; wi++ {
		wg.Add(1)
		go func(res *readerDone, seed2 uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed2))
			pick := keyPicker(rng, keys)
			c := shmtest.NewChecker(g)
			lastVer := make([]uint64, keys)
			buf := make([]byte, 32<<10)
			wrong := func(s string) {
				res.Wrong++
				mu.Lock()
				out.Errors = appendErr(out.Errors, s)
				mu.Unlock()
			}
			for !done.Load() {
				for i := 0; i < 256; i++ {
					id := pick()
					now := time.Now().UnixMilli()
					fresh := rng.IntN(2) == 0
					var e shm.Entry
					var ok bool
					if fresh {
						e, buf, ok = r.Get(buf, keyBytes[id], now)
					} else {
						e, buf, ok = r.GetStale(buf, keyBytes[id], now)
					}
					res.Reads++
					if !ok {
						continue
					}
					res.Hits++
					ver, err := c.Check(id, &e)
					if err != nil {
						wrong("WRONG RESPONSE: " + err.Error())
						continue
					}
					if fresh {
						res.FreshHits++
						if !e.Fresh(now) {
							wrong(fmt.Sprintf("key id %d ver %d: Get served an entry not fresh at %d (expires %d, flags %#x)",
								id, ver, now, e.ExpiresMs, e.Flags))
						}
					}
					if ver < lastVer[id] {
						res.Regressions++
						mu.Lock()
						out.Errors = appendErr(out.Errors, fmt.Sprintf("key id %d: version %d after %d", id, ver, lastVer[id]))
						mu.Unlock()
					} else {
						lastVer[id] = ver
					}
					res.MaxGen = max(res.MaxGen, ver>>40)
				}
				reads.Add(256)
			}
		}(&results[wi], uint64(wi)+1000*uint64(os.Getpid()))
	}
	for !done.Load() {
		time.Sleep(5 * time.Millisecond)
		el := time.Since(start)
		switch {
		case stop.Load():
			done.Store(true)
		case el > maxDur:
			out.Capped = true
			done.Store(true)
		case el >= minDur && reads.Load() >= target && r.WriterStats().RegionsReclaimed >= regions:
			done.Store(true)
		}
	}
	wg.Wait()
	for _, res := range results {
		out.Reads += res.Reads
		out.Hits += res.Hits
		out.FreshHits += res.FreshHits
		out.Wrong += res.Wrong
		out.Regressions += res.Regressions
		out.MaxGen = max(out.MaxGen, res.MaxGen)
	}
	out.Stats = r.Stats()
	out.ElapsedMs = ms(time.Since(start))
	report("DONE", out)
	return 0
}

// ---------------------------------------------------------------------------
// Parent-side process handling

// proc is a running child. Its stdout lines arrive on lines; t.Cleanup kills
// and reaps it if the test did not.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr syncBuffer
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // keep the start; a runaway child must not eat memory
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, name, role string, env ...string) *proc {
	t.Helper()
	cmd := roleCommand(role, env...)
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody listens for that many lines; never block Wait
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if s := p.stderr.String(); s != "" {
				t.Logf("%s stderr:\n%s", p.name, tail(s, 4000))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// line waits up to timeout for the stdout line starting with prefix and
// decodes the JSON after it into v.
func (p *proc) line(prefix string, timeout time.Duration, v any) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return fmt.Errorf("%s exited (%v) before printing %s", p.name, p.err, prefix)
			}
			if rest, found := strings.CutPrefix(l, prefix+" "); found {
				if err := json.Unmarshal([]byte(rest), v); err != nil {
					return fmt.Errorf("%s: bad %s line %q: %v", p.name, prefix, l, err)
				}
				return nil
			}
		case <-timer.C:
			return fmt.Errorf("%s: no %s line within %v", p.name, prefix, timeout)
		}
	}
}

// finish closes stdin (asking the child to stop) and waits up to timeout
// for it to exit, killing it after that.
func (p *proc) finish(timeout time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %v; killed", p.name, timeout)
	}
}

// kill sends SIGKILL and reaps the child (so that its flock is released).
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// exitedOK reports an error unless the child exited with status 0.
func (p *proc) exitedOK() error {
	select {
	case <-p.done:
	default:
		return fmt.Errorf("%s still running", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("%s exited with %v; stderr:\n%s", p.name, ee, tail(p.stderr.String(), 2000))
	}
	return p.err
}

// readerTotals sums reader reports.
type readerTotals struct {
	readerDone
	procs int
}

func (tt *readerTotals) add(d readerDone) {
	tt.procs++
	tt.Reads += d.Reads
	tt.Hits += d.Hits
	tt.FreshHits += d.FreshHits
	tt.Wrong += d.Wrong
	tt.Regressions += d.Regressions
	tt.Errors = append(tt.Errors, d.Errors...)
	s := &tt.Stats
	s.Hits += d.Stats.Hits
	s.Misses += d.Stats.Misses
	s.Expired += d.Stats.Expired
	s.TornRetries += d.Stats.TornRetries
	s.Torn += d.Stats.Torn
	s.Overruns += d.Stats.Overruns
	s.Corrupt += d.Stats.Corrupt
	s.Collisions += d.Stats.Collisions
	s.WriterStale += d.Stats.WriterStale
	s.Faults += d.Stats.Faults
	s.Remaps += d.Stats.Remaps
}

func (tt *readerTotals) String() string {
	s := tt.Stats
	share := 0.0
	if tt.Reads > 0 {
		share = 100 * float64(tt.Hits) / float64(tt.Reads)
	}
	return fmt.Sprintf("%d readers: reads %d, hits %d (%.1f%%, %d fresh), wrong %d, version regressions %d; "+
		"misses %d (expired %d, torn %d, overruns %d, corrupt %d, collisions %d, writer stale %d, faults %d), "+
		"torn retries %d, remaps %d",
		tt.procs, tt.Reads, tt.Hits, share, tt.FreshHits, tt.Wrong, tt.Regressions,
		s.Misses, s.Expired, s.Torn, s.Overruns, s.Corrupt, s.Collisions, s.WriterStale, s.Faults,
		s.TornRetries, s.Remaps)
}

// ---------------------------------------------------------------------------
// TestTorture

// TestTorture runs a writer churning at full speed on a 2 MiB file of
// 64 KiB regions against reader processes that verify every hit.
//
// The readers stop once all of these hold: they read for minDur, made
// minReads reads between them and the writer wrapped minWraps times; a
// loaded machine makes the run longer, not weaker, up to capDur, which fails
// the test. Default: 15 s, 1.5 M reads, 100 wraps (3 s, 100 k, 10 with
// -short); ZEROHOP_LONG=1: 10 M reads and 1000 wraps, capped at 10 min.
// ZEROHOP_TORTURE_DURATION=5m forces a longer soak.
func TestTorture(t *testing.T) {
	const (
		readers = 3
		keys    = 1024
		size    = 2 << 20
		region  = 64 << 10
		// 128 buckets (640 slots) for 1024 keys and an arena that holds
		// ~900 entries: both bucket evictions and region reclaim happen.
		expected = 512
	)
	minDur, minReads, minWraps, capDur := 15*time.Second, uint64(1_500_000), uint64(100), time.Minute
	switch {
	case longRun():
		minDur, minReads, minWraps, capDur = 0, 10_000_000, 1000, 10*time.Minute
	case testing.Short():
		minDur, minReads, minWraps, capDur = 3*time.Second, 100_000, 10, 30*time.Second
	}
	if shmtest.Race {
		// Children are race-instrumented too: several times slower.
		minReads /= 10
		minWraps /= 5
	}
	if d := envDur("ZEROHOP_TORTURE_DURATION", 0); d > 0 {
		minDur, capDur = d, d+time.Minute
	}
	dir := t.TempDir()
	seed := testSeed(t)
	common := []string{kv(envDir, dir), kv(envSeed, seed), kv(envKeys, keys)}

	writer := startProc(t, "writer", "torture-writer", append(common,
		kv(envSize, size), kv(envRegion, region), kv(envExpected, expected), kv(envGen, 1),
		kv(envMaxDur, capDur+time.Minute))...)
	var ready writerReady
	if err := writer.line("READY", 30*time.Second, &ready); err != nil {
		t.Fatal(err)
	}
	if ready.OpenErr != "" {
		t.Fatalf("writer: OpenWriter: %s", ready.OpenErr)
	}

	var rs []*proc
	for i := 0; i < readers; i++ {
		rs = append(rs, startProc(t, fmt.Sprintf("reader%d", i), "torture-reader", append(common,
			kv(envMinDur, minDur), kv(envTarget, (minReads+readers-1)/readers),
			kv(envRegions, minWraps*ready.RegionCount), kv(envMaxDur, capDur))...))
	}
	var tot readerTotals
	for _, r := range rs {
		var d readerDone
		if err := r.line("DONE", capDur+time.Minute, &d); err != nil {
			t.Fatal(err)
		}
		if err := r.finish(10 * time.Second); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
		if err := r.exitedOK(); err != nil {
			t.Errorf("%v", err)
		}
		if d.OpenErr != "" {
			t.Errorf("%s: Open: %s", r.name, d.OpenErr)
		}
		if d.Capped {
			t.Errorf("%s: stopped by the %v cap after %d reads, before the run's goals (%d reads, %d wraps): machine too slow or overloaded?",
				r.name, capDur, d.Reads, minReads, minWraps)
		}
		tot.add(d)
	}
	var wd writerDone
	writer.stdin.Close()
	if err := writer.line("DONE", 30*time.Second, &wd); err != nil {
		t.Fatal(err)
	}
	if err := writer.finish(10 * time.Second); err != nil {
		t.Errorf("writer: %v", err)
	}
	if err := writer.exitedOK(); err != nil {
		t.Errorf("%v", err)
	}

	s := wd.Stats
	t.Logf("writer: %d ops in %.1fs (%d puts, %d deletes, %d mark-stale, %d tag purges), %d self-checks; "+
		"inserts %d, replaces %d, evictions %d, reclaimed %d, regions reclaimed %d, %.1f MiB written, %.0f wraps of the %d×%d KiB arena",
		wd.Ops, wd.ChurnMs/1000, wd.Puts, wd.Deletes, wd.MarkStales, wd.Purges, wd.SelfChecks,
		s.Inserts, s.Replaces, s.Evictions, s.Reclaimed, s.RegionsReclaimed, float64(s.BytesWritten)/(1<<20),
		wd.Wraps, ready.RegionCount, ready.RegionSize>>10)
	t.Logf("writer: slowest op %.1f ms, oldest heartbeat seen %.0f ms", wd.MaxOpMs, wd.MaxHeartbeatAgeMs)
	t.Logf("%s", tot.String())
	for _, e := range tot.Errors {
		t.Errorf("reader: %s", e)
	}
	for _, e := range wd.Errors {
		t.Errorf("writer: %s", e)
	}
	if tot.Wrong != 0 {
		t.Errorf("wrong responses: got %d; want 0", tot.Wrong)
	}
	if tot.Regressions != 0 {
		t.Errorf("version regressions: got %d; want 0", tot.Regressions)
	}
	if wd.LiveByKey != s.Entries {
		t.Errorf("writer: %d keys found at the end; Stats().Entries %d", wd.LiveByKey, s.Entries)
	}
	if tot.Stats.Hits != tot.Hits || tot.Stats.Hits+tot.Stats.Misses != tot.Reads {
		t.Errorf("reader counters: hits %d + misses %d for %d reads, %d hits seen", tot.Stats.Hits, tot.Stats.Misses, tot.Reads, tot.Hits)
	}
	if wd.SelfFailures != 0 || wd.PutErrors != 0 {
		t.Errorf("writer self-check failures %d, put errors %d; want 0, 0", wd.SelfFailures, wd.PutErrors)
	}
	if tot.Reads < minReads {
		t.Errorf("reads: got %d; want >= %d", tot.Reads, minReads)
	}
	// A meaningful share of hits: otherwise the check checked nothing.
	if tot.Hits < tot.Reads/20 || tot.FreshHits == 0 {
		t.Errorf("hits: got %d of %d reads (%d fresh); want >= 5%% and some fresh", tot.Hits, tot.Reads, tot.FreshHits)
	}
	if wd.Wraps < float64(minWraps) || s.RegionsReclaimed < minWraps*ready.RegionCount {
		t.Errorf("writer wrapped %.1f times (%d regions reclaimed); want >= %d wraps", wd.Wraps, s.RegionsReclaimed, minWraps)
	}
}
