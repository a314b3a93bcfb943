// Package bench is zerohop's latency regression suite. It starts an
// origin, the zerohop sidecar (as its own process) and, when they are
// installed, nginx, Varnish, HAProxy and Redis on loopback with private
// configurations, runs named scenarios side by side in one run, and reports
// percentiles (HdrHistogram), throughput, the server's CPU time per request
// and the ratios to each peer. Ratios, not absolute times, are what a
// shared and noisy machine can compare from run to run.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"
	"github.com/zerohop/zerohop/clients/go/zerohop"
)

var errPeerMissing = errors.New("not installed")

// Options configure a run. Zero fields take the documented defaults.
type Options struct {
	// Zerohop is the zerohop binary to run as the sidecar. Required.
	Zerohop string
	// Duration of each measurement. Default 3s.
	Duration time.Duration
	// Rate of the open-loop measurements, requests per second. Default 1000.
	Rate int
	// Conns is the concurrency of the throughput measurements. Default 8.
	Conns int
	// BodySize of the cached response. Default 1024.
	BodySize int
	// Only runs the scenarios whose names contain one of these. Default all.
	Only []string
	// Progress receives one line per step. Default os.Stderr.
	Progress io.Writer
	// SidecarConfig is a zerohop configuration file the sidecar runs
	// with (`zerohop run --config`), its first listener a forward one;
	// the suite's flags still set that listener's address, the admin
	// address and the cache. OriginPlaceholder in it is replaced by the
	// origin's address. Default "": the built-in defaults.
	SidecarConfig string
	// Headers are added to every request of the scenarios that go
	// through the sidecar's listener (sidecar-hit, sidecar-miss and
	// their warm-ups), e.g. the API key a SidecarConfig requires.
	// Default none.
	Headers http.Header
}

// Result is one scenario's measurement in one mode.
type Result struct {
	Scenario string  `json:"scenario"`
	Mode     string  `json:"mode"` // closed-1, open-<rate>, throughput-<conns>
	N        int64   `json:"n"`
	Errors   int64   `json:"errors"`
	P50us    float64 `json:"p50_us"`
	P90us    float64 `json:"p90_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p999_us"`
	MaxUs    float64 `json:"max_us"`
	RPS      float64 `json:"rps"`
	// ServerCPUus is the server process's CPU time per request.
	ServerCPUus float64 `json:"server_cpu_us,omitempty"`
	// PerCoreRPS is requests per second of server CPU time.
	PerCoreRPS float64 `json:"per_core_rps,omitempty"`
	Skipped    string  `json:"skipped,omitempty"`

	hist *hdrhistogram.Histogram
}

// Report is a whole run.
type Report struct {
	When          time.Time          `json:"when"`
	Host          string             `json:"host"`
	Options       map[string]any     `json:"options"`
	Results       []Result           `json:"results"`
	Ratios        map[string]float64 `json:"ratios"`
	SidecarMemKiB map[string]int64   `json:"sidecar_mem_kib,omitempty"`
}

