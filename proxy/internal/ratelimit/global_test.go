package ratelimit

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a real redis-server on a free loopback port and returns
// its address and a function that kills it by PID (also run at cleanup).
func startRedis(t *testing.T) (addr string, kill func()) {
	t.Helper()
	addr, kill = startRedisB(t)
	t.Cleanup(kill)
	return addr, kill
}

// startRedisB is startRedis for a test or a benchmark; the caller kills it.
func startRedisB(t testing.TB) (addr string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (.ci/run installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-done
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, kill
		}
		if time.Now().After(deadline) {
			kill()
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestClient(t *testing.T, addr string, timeout time.Duration) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		PoolTimeout: timeout, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// calls is how many times Redis ran cmd (INFO commandstats).
func calls(t *testing.T, c *redis.Client, cmd string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestGlobal: GCRA in Redis (burst, then refusals with a wait), the keys
// under the limit's hash tag, a refused key refused again without a round
// trip, and the script run by its hash (EVALSHA), loaded again with EVAL
// when Redis forgot it.
func TestGlobal(t *testing.T) {
	addr, _ := startRedis(t)
	c := newTestClient(t, addr, time.Second)
	ctx := context.Background()
	g := NewGlobal(c, "api", Rule{Interval: int64(time.Second) / 10, Burst: 5}, 100, true) // 10/s, burst 5
	for i := range 5 {
		d, o, err := g.Take(ctx, "tenant-1", 0)
		if err != nil || o != Allowed || !d.Allowed || d.Remaining != int64(4-i) {
			t.Fatalf("#%d: %+v %v %v; want allowed with %d remaining", i, d, o, err, 4-i)
		}
	}
	d, o, err := g.Take(ctx, "tenant-1", 0)
	if err != nil || o != Rejected || d.Allowed || d.Wait <= 0 || d.Wait > int64(100*time.Millisecond) {
		t.Fatalf("6th: %+v %v %v; want rejected, free within 100ms", d, o, err)
	}
	// The keys live under the hash tag: one Cluster slot per limit.
	if n, err := c.Exists(ctx, "zerohop:rl:{api}:tenant-1").Result(); err != nil || n != 1 {
		t.Errorf("key zerohop:rl:{api}:tenant-1: %d %v", n, err)
	}
	if ttl := c.PTTL(ctx, "zerohop:rl:{api}:tenant-1").Val(); ttl <= 0 || ttl > 600*time.Millisecond {
		t.Errorf("the key expires in %v; want when the bucket is full again (~500ms)", ttl)
	}
	// Refused again at once, here, without asking Redis.
	before := calls(t, c, "evalsha") + calls(t, c, "eval")
	for range 10 {
		if _, o, _ := g.Take(ctx, "tenant-1", int64(time.Millisecond)); o != LocalReject {
			t.Fatalf("outcome %v; want local_reject", o)
		}
	}
	if after := calls(t, c, "evalsha") + calls(t, c, "eval"); after != before {
		t.Errorf("%d round trips for keys refused locally; want 0", after-before)
	}
	// Another key: by hash; after SCRIPT FLUSH, EVAL loads it again.
	evalsha := calls(t, c, "evalsha")
	if _, o, err := g.Take(ctx, "tenant-2", 0); o != Allowed || err != nil {
		t.Fatalf("tenant-2: %v %v", o, err)
	}
	if calls(t, c, "evalsha") != evalsha+1 {
		t.Errorf("the decision did not use EVALSHA")
	}
	c.ScriptFlush(ctx)
	eval := calls(t, c, "eval")
	if _, o, err := g.Take(ctx, "tenant-2", 0); o != Allowed || err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v %v", o, err)
	}
	if calls(t, c, "eval") != eval+1 {
		t.Errorf("NOSCRIPT did not fall back to EVAL")
	}
}

// TestGlobalFailure: Redis stalled (CLIENT PAUSE) past the timeout, then
// killed: the policy decides, with the error wrapped in ErrRedis, within
// about the timeout.
func TestGlobalFailure(t *testing.T) {
	addr, kill := startRedis(t)
	const timeout = 100 * time.Millisecond
	c := newTestClient(t, addr, timeout)
	admin := newTestClient(t, addr, 5*time.Second)
	ctx := context.Background()
	rule := Rule{Interval: int64(time.Millisecond), Burst: 1000}
	open := NewGlobal(c, "open", rule, 100, true)
	closed := NewGlobal(c, "closed", rule, 100, false)
	for _, g := range []*Global{open, closed} {
		if _, o, err := g.Take(ctx, "k", 0); o != Allowed || err != nil {
			t.Fatalf("before: %v %v", o, err)
		}
	}
	check := func(when string) {
		for _, tc := range []struct {
			g    *Global
			want Outcome
		}{{open, ErrorOpen}, {closed, ErrorClosed}} {
			start := time.Now()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			d, o, err := tc.g.Take(ctx, "k", 0)
			cancel()
			took := time.Since(start)
			if o != tc.want || d.Allowed != (tc.want == ErrorOpen) || !errors.Is(err, ErrRedis) {
				t.Errorf("%s: %+v %v %v; want %v", when, d, o, err, tc.want)
			}
			if took > 3*timeout {
				t.Errorf("%s: took %v; want about the timeout %v", when, took, timeout)
			}
		}
	}
	// Redis answering with an error: the key is not a string.
	for _, g := range []*Global{open, closed} {
		admin.LPush(ctx, g.prefix+"list", "x")
		if d, o, err := g.Take(ctx, "list", 0); !errors.Is(err, ErrRedis) || d.Allowed != (g == open) {
			t.Errorf("WRONGTYPE: %+v %v %v; want the policy and ErrRedis", d, o, err)
		}
	}
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	check("paused")
	kill()
	check("killed")
}

// BenchmarkGlobalTake is a decision through a real redis-server on
// loopback: half the keys under their limit (a round trip each), half far
// over it (answered by the local pre-check after their first refusal).
// It reports the p50 and p99 of the decisions that made a round trip and
// of those the pre-check answered, and the share of the over-limit
// decisions that needed no round trip.
func BenchmarkGlobalTake(b *testing.B) {
	addr, kill := startRedisB(b)
	defer kill()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	g := NewGlobal(c, "bench", Rule{Interval: 1, Burst: 1 << 40}, 100_000, true)            // never refuses
	over := NewGlobal(c, "over", Rule{Interval: int64(time.Hour), Burst: 1}, 100_000, true) // refuses all but one a key an hour
	ctx := context.Background()
	keys := make([]string, 256)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	var rt, pre []time.Duration
	local := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var o Outcome
		if i%2 == 0 {
			_, o, _ = g.Take(ctx, keys[i&255], int64(i))
		} else {
			_, o, _ = over.Take(ctx, keys[i&255], int64(i))
		}
		if d := time.Since(start); o == LocalReject {
			local++
			pre = append(pre, d)
		} else {
			rt = append(rt, d)
		}
	}
	b.StopTimer()
	pct := func(l []time.Duration, p int) float64 {
		if len(l) == 0 {
			return 0
		}
		slices.Sort(l)
		return float64(l[len(l)*p/100].Nanoseconds())
	}
	b.ReportMetric(pct(rt, 50), "rt-p50-ns")
	b.ReportMetric(pct(rt, 99), "rt-p99-ns")
	b.ReportMetric(pct(pre, 50), "local-p50-ns")
	b.ReportMetric(pct(pre, 99), "local-p99-ns")
	b.ReportMetric(float64(local)/float64(b.N/2+1), "over-limit-local-share")
}
