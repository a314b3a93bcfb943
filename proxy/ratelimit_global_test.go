package proxy_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zerohop/zerohop/config"
)

// startRedis runs a real redis-server on a free loopback port and returns
// its address and a function that kills it by PID (also run at cleanup).
func startRedis(t *testing.T, args ...string) (addr string, kill func()) {
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
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
	cmd.Dir = t.TempDir() // a cluster node writes its nodes.conf here
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	kill = func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(kill)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, kill
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func globalLimit(name, addr string, rate int64, onError config.LimitOnError) config.Limit {
	return config.Limit{Name: name, Rate: rate, Period: time.Minute, Key: config.KeyHeader, Header: "X-Tenant",
		Global: &config.GlobalLimit{Redis: config.LimitRedis{Address: addr}, Timeout: 200 * time.Millisecond, OnError: onError}}
}

// TestGlobalRateLimitBothPaths: a global limit answers the same on both
// entry paths, with the same 429 as a local one; a refused key is then
// refused locally, without a round trip (outcome local_reject).
func TestGlobalRateLimitBothPaths(t *testing.T) {
	addr, _ := startRedis(t)
	var res [2][]*result
	for pi, plain := range []bool{false, true} {
		// One limit in the one Redis; each path its own keys.
		name, key := "tenants", []string{"fast-", "plain-"}[pi]
		h := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: plain,
			config: withLimits([]config.Limit{globalLimit(name, addr, 2, config.FailOpen)}, []string{name}, nil)})
		for range 4 {
			res[pi] = append(res[pi], h.get("/f", "X-Tenant", key+"t1"))
		}
		res[pi] = append(res[pi], h.get("/f", "X-Tenant", key+"t2"))
		for _, o := range []struct {
			outcome string
			want    float64
		}{{"allowed", 3}, {"rejected", 1}, {"local_reject", 1}, {"error_open", 0}} {
			if got := limitMetric(t, h.p, "zerohop_ratelimit_decisions_total", name, o.outcome); got != o.want {
				t.Errorf("plain=%v: %s %v; want %v", plain, o.outcome, got, o.want)
			}
		}
	}
	for i, want := range []int{200, 200, 429, 429, 200} {
		a, b := res[0][i], res[1][i]
		if a.StatusCode != want || b.StatusCode != want {
			t.Errorf("#%d: fast %d net/http %d; want %d", i, a.StatusCode, b.StatusCode, want)
		}
		if want == 429 {
			if a.Header.Get("Retry-After") != "30" || a.Header.Get("Ratelimit-Policy") != `"tenants";q=2;w=60` ||
				a.Header.Get("Ratelimit") != `"tenants";r=0;t=30` {
				t.Errorf("#%d: %v; want Retry-After 30 and the RateLimit fields", i, a.Header)
			}
		}
		sameAnswer(t, "global", "fast", "net/http", a, b, a.body, b.body)
	}
}

// TestGlobalRateLimitRedisStopped: Redis killed mid-test; a limit with
// on_error: open lets requests through, one with on_error: closed refuses
// them, each counted, and neither waits longer than its timeout.
func TestGlobalRateLimitRedisStopped(t *testing.T) {
	addr, kill := startRedis(t)
	open := newHarness(t, harnessOptions{handler: filterUpstream,
		config: withLimits([]config.Limit{globalLimit("open", addr, 100, config.FailOpen)}, []string{"open"}, nil)})
	closed := newHarness(t, harnessOptions{handler: filterUpstream, plainServer: true,
		config: withLimits([]config.Limit{globalLimit("closed", addr, 100, config.FailClosed)}, []string{"closed"}, nil)})
	for _, h := range []*harness{open, closed} {
		if r := h.get("/f", "X-Tenant", "t"); r.StatusCode != 200 {
			t.Fatalf("with Redis: %d", r.StatusCode)
		}
	}
	kill()
	for i := range 3 {
		start := time.Now()
		ro := open.get("/f", "X-Tenant", "t")
		rc := closed.get("/f", "X-Tenant", "t")
		if ro.StatusCode != 200 || rc.StatusCode != 429 {
			t.Errorf("#%d without Redis: open %d, closed %d; want 200 and 429", i, ro.StatusCode, rc.StatusCode)
		}
		if rc.Header.Get("Retry-After") == "" || rc.body != "rate limit exceeded\n" {
			t.Errorf("#%d: closed answer %v %q", i, rc.Header, rc.body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("#%d: %v for two requests; want about the 200ms timeouts", i, d)
		}
	}
	if n := limitMetric(t, open.p, "zerohop_ratelimit_decisions_total", "open", "error_open"); n != 3 {
		t.Errorf("error_open %v; want 3", n)
	}
	if n := limitMetric(t, closed.p, "zerohop_ratelimit_decisions_total", "closed", "error_closed"); n != 3 {
		t.Errorf("error_closed %v; want 3", n)
	}
	if n := limitMetric(t, closed.p, "zerohop_ratelimit_redis_errors_total", "closed", ""); n != 3 {
		t.Errorf("redis errors %v; want 3", n)
	}
}

// TestGlobalRateLimitRedisCluster: a global limit on a real Redis Cluster
// (one node serving every slot): the limit holds, and all its keys hash
// to the slot of its tag.
func TestGlobalRateLimitRedisCluster(t *testing.T) {
	addr, _ := startRedis(t, "--cluster-enabled", "yes")
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.ClusterInfo(ctx).Val(), "cluster_state:ok"); {
		if time.Now().After(deadline) {
			t.Fatal("the cluster did not become ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lim := globalLimit("clustered", addr, 2, config.FailClosed)
	lim.Global.Redis.Cluster = true
	h := newHarness(t, harnessOptions{handler: filterUpstream, config: withLimits([]config.Limit{lim}, []string{"clustered"}, nil)})
	var got []int
	for _, k := range []string{"a", "a", "a", "b"} {
		got = append(got, h.get("/f", "X-Tenant", k).StatusCode)
	}
	if fmt.Sprint(got) != "[200 200 429 200]" {
		t.Errorf("through the cluster: %v; want [200 200 429 200]", got)
	}
	if n := limitMetric(t, h.p, "zerohop_ratelimit_redis_errors_total", "clustered", ""); n != 0 {
		t.Errorf("%v Redis errors", n)
	}
	keys := c.Keys(ctx, "zerohop:rl:*").Val()
	slots := map[int64]bool{}
	for _, k := range keys {
		slots[c.ClusterKeySlot(ctx, k).Val()] = true
	}
	if len(keys) != 2 || len(slots) != 1 || !slots[c.ClusterKeySlot(ctx, "{clustered}").Val()] {
		t.Errorf("keys %v in slots %v; want both in the slot of {clustered}", keys, slots)
	}
}