// env is everything a run starts.
type env struct {
	opts      Options
	dir       string
	origin    *http.Server
	originURL string // http://127.0.0.1:port
	sidecar   *process
	scAddr    string
	scAdmin   string
	scDir     string
	scConfig  string // the run's copy of Options.SidecarConfig
	nginx     *process
	nginxAddr string
	varnish   *process
	varnAddr  string
	haproxy   *process
	haAddr    string
	redis     *process
	redisSock string
	body      []byte
	skipped   map[string]string // peer -> why it did not start
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if o.Conns <= 0 {
		o.Conns = 8
	}
	if o.BodySize <= 0 {
		o.BodySize = 1024
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
}

// Run starts everything, runs the scenarios and stops everything.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.Zerohop == "" {
		return nil, errors.New("bench: Options.Zerohop (the binary) is required")
	}
	dir, err := os.MkdirTemp("", "zerohop-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e := &env{opts: o, dir: dir, body: []byte(strings.Repeat("z", o.BodySize)), skipped: map[string]string{}}
	defer e.stop()
	if err := e.start(); err != nil {
		return nil, err
	}
	rep := &Report{When: time.Now().UTC(), Ratios: map[string]float64{}, Options: map[string]any{
		"duration": o.Duration.String(), "rate": o.Rate, "conns": o.Conns, "body_size": o.BodySize,
	}}
	if o.SidecarConfig != "" {
		rep.Options["sidecar_config"] = o.SidecarConfig
	}
	if len(o.Headers) > 0 {
		var names []string // not the values: an API key is a secret
		for k := range o.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		rep.Options["headers"] = names
	}
	rep.Host, _ = os.Hostname()
	rss, anon := rssKiB(e.sidecar.pid())
	rep.SidecarMemKiB = map[string]int64{"idle_rss": rss, "idle_rss_anon": anon}

	scenarios := e.scenarios()
	measuredGroups := map[string]bool{}
	for i, s := range scenarios {
		if !selected(s.name, o.Only) {
			continue
		}
		if s.group != "" {
			if !measuredGroups[s.group] {
				measuredGroups[s.group] = true
				rep.Results = append(rep.Results, e.measureGroup(ctx, scenarios, s.group)...)
			}
			continue
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if s.skip != "" {
			rep.Results = append(rep.Results, Result{Scenario: s.name, Skipped: s.skip})
			continue
		}
		if s.warm != nil {
			if err := s.warm(); err != nil {
				rep.Results = append(rep.Results, Result{Scenario: s.name, Skipped: "warm-up failed: " + err.Error()})
				continue
			}
		}
		for _, m := range s.modes {
			fmt.Fprintf(o.Progress, "[%2d/%d] %-22s %-14s ", i+1, len(scenarios), s.name, m)
			r := e.measure(s, m)
			fmt.Fprintf(o.Progress, "p50 %8.1fµs  p99 %8.1fµs  %9.0f req/s\n", r.P50us, r.P99us, r.RPS)
			rep.Results = append(rep.Results, r)
		}
	}
	rss, anon = rssKiB(e.sidecar.pid())
	rep.SidecarMemKiB["after_rss"], rep.SidecarMemKiB["after_rss_anon"] = rss, anon
	rep.computeRatios()
	return rep, nil
}

func selected(name string, only []string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if strings.Contains(name, o) {
			return true
		}
	}
	return false
}

// scenario is a named measurement.
type scenario struct {
	name string
	// group names scenarios whose latencies are compared with each other
	// (the miss path and the proxies it is held against): they are
	// measured together, in interleaved slices (see measureGroup).
	group  string
	skip   string
	server func() int // PID whose CPU is charged, or nil
	warm   func() error
	modes  []string
	op     func(workers int) op
}

const (
	modeClosed     = "closed-1"
	modeOpen       = "open"
	modeThroughput = "throughput"
)

// interleaveSlices is how many slices each scenario of a group is
// measured in, at least; openSlice is the longest slice of an open-loop
// measurement (one of 10 s is cut in 40).
const (
	interleaveSlices = 10
	openSlice        = 250 * time.Millisecond
)

// minOpenGroup is the least time a group's open-loop measurement runs:
// at 1000 requests a second, 10,000 samples, so that its p99 is the 100th
// worst rather than the 30th of a 3-second run.
const minOpenGroup = 10 * time.Second

