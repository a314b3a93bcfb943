package redisbridge_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/redisbridge"
	"github.com/zerohop/zerohop/invalidate/tail"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// redisServer is a real redis-server on a Unix socket in a temp dir, with
// no persistence: a restart comes back empty, like a lost Redis.
type redisServer struct {
	t    testing.TB
	sock string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	dir, err := os.MkdirTemp("", "zh-redis") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &redisServer{t: t, sock: filepath.Join(dir, "redis.sock")}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", filepath.Dir(r.sock), "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	c := r.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Error("redis-server did not exit")
	}
	r.cmd = nil
	os.Remove(r.sock)
}

func (r *redisServer) options() *redis.Options {
	return &redis.Options{Network: "unix", Addr: r.sock, DialTimeout: time.Second, MaxRetries: -1}
}

func (r *redisServer) client() *redis.Client { return redis.NewClient(r.options()) }

// pod is one simulated sidecar: a log, a tailer recording what it applies,
// and a bridge.
type pod struct {
	t      testing.TB
	name   string
	path   string
	log    *invalidate.Log
	tl     *tail.Tailer
	br     *redisbridge.Bridge
	stopBr func()

	mu        sync.Mutex
	applied   []invalidate.Record
	appliedCh chan struct{} // one send per record applied, if not nil
}

func newPod(t *testing.T, name string, rs *redisServer, tweak func(*redisbridge.Options)) *pod {
	return startPod(t, name, rs, tweak, nil)
}

func newBenchPod(b *testing.B, name string, rs *redisServer) *pod {
	return startPod(b, name, rs, nil, make(chan struct{}, 1<<16))
}

func startPod(t testing.TB, name string, rs *redisServer, tweak func(*redisbridge.Options), ch chan struct{}) *pod {
	dir := t.TempDir()
	p := &pod{t: t, name: name, path: filepath.Join(dir, "inval.log"), appliedCh: ch}
	var err error
	if p.log, err = invalidate.OpenLog(p.path, &invalidate.LogOptions{Origin: name + "-app"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.log.Close() })
	p.startBridge(rs, tweak)
	p.tl, err = tail.New(tail.Options{Path: p.path, Logger: quiet, Hold: p.br.Hold, Apply: func(r invalidate.Record) error {
		p.mu.Lock()
		p.applied = append(p.applied, r)
		p.mu.Unlock()
		if p.appliedCh != nil {
			p.appliedCh <- struct{}{}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.tl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func (p *pod) startBridge(rs *redisServer, tweak func(*redisbridge.Options)) {
	o := redisbridge.Options{Path: p.path, Redis: rs.options(), Pod: p.name, Logger: quiet,
		Block: 200 * time.Millisecond, RetryMax: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond}
	if tweak != nil {
		tweak(&o)
	}
	br, err := redisbridge.New(o)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { br.Run(ctx); close(done) }()
	var once sync.Once
	p.br = br
	p.stopBr = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.t.Error("bridge did not stop")
			}
		})
	}
	p.t.Cleanup(p.stopBr)
}

func (p *pod) appendTag(tag string) uint64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seq, err := p.log.Append(ctx, invalidate.TagRecord(tag, invalidate.Soft))
	if err != nil {
		p.t.Fatal(err)
	}
	return seq
}

// has reports whether the pod applied a record with this payload.
func (p *pod) has(payload string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.applied {
		if string(r.Payload) == payload {
			return true
		}
	}
	return false
}

