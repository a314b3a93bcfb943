package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/testproc"
)

func init() { testproc.Register("netns-load", netnsLoad) }

// netnsLoad runs in the app namespace. "hits N": N cached GETs of one
// URL through the forward listener (absolute form) and N through
// interception (origin form to the upstream's address), in alternating
// blocks on one keep-alive connection each; it prints each path's p50
// and p99 in nanoseconds. "stream BYTES": BYTES through the intercepted
// sink port (9001) and the same to the port not intercepted (9002); it
// prints each one's median nanoseconds over five alternating rounds.
func netnsLoad() int {
	args := strings.Fields(os.Getenv("ZEROHOP_LOAD"))
	n, _ := strconv.Atoi(args[1])
	switch args[0] {
	case "hits":
		fwd, err := newLoadConn("127.0.0.1:8089", "GET http://"+nsUpAddr+"/bench HTTP/1.1\r\nHost: "+nsUpAddr+"\r\n\r\n")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		tr, err := newLoadConn(nsUpAddr+":80", "GET /bench HTTP/1.1\r\nHost: "+nsUpAddr+"\r\n\r\n")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var df, dt []time.Duration
		const block = 500
		for done := 0; done < n; done += block {
			for _, lc := range []*loadConn{fwd, tr} {
				for range min(block, n-done) {
					d, err := lc.do()
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						return 1
					}
					if lc == fwd {
						df = append(df, d)
					} else {
						dt = append(dt, d)
					}
				}
			}
		}
		fmt.Printf("%d %d %d %d\n", pct(df, 50), pct(df, 99), pct(dt, 50), pct(dt, 99))
	case "stream":
		// Five rounds, alternating, and each path's median: one stream
		// is at the mercy of whatever else the machine runs.
		var ds [2][]time.Duration
		for range 5 {
			for i, port := range []string{"9001", "9002"} {
				d, err := stream(nsUpAddr+":"+port, n)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				ds[i] = append(ds[i], d)
			}
		}
		fmt.Printf("%d %d\n", pct(ds[0], 50), pct(ds[1], 50))
	}
	return 0
}

type loadConn struct {
	c   net.Conn
	br  *bufio.Reader
	req string
}

func newLoadConn(addr, req string) (*loadConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	lc := &loadConn{c: c, br: bufio.NewReader(c), req: req}
	for range 50 { // warm: the entry stored, the path's buffers grown
		if _, err := lc.do(); err != nil {
			return nil, err
		}
	}
	return lc, nil
}

func (lc *loadConn) do() (time.Duration, error) {
	t := time.Now()
	if _, err := io.WriteString(lc.c, lc.req); err != nil {
		return 0, err
	}
	res, err := http.ReadResponse(lc.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", res.StatusCode)
	}
	return time.Since(t), nil
}

func pct(ds []time.Duration, p int) int64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return int64(s[(len(s)-1)*p/100])
}

func stream(addr string, n int) (time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	t := time.Now()
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got, _ := strconv.Atoi(strings.TrimSpace(line)); got < n {
		return 0, fmt.Errorf("sink got %d of %d bytes", got, n)
	}
	return time.Since(t), nil
}

// runLoad runs the load role in the app namespace.
func (e *netnsEnv) runLoad(spec string) []int64 {
	e.t.Helper()
	out, err := e.in("env", testproc.Env+"=netns-load", "ZEROHOP_LOAD="+spec, os.Args[0], "-test.run=^$")
	if err != nil {
		e.t.Fatalf("load %q: %v\n%s", spec, err, out)
	}
	var vs []int64
	for f := range strings.FieldsSeq(out) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			e.t.Fatalf("load %q: %q", spec, out)
		}
		vs = append(vs, v)
	}
	return vs
}

// BenchmarkTransparent measures the two speed goals side by side
// in one run: a cached response through interception against the same
// hit through the forward listener (p50 ratio, goal ≤ 1.1), and a
// passed-through TCP stream against the same stream not intercepted
// (throughput ratio, goal ≥ 0.9). It needs root, as the tests do; run
// with -benchtime 20000x (b.N requests per path; b.N×2 KiB, at least
// 32 MiB, streamed five times each way).
func BenchmarkTransparent(b *testing.B) {
	e := newNetnsEnv(b)
	e.startUpstream()
	e.startSidecar("")
	e.iptables("--proxy-uid", strconv.Itoa(proxyUID), "--ports", "80,9001", "--ipv6", "false")
	b.ResetTimer()
	h := e.runLoad("hits " + strconv.Itoa(b.N))
	s := e.runLoad("stream " + strconv.Itoa(max(b.N*2<<10, 32<<20)))
	b.StopTimer()
	b.ReportMetric(float64(h[0])/1e3, "fwd-p50-µs")
	b.ReportMetric(float64(h[2])/1e3, "transparent-p50-µs")
	b.ReportMetric(float64(h[2])/float64(h[0]), "p50-ratio")
	b.ReportMetric(float64(h[3])/float64(h[1]), "p99-ratio")
	b.ReportMetric(float64(s[1])/float64(s[0]), "passthrough-throughput-ratio")
	b.ReportMetric(float64(max(b.N*2<<10, 32<<20))/float64(s[1])*1e3, "direct-MB/s")
	b.ReportMetric(float64(max(b.N*2<<10, 32<<20))/float64(s[0])*1e3, "passthrough-MB/s")
}