// measureGroup measures the scenarios of group (each in its modes) in
// interleaved slices: for each mode, every scenario runs for one slice in
// turn, round after round, and each scenario's slices are merged. The
// machines this runs on are shared and noisy; run one after the other, a
// burst of noise lands on whichever scenario runs at that moment and skews
// the ratio between them (the open-loop p99 ratio moved between 0.84 and
// 10 across identical sequential runs). Interleaved, the noise is spread
// across all of them. The open loop's p99 is made of its rarest samples,
// so its slices are short (openSlice), and each round starts with the
// next scenario, so that none always runs right after the same other.
func (e *env) measureGroup(ctx context.Context, scenarios []scenario, group string) []Result {
	var members []scenario
	for i, s := range scenarios {
		if s.group != group || !selected(s.name, e.opts.Only) {
			continue
		}
		if s.skip != "" {
			continue
		}
		if s.warm != nil {
			if err := s.warm(); err != nil {
				s.skip = "warm-up failed: " + err.Error()
				scenarios[i] = s
				continue
			}
		}
		members = append(members, s)
	}
	var out []Result
	if len(members) == 0 {
		return out
	}
	for _, mode := range members[0].modes {
		parts := make([][]measured, len(members))
		ops := make([]op, len(members)) // one client each, kept across slices
		for i, s := range members {
			ops[i] = s.op(e.workers(mode))
		}
		d := e.opts.Duration
		if mode == modeOpen && d >= time.Second && d < minOpenGroup {
			d = minOpenGroup // not for sub-second smoke runs (tests)
		}
		slices := interleaveSlices
		if mode == modeOpen {
			slices = max(slices, int(d/openSlice))
		}
		for round := range slices {
			for k := range members {
				if ctx.Err() != nil {
					break
				}
				i := (round + k) % len(members)
				parts[i] = append(parts[i], e.run(members[i], mode, d/time.Duration(slices), ops[i]))
			}
		}
		for i, s := range members {
			r := merge(s, mode, e.opts, parts[i])
			fmt.Fprintf(e.opts.Progress, "[%s] %-22s %-14s p50 %8.1fµs  p99 %8.1fµs  %9.0f req/s\n", group, s.name, r.Mode, r.P50us, r.P99us, r.RPS)
			out = append(out, r)
		}
	}
	for _, s := range scenarios {
		if s.group == group && selected(s.name, e.opts.Only) && s.skip != "" {
			out = append(out, Result{Scenario: s.name, Skipped: s.skip})
		}
	}
	return out
}

// measured is one run of a scenario.
type measured struct {
	h       *hdrhistogram.Histogram
	n, errs int64
	cpu     float64 // server CPU seconds, -1 if unknown
	elapsed float64 // seconds
}

// workers is how many goroutines issue requests in mode.
func (e *env) workers(mode string) int {
	switch mode {
	case modeOpen:
		return 16
	case modeThroughput:
		return e.opts.Conns
	}
	return 1
}

// run runs scenario s in mode for d, issuing f.
func (e *env) run(s scenario, mode string, d time.Duration, f op) measured {
	var m measured
	var pid int
	if s.server != nil {
		pid = s.server()
	}
	cpu0, _ := cpuSeconds(pid)
	t0 := time.Now()
	switch mode {
	case modeOpen:
		m.h, m.n, m.errs = openLoop(e.opts.Rate, e.workers(mode), d, f)
	default:
		m.h, m.n, m.errs = closedLoop(e.workers(mode), d, f)
	}
	m.elapsed = time.Since(t0).Seconds()
	m.cpu = -1
	if pid != 0 {
		if cpu1, err := cpuSeconds(pid); err == nil {
			m.cpu = cpu1 - cpu0
		}
	}
	return m
}

func (e *env) measure(s scenario, mode string) Result {
	return merge(s, mode, e.opts, []measured{e.run(s, mode, e.opts.Duration, s.op(e.workers(mode)))})
}

