package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// Tests with real processes: a child (this test binary, re-executed with
// ZEROHOP_STORE_CHILD set) writes; the parent stops it cleanly or with
// SIGKILL and reopens the store.

const childEnv = "ZEROHOP_STORE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// startChild runs the test binary as a child in mode with args. It is
// killed (SIGKILL) at test cleanup if still running.
func startChild(t *testing.T, mode string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "ZEROHOP_STORE_CHILD_ARGS="+strings.Join(args, "\x1f"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
		close(c.lines)
	}()
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("child %d did not exit", cmd.Process.Pid)
		}
	})
	return c
}

// waitLine waits (bounded) for a line with prefix and returns it.
func (c *child) waitLine(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("timed out after %v waiting for the child to print %q", d, prefix)
		}
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("killed child did not exit")
	}
}

func (c *child) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.done:
		if code := c.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("child exited with %d", code)
		}
	case <-time.After(d):
		t.Fatalf("child still running after %v", d)
	}
}

func childArgs() []string { return strings.Split(os.Getenv("ZEROHOP_STORE_CHILD_ARGS"), "\x1f") }

func childOpts() *Options {
	return &Options{MinFree: -1, CPUShare: -1, Queue: 1 << 16, QueueBytes: 1 << 30, MemTableSize: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CloseTimeout: 30 * time.Second}
}