func (p *pod) count(payload string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.applied {
		if string(r.Payload) == payload {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func readLog(t *testing.T, path string) []invalidate.Record {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := invalidate.NewReader(f, 0)
	var out []invalidate.Record
	for {
		rec, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, rec)
	}
}

func TestBridgeFanOut(t *testing.T) {
	rs := startRedis(t)
	a := newPod(t, "pod-a", rs, nil)
	b := newPod(t, "pod-b", rs, nil)
	time.Sleep(100 * time.Millisecond) // both consumers positioned at the stream's end
	a.appendTag("from-a")
	waitFor(t, 5*time.Second, "pod b to apply pod a's record", func() bool { return b.has("from-a") })
	b.appendTag("from-b")
	waitFor(t, 5*time.Second, "pod a to apply pod b's record", func() bool { return a.has("from-b") })
	time.Sleep(300 * time.Millisecond) // any echo would arrive by now

	for _, p := range []*pod{a, b} {
		recs := readLog(t, p.path)
		if len(recs) != 2 {
			t.Fatalf("%s's log has %d records (an echo?): %v", p.name, len(recs), recs)
		}
		for _, r := range recs {
			remote := r.Flags&invalidate.FlagRemote != 0
			if own := r.Origin == p.name+"-app"; own == remote {
				t.Fatalf("%s: record %v: origin and remote flag disagree", p.name, r)
			}
		}
		if p.count("from-a") != 1 || p.count("from-b") != 1 {
			t.Fatalf("%s applied %v", p.name, p.applied)
		}
	}
	if s := a.br.Stats(); s.Published != 1 || s.Received != 1 || s.SkippedOwn != 1 || s.SkippedRemote != 1 {
		t.Fatalf("pod a bridge stats %+v", s)
	}
}

func TestBridgeRedisOutage(t *testing.T) {
	rs := startRedis(t)
	a := newPod(t, "pod-a", rs, nil)
	b := newPod(t, "pod-b", rs, nil)
	time.Sleep(100 * time.Millisecond)
	a.appendTag("before")
	waitFor(t, 5*time.Second, "first record", func() bool { return b.has("before") })

	rs.stop()
	for i := 0; i < 5; i++ {
		a.appendTag("during-" + strconv.Itoa(i))
	}
	waitFor(t, 5*time.Second, "publish errors", func() bool { return a.br.Stats().PublishErrors > 0 })
	rs.start() // empty: the outage lost the stream
	for i := 0; i < 5; i++ {
		tag := "during-" + strconv.Itoa(i)
		waitFor(t, 10*time.Second, "record appended during the outage", func() bool { return b.has(tag) })
	}
	a.appendTag("after")
	waitFor(t, 5*time.Second, "record after the outage", func() bool { return b.has("after") })
	if s := b.br.Stats(); s.ReadErrors == 0 || s.Gaps != 0 {
		t.Fatalf("pod b bridge stats %+v", s)
	}
}

func TestBridgeRestartResumes(t *testing.T) {
	rs := startRedis(t)
	a := newPod(t, "pod-a", rs, nil)
	b := newPod(t, "pod-b", rs, nil)
	time.Sleep(100 * time.Millisecond)
	a.appendTag("one")
	waitFor(t, 5*time.Second, "first record", func() bool { return b.has("one") })

	// Pod b's bridge is down while pod a publishes, and pod b's app
	// purges locally meanwhile.
	b.stopBr()
	for i := 0; i < 50; i++ {
		a.appendTag("while-down-" + strconv.Itoa(i))
	}
	b.appendTag("b-local-while-down")
	waitFor(t, 5*time.Second, "pod a published", func() bool { return a.br.Stats().Published == 51 })
	b.startBridge(rs, nil)
	for i := 0; i < 50; i++ {
		tag := "while-down-" + strconv.Itoa(i)
		waitFor(t, 10*time.Second, "records published while pod b's bridge was down", func() bool { return b.has(tag) })
	}
	waitFor(t, 5*time.Second, "pod b's local record published after restart", func() bool { return a.has("b-local-while-down") })
	if b.count("one") != 1 {
		t.Fatalf("pod b applied the first record %d times", b.count("one"))
	}
	if s := b.br.Stats(); s.Gaps != 0 || s.SkippedOld != 0 {
		t.Fatalf("restarted bridge stats %+v", s)
	}
}

func TestBridgeStreamTrimmedIsAGap(t *testing.T) {
	rs := startRedis(t)
	small := func(o *redisbridge.Options) { o.MaxLen = 10 }
	a := newPod(t, "pod-a", rs, small)
	b := newPod(t, "pod-b", rs, small)
	time.Sleep(100 * time.Millisecond)
	a.appendTag("first")
	waitFor(t, 5*time.Second, "first record", func() bool { return b.has("first") })
	b.stopBr()
	for i := 0; i < 500; i++ {
		a.appendTag("burst-" + strconv.Itoa(i))
	}
	waitFor(t, 10*time.Second, "pod a published", func() bool { return a.br.Stats().Published == 501 })
	b.startBridge(rs, small)
	waitFor(t, 10*time.Second, "the gap noticed", func() bool { return b.br.Stats().Gaps == 1 })
	waitFor(t, 5*time.Second, "compensating purge applied", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, r := range b.applied {
			if r.Kind == invalidate.KindAll && r.Origin == redisbridge.StreamGapOrigin {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "the newest record", func() bool { return b.has("burst-499") })
}

func TestBridgeBadEntries(t *testing.T) {
	rs := startRedis(t)
	b := newPod(t, "pod-b", rs, nil)
	time.Sleep(100 * time.Millisecond)
	c := rs.client()
	defer c.Close()
	ctx := context.Background()
	good, _ := invalidate.AppendRecord(nil, &invalidate.Record{Seq: 1, Kind: invalidate.KindTag, Payload: []byte("good")})
	unknown, _ := invalidate.AppendRecord(nil, &invalidate.Record{Seq: 2, Kind: 99, Payload: []byte("x")})
	for _, v := range [][]any{
		{"pod", "x", "rec", "garbage"},
		{"pod", "x"},
		{"pod", "x", "rec", string(good[:len(good)-1])},
		{"pod", "x", "rec", string(unknown)},
		{"pod", "x", "rec", string(good)},
	} {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "zerohop:invalidations", Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the good record", func() bool { return b.has("good") })
	if s := b.br.Stats(); s.BadEntries != 4 || s.Received != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOptions(t *testing.T) {
	if _, err := redisbridge.New(redisbridge.Options{}); !errors.Is(err, redisbridge.ErrOptions) {
		t.Fatal(err)
	}
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// go-redis logs every failed dial of the outage tests.
func init() { redis.SetLogger(discardLogger{}) }