// merge combines runs of scenario s in mode into one Result.
func merge(s scenario, mode string, o Options, parts []measured) Result {
	r := Result{Scenario: s.name, Mode: mode}
	switch mode {
	case modeOpen:
		r.Mode = fmt.Sprintf("open-%d", o.Rate)
	case modeThroughput:
		r.Mode = fmt.Sprintf("throughput-%d", o.Conns)
	}
	h := newHist()
	var elapsed, cpu float64
	cpuKnown := true
	for _, m := range parts {
		h.Merge(m.h)
		r.N += m.n
		r.Errors += m.errs
		elapsed += m.elapsed
		if m.cpu < 0 {
			cpuKnown = false
		}
		cpu += m.cpu
	}
	if s.server != nil && cpuKnown && r.N > 0 {
		r.ServerCPUus = cpu * 1e6 / float64(r.N)
		if cpu > 0 {
			r.PerCoreRPS = float64(r.N) / cpu
		}
	}
	if elapsed > 0 {
		r.RPS = float64(r.N) / elapsed
	}
	r.P50us = float64(h.ValueAtQuantile(50)) / 1e3
	r.P90us = float64(h.ValueAtQuantile(90)) / 1e3
	r.P99us = float64(h.ValueAtQuantile(99)) / 1e3
	r.P999us = float64(h.ValueAtQuantile(99.9)) / 1e3
	r.MaxUs = float64(h.Max()) / 1e3
	r.hist = h
	return r
}

// start brings up the origin, the sidecar and the installed peers.
func (e *env) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.originURL = "http://" + ln.Addr().String()
	e.origin = &http.Server{Handler: http.HandlerFunc(e.serveOrigin), ReadHeaderTimeout: 10 * time.Second}
	go e.origin.Serve(ln)

	// The sidecar, a separate process, as a forward proxy with a cache on
	// tmpfs when there is one.
	base := e.dir
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "zerohop-bench-"); err == nil {
			base = d
		}
	}
	e.scDir = filepath.Join(base, "cache")
	if e.scAddr, err = freePort(); err != nil {
		return err
	}
	if e.scAdmin, err = freePort(); err != nil {
		return err
	}
	if err := e.prepareSidecarConfig(); err != nil {
		return err
	}
	scWD, scArgs := e.sidecarArgs("--procs", "1")
	e.sidecar, err = startProcess("zerohop", scWD, e.opts.Zerohop, scArgs...)
	if err != nil {
		return err
	}
	if err := waitHTTP("http://"+e.scAdmin+"/readyz", e.sidecar); err != nil {
		return err
	}
	peer := func(name string, start func(dir, listen, origin string) (*process, error)) (*process, string) {
		addr, _ := freePort()
		d := filepath.Join(e.dir, name)
		os.MkdirAll(d, 0o755)
		p, err := start(d, addr, strings.TrimPrefix(e.originURL, "http://"))
		if err != nil {
			fmt.Fprintf(e.opts.Progress, "peer %s: %v (its scenarios are skipped)\n", name, err)
			e.skipped[name] = err.Error()
			return nil, ""
		}
		return p, addr
	}
	e.nginx, e.nginxAddr = peer("nginx", startNginx)
	e.varnish, e.varnAddr = peer("varnish", startVarnish)
	e.haproxy, e.haAddr = peer("haproxy", startHAProxy)
	if p, sock, err := startRedis(filepath.Join(e.dir)); err == nil {
		e.redis, e.redisSock = p, sock
	} else {
		fmt.Fprintf(e.opts.Progress, "peer redis: %v (its scenario is skipped)\n", err)
		e.skipped["redis"] = err.Error()
	}
	return nil
}

func (e *env) stop() {
	for _, p := range []*process{e.sidecar, e.nginx, e.varnish, e.haproxy, e.redis} {
		p.Stop()
	}
	if e.origin != nil {
		e.origin.Close()
	}
	if strings.HasPrefix(e.scDir, "/dev/shm/") {
		os.RemoveAll(filepath.Dir(e.scDir))
	}
}

// serveOrigin answers /cache/… with a cacheable body and anything else
// with an uncacheable one of the same size.
func (e *env) serveOrigin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if strings.HasPrefix(r.URL.Path, "/cache/") {
		h.Set("Cache-Control", "public, max-age=3600")
	} else {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", fmt.Sprint(len(e.body)))
	w.Write(e.body)
}

// httpOp returns an op doing GET url through a transport shared by the
// workers, reading the whole body.
func httpOp(proxy string, target string, workers int) op {
	return httpOpH(proxy, target, workers, nil)
}

