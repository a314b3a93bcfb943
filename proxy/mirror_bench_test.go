package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/cputime"
	"github.com/zerohop/zerohop/proxy"
)

// BenchmarkMissMirror is BenchmarkMiss's reverse/no-store miss without
// and with a mirror (100%): what a copy costs the sidecar per miss. The
// shadow origin is another process (this test binary, re-run as
// newMissOrigin alone), so that cpu-ns/op, the process's CPU per request,
// counts the copy's sending and not its serving; sent/op and dropped/op
// say how many copies went out.
func BenchmarkMissMirror(b *testing.B) {
	const req = "GET /nocache/item HTTP/1.1\r\nHost: app.local\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
	for _, mirrored := range []bool{false, true} {
		name := "none"
		if mirrored {
			name = "mirror"
		}
		b.Run(name, func(b *testing.B) {
			origin := newMissOrigin(b, "no-store")
			shadow := missOriginProcess(b)
			h := newHarness(b, harnessOptions{mode: config.ModeReverse, origin: origin,
				accessLog: slog.NewJSONHandler(io.Discard, nil), config: func(c *config.Config) {
					sc := cluster("shadow", shadow)
					sc.MaxIdleConns = 64 // as many as copies may be in flight: no dial per copy
					c.Clusters = append(c.Clusters, sc)
					if mirrored {
						c.Routes[0].Mirror = &config.Mirror{Cluster: "shadow", Percent: 100, MaxConcurrent: 64, Timeout: 10 * time.Second}
					}
				}})
			c := newMissClient(b, h.addr(), req)
			if err := c.do(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			sent0, dropped0 := mirrorCount(b, h.p, "sent"), mirrorCount(b, h.p, "dropped")
			cpu0 := cputime.Process()
			for b.Loop() {
				if err := c.do(); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cputime.Process() - cpu0
			b.StopTimer()
			// Let the last copies finish, so that the next variant does not
			// pay for them.
			for deadline := time.Now().Add(5 * time.Second); mirrored && time.Now().Before(deadline); {
				if mirrorCount(b, h.p, "sent")+mirrorCount(b, h.p, "dropped")+mirrorCount(b, h.p, "failed") >= float64(b.N+1) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric((mirrorCount(b, h.p, "sent")-sent0)/float64(b.N), "sent/op")
			b.ReportMetric((mirrorCount(b, h.p, "dropped")-dropped0)/float64(b.N), "dropped/op")
		})
	}
}

// mirrorCount is zerohop_mirror_requests_total{outcome}, summed over
// clusters.
func mirrorCount(b testing.TB, p *proxy.Proxy, outcome string) float64 {
	mfs, err := p.Gatherer().Gather()
	if err != nil {
		b.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "zerohop_mirror_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// missOriginEnv makes the test binary serve as a miss origin alone
// (missOriginProcess), printing its URL.
const missOriginEnv = "ZEROHOP_TEST_MISS_ORIGIN"

func init() {
	if os.Getenv(missOriginEnv) == "" {
		return
	}
	b := &testing.B{}
	defer func() { recover() }() // b is not a running benchmark: its Cleanup is never due
	fmt.Println(newMissOrigin(b, "no-store"))
	io.Copy(io.Discard, os.Stdin) // until the parent goes
	os.Exit(0)
}

// missOriginProcess starts newMissOrigin in a process of its own and
// returns its URL; it stops with the benchmark.
func missOriginProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), missOriginEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		b.Fatalf("miss origin process: %q %v", line, err)
	}
	return strings.TrimSpace(line)
}