// childMain is the child's program; it returns the exit code.
func childMain(mode string) int {
	args := childArgs()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	switch mode {
	case "write":
		// write DIR FROM TO VER then clean|hang [SHMDIR]
		dir := args[0]
		from, _ := strconv.Atoi(args[1])
		to, _ := strconv.Atoi(args[2])
		ver, _ := strconv.ParseUint(args[3], 10, 64)
		s, err := Open(dir, childOpts())
		if err != nil {
			return fail(err)
		}
		var tier *Tier
		if len(args) > 5 {
			w, err := shm.OpenWriter(args[5], &shm.Options{Size: 64 << 20, RegionSize: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				return fail(err)
			}
			tier = NewTier(w, s)
		}
		now := time.Now().UnixMilli()
		for id := from; id < to; id++ {
			it := genItem(id, ver, now, time.Hour, 100, 3000)
			if tier != nil {
				if err := tier.Put(it); err != nil {
					return fail(err)
				}
			} else {
				s.Put(it)
			}
			if st := s.Stats(); st.Dropped > 0 {
				return fail(fmt.Errorf("dropped %d", st.Dropped))
			}
		}
		if err := s.Flush(context.Background()); err != nil {
			return fail(err)
		}
		fmt.Println("flushed", to-from)
		if args[4] == "hang" {
			time.Sleep(time.Hour)
		}
		if tier != nil {
			tier.w.Close()
		}
		if err := s.Close(); err != nil {
			return fail(err)
		}
		return 0
	case "crash":
		return crashChild(args)
	}
	return fail(fmt.Errorf("unknown mode %q", mode))
}

// TestRestartClean: a child writes and exits cleanly; everything is there
// after a reopen, and a refill brings it back into shared memory.
func TestRestartClean(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "write", dir, "0", "1500", "1", "clean")
	c.waitLine(t, "flushed", time.Minute)
	c.wait(t, time.Minute)
	s := mustOpen(t, dir, testOpts(t, nil))
	checkIDs(t, s, 0, 1500, 1)
	w := openShm(t, t.TempDir(), nil)
	n, err := s.Refill(context.Background(), w, nil)
	if err != nil || n != 1500 {
		t.Fatalf("refill %d, %v", n, err)
	}
	for id := 0; id < 1500; id++ {
		e, _, ok := w.Get(nil, genKey(id), time.Now().UnixMilli())
		if !ok {
			t.Fatalf("id %d: no hit after the refill", id)
		}
		if _, err := checkGen(entryItem(&e), id, 100, 3000); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestartKilled: a child writes through a Tier (shared memory on
// tmpfs and the store), flushes, and is killed; the shared-memory
// directory is lost (the pod moved). A new sidecar opens an empty cache
// file, refills it from the store and serves every entry; a second-tier
// lookup serves what the refill did not put.
func TestRestartKilled(t *testing.T) {
	dir := t.TempDir()
	shmRoot := "/dev/shm"
	if _, err := os.Stat(shmRoot); err != nil {
		shmRoot = t.TempDir()
	}
	shmDir, err := os.MkdirTemp(shmRoot, "zerohop-store-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shmDir) })
	c := startChild(t, "write", dir, "0", "2000", "7", "hang", shmDir)
	c.waitLine(t, "flushed", time.Minute)
	c.kill(t)
	os.RemoveAll(shmDir) // tmpfs lost with the pod
	s := mustOpen(t, dir, testOpts(t, nil))
	checkIDs(t, s, 0, 2000, 7)
	w := openShm(t, shmDir, nil)
	tier := NewTier(w, s)
	s.opts.RefillBudget = 1 << 20 // a part only: the rest is second tier
	n, err := tier.Refill(context.Background(), nil)
	if err != nil || n == 0 || n >= 2000 {
		t.Fatalf("refill %d, %v", n, err)
	}
	for id := 0; id < 2000; id++ {
		e, _, ok := tier.GetStale(nil, genKey(id))
		if !ok {
			t.Fatalf("id %d: miss in both tiers", id)
		}
		if _, err := checkGen(entryItem(&e), id, 100, 3000); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Promoted != uint64(2000-n) {
		t.Errorf("promoted %d, want %d", st.Promoted, 2000-n)
	}
}

func checkIDs(t *testing.T, s *Store, from, to int, ver uint64) {
	t.Helper()
	now := time.Now().UnixMilli()
	for id := from; id < to; id++ {
		it, ok := s.Get(genKey(id), now)
		if !ok {
			t.Fatalf("id %d missing after restart", id)
		}
		v, err := checkGen(it, id, 100, 3000)
		if err != nil || v != ver {
			t.Fatalf("id %d: ver %d, %v", id, v, err)
		}
	}
}

// crashChild writes random entries with interleaved invalidations until
// it is killed. Versions grow across runs (base from the args); each
// acknowledged invalidation is printed once Flush returns:
//
//	acked <seq> <threshold> <kind> <arg>
//
// meaning: every put with a version below threshold that the invalidation
// covers must never be seen again.
func crashChild(args []string) int {
	dir := args[0]
	seed, _ := strconv.ParseUint(args[1], 10, 64)
	base, _ := strconv.ParseUint(args[2], 10, 64)
	seq, _ := strconv.ParseUint(args[3], 10, 64)
	s, err := Open(dir, childOpts())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("started")
	r := rand.New(rand.NewPCG(seed, 5))
	ver := base
	now := time.Now().UnixMilli()
	for {
		for i := 0; i < 100+r.IntN(500); i++ {
			ver++
			s.Put(genItem(r.IntN(crashIDs), ver, now, time.Hour, 100, 3000))
		}
		seq++
		threshold := ver + 1
		var inv invalidate.Purge
		var desc string
		switch r.IntN(3) {
		case 0:
			g := r.IntN(groups)
			inv = invalidate.TagPurge(groupTag(g), invalidate.Hard)
			desc = "tag " + strconv.Itoa(g)
		case 1:
			id := r.IntN(crashIDs)
			inv = keyPurge(genKey(id), false)
			desc = "url " + strconv.Itoa(id)
		default:
			h, p := r.IntN(4), r.IntN(8)
			inv = invalidate.PrefixPurge("http", genHost(h), "/p"+strconv.Itoa(p), invalidate.Hard)
			desc = fmt.Sprintf("prefix %d %d", h, p)
		}
		s.Purge(inv)
		s.SetAppliedSeq(seq)
		if err := s.Flush(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		fmt.Printf("acked %d %d %s\n", seq, threshold, desc)
	}
}

const crashIDs = 400

type ackedPurge struct {
	seq, threshold uint64
	covers         func(id int) bool
}

func parseAck(t *testing.T, l string) ackedPurge {
	f := strings.Fields(l)
	seq, _ := strconv.ParseUint(f[1], 10, 64)
	th, _ := strconv.ParseUint(f[2], 10, 64)
	a := ackedPurge{seq: seq, threshold: th}
	switch f[3] {
	case "tag":
		g, _ := strconv.Atoi(f[4])
		a.covers = func(id int) bool { return id%groups == g }
	case "url":
		u, _ := strconv.Atoi(f[4])
		a.covers = func(id int) bool { return id == u }
	case "prefix":
		h, _ := strconv.Atoi(f[4])
		p, _ := strconv.Atoi(f[5])
		a.covers = func(id int) bool { return id%4 == h && id%8 == p }
	default:
		t.Fatalf("bad ack line %q", l)
	}
	return a
}

// TestCrash kills a writing child at random points (20 times; 100 with
// ZEROHOP_LONG=1) and checks after each kill: Pebble opens, every record
// verifies, no entry comes back whose purge was acknowledged, and the
// applied sequence is at least the last acknowledged one.
func TestCrash(t *testing.T) {
	kills := 20
	if os.Getenv("ZEROHOP_LONG") == "1" {
		kills = 100
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(42, 42))
	var acked []ackedPurge
	var lastSeq, base uint64
	totalAcks := 0
	for k := 0; k < kills; k++ {
		c := startChild(t, "crash", dir, strconv.Itoa(k), strconv.FormatUint(base, 10), strconv.FormatUint(lastSeq, 10))
		c.waitLine(t, "started", time.Minute)
		time.Sleep(time.Duration(50+r.IntN(500)) * time.Millisecond)
		c.kill(t)
		for l := range c.lines {
			if strings.HasPrefix(l, "acked ") {
				a := parseAck(t, l)
				acked = append(acked, a)
				lastSeq = max(lastSeq, a.seq)
				totalAcks++
			}
		}
		base += 1 << 32 // versions of the next run are above every earlier one
		s, err := Open(dir, testOpts(t, nil))
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", k, err)
		}
		if s.AppliedSeq() < lastSeq {
			t.Fatalf("kill %d: AppliedSeq %d < last acknowledged %d", k, s.AppliedSeq(), lastSeq)
		}
		lastSeq = max(lastSeq, s.AppliedSeq())
		n := verifyAll(t, s, acked, k)
		if err := s.Close(); err != nil {
			t.Fatalf("kill %d: close: %v", k, err)
		}
		if testing.Verbose() {
			t.Logf("kill %d: %d entries verified, %d purges acknowledged so far", k, n, len(acked))
		}
	}
	if totalAcks == 0 {
		t.Fatal("the child never acknowledged a purge: the test checked nothing")
	}
}

// verifyAll reads every record: each must verify and none may be covered
// by an acknowledged purge made after it was put.
func verifyAll(t *testing.T, s *Store, acked []ackedPurge, k int) int {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	now := time.Now().UnixMilli()
	n := 0
	for ok := it.SeekGE([]byte{pRec}); ok && it.Key()[0] == pRec; ok = it.Next() {
		key := append([]byte(nil), it.Key()[1:]...)
		if _, err := parseRecord(key, it.Value()); err != nil {
			t.Fatalf("kill %d: record %q does not verify: %v", k, key, err)
		}
		p, _ := shm.SplitKey(key)
		id, _ := strconv.Atoi(filepath.Base(string(p.Target)))
		got, ok := s.Get(key, now)
		if !ok {
			t.Fatalf("kill %d: id %d: record present but Get misses", k, id)
		}
		ver, err := checkGen(got, id, 100, 3000)
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		for _, a := range acked {
			if ver < a.threshold && a.covers(id) {
				t.Fatalf("kill %d: id %d version %d came back after purge seq %d (threshold %d) was acknowledged",
					k, id, ver, a.seq, a.threshold)
			}
		}
		n++
	}
	if err := it.Error(); err != nil {
		t.Fatalf("kill %d: iterate: %v", k, err)
	}
	if st := s.Stats(); st.Corrupt != 0 || st.Entries != int64(n) {
		t.Fatalf("kill %d: corrupt %d, entries counter %d, records %d", k, st.Corrupt, st.Entries, n)
	}
	return n
}