// httpOpH is httpOp sending the fields hdr too.
func httpOpH(proxy string, target string, workers int, hdr http.Header) op {
	t := &http.Transport{MaxIdleConnsPerHost: workers + 1, DisableCompression: true}
	if proxy != "" {
		t.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})
	}
	c := &http.Client{Transport: t, Timeout: 10 * time.Second}
	return func(int) error {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}
}

func (e *env) scenarios() []scenario {
	all := []string{modeClosed, modeOpen, modeThroughput}
	latency := []string{modeClosed, modeOpen}
	cached := e.originURL + "/cache/item"
	uncached := e.originURL + "/nocache/item"
	sidecarPID := func() int { return e.sidecar.pid() }
	var zc *zerohop.Client
	ss := []scenario{
		{name: "app-hit-lookup", modes: []string{modeClosed}, warm: func() error {
			if err := e.warmVia(cached); err != nil {
				return err
			}
			var err error
			zc, err = zerohop.Open(e.scDir, &zerohop.Options{Sidecar: e.scAddr})
			return err
		}, op: func(workers int) op {
			u, _ := url.Parse(cached)
			bufs := make([][]byte, workers)
			for i := range bufs {
				bufs[i] = make([]byte, 64<<10)
			}
			return func(w int) error {
				if _, _, ok := zc.Get(bufs[w], "GET", "http", u.Host, u.RequestURI(), nil); !ok {
					return errors.New("miss")
				}
				return nil
			}
		}},
		{name: "app-hit-roundtrip", modes: []string{modeClosed}, op: func(workers int) op {
			c := &http.Client{Transport: zc.Transport()}
			return func(int) error {
				resp, err := c.Get(cached)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !strings.Contains(resp.Header.Get("Cache-Status"), "detail=shm") {
					return errors.New("not a shared-memory hit")
				}
				return nil
			}
		}},
		{name: "origin-direct", group: "miss", modes: latency, op: func(w int) op { return httpOp("", uncached, w) }},
		{name: "sidecar-hit", modes: all, server: sidecarPID, warm: func() error { return e.warmVia(cached) },
			op: func(w int) op { return httpOpH(e.scAddr, cached, w, e.opts.Headers) }},
		{name: "sidecar-miss", group: "miss", modes: latency, server: sidecarPID, op: func(w int) op { return httpOpH(e.scAddr, uncached, w, e.opts.Headers) }},
	}
	if e.nginx != nil {
		nginxPID := func() int { return e.nginx.pid() }
		ss = append(ss,
			scenario{name: "nginx-cache-hit", modes: all, server: nginxPID,
				warm: func() error { return warmDirect("http://" + e.nginxAddr + "/cache/item") },
				op:   func(w int) op { return httpOp("", "http://"+e.nginxAddr+"/cache/item", w) }},
			scenario{name: "nginx-proxy-pass", group: "miss", modes: latency, server: nginxPID,
				op: func(w int) op { return httpOp("", "http://"+e.nginxAddr+"/nocache/item", w) }})
	} else {
		ss = append(ss, scenario{name: "nginx-cache-hit", skip: e.why("nginx")}, scenario{name: "nginx-proxy-pass", skip: e.why("nginx")})
	}
	if e.varnish != nil {
		ss = append(ss, scenario{name: "varnish-hit", modes: all, server: func() int { return e.varnish.pid() },
			warm: func() error { return warmDirect("http://" + e.varnAddr + "/cache/item") },
			op:   func(w int) op { return httpOp("", "http://"+e.varnAddr+"/cache/item", w) }})
	} else {
		ss = append(ss, scenario{name: "varnish-hit", skip: e.why("varnish")})
	}
	if e.haproxy != nil {
		ss = append(ss, scenario{name: "haproxy-proxy", group: "miss", modes: latency, server: func() int { return e.haproxy.pid() },
			op: func(w int) op { return httpOp("", "http://"+e.haAddr+"/nocache/item", w) }})
	} else {
		ss = append(ss, scenario{name: "haproxy-proxy", skip: e.why("haproxy")})
	}
	if e.redis != nil {
		var rc *redis.Client
		ss = append(ss, scenario{name: "redis-get-uds", modes: []string{modeClosed}, server: func() int { return e.redis.pid() },
			warm: func() error {
				rc = redis.NewClient(&redis.Options{Network: "unix", Addr: e.redisSock, PoolSize: 16})
				return rc.Set(context.Background(), "item", e.body, 0).Err()
			},
			op: func(int) op {
				ctx := context.Background()
				return func(int) error { return rc.Get(ctx, "item").Err() }
			}})
	} else {
		ss = append(ss, scenario{name: "redis-get-uds", skip: e.why("redis")})
	}
	return append(ss, e.invalidationScenario(), e.warmRestartScenario())
}

// why says why a peer's scenarios are skipped.
func (e *env) why(peer string) string {
	if s, ok := e.skipped[peer]; ok {
		if strings.Contains(s, errPeerMissing.Error()) {
			return peer + " not installed"
		}
		return s
	}
	return peer + " not installed"
}

// warmVia fetches target through the sidecar, with Options.Headers.
func (e *env) warmVia(target string) error { return httpOpH(e.scAddr, target, 1, e.opts.Headers)(0) }
func warmDirect(target string) error {
	// Two requests: the first fills the peer's cache, the second must hit.
	f := httpOp("", target, 1)
	if err := f(0); err != nil {
		return err
	}
	return f(0)
}

// computeRatios derives the comparisons the issues set as targets.
func (r *Report) computeRatios() {
	get := func(s, mode string) *Result {
		for i := range r.Results {
			if r.Results[i].Scenario == s && strings.HasPrefix(r.Results[i].Mode, mode) && r.Results[i].Skipped == "" {
				return &r.Results[i]
			}
		}
		return nil
	}
	if a, n := get("app-hit-lookup", "closed"), get("nginx-cache-hit", "closed"); a != nil && n != nil && a.P50us > 0 {
		r.Ratios["app_hit_vs_nginx_hit_p50"] = n.P50us / a.P50us
		r.Ratios["app_hit_vs_nginx_hit_p99"] = n.P99us / a.P99us
	}
	if a, n := get("app-hit-lookup", "closed"), get("redis-get-uds", "closed"); a != nil && n != nil && a.P50us > 0 {
		r.Ratios["app_hit_vs_redis_uds_p50"] = n.P50us / a.P50us
	}
	for _, mode := range []string{"closed", "open"} {
		o, s, n := get("origin-direct", mode), get("sidecar-miss", mode), get("nginx-proxy-pass", mode)
		if o == nil || s == nil || n == nil {
			continue
		}
		for _, q := range []struct {
			name string
			f    func(*Result) float64
		}{{"p50", func(x *Result) float64 { return x.P50us }}, {"p99", func(x *Result) float64 { return x.P99us }}} {
			sidecarAdds, nginxAdds := q.f(s)-q.f(o), q.f(n)-q.f(o)
			if nginxAdds > 0 {
				r.Ratios["miss_overhead_vs_nginx_"+mode+"_"+q.name] = sidecarAdds / nginxAdds
			}
			// The same ratio for HAProxy, a proxy of nginx's class: how
			// far it strays from 1 is how far noise alone moves the
			// sidecar's (informational, no target).
			if h := get("haproxy-proxy", mode); h != nil && nginxAdds > 0 {
				r.Ratios["haproxy_overhead_vs_nginx_"+mode+"_"+q.name] = (q.f(h) - q.f(o)) / nginxAdds
			}
		}
	}
	if s, n := get("sidecar-hit", "throughput"), get("nginx-cache-hit", "throughput"); s != nil && n != nil && n.PerCoreRPS > 0 {
		r.Ratios["sidecar_hit_per_core_vs_nginx"] = s.PerCoreRPS / n.PerCoreRPS
	}
}
