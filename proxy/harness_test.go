package proxy_test

// The harness builds the real thing in-process: a shared-memory cache file
// (shm.Writer) in a temporary directory, real upstream HTTP servers on
// loopback sockets, the proxy from a config.Config, and a real http.Server
// serving the proxy's listener handler on 127.0.0.1:0. Nothing is mocked
// except the proxy's clock, which tests advance to age entries without
// sleeping.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
	"github.com/zerohop/zerohop/shm"
)

// wait bounds every blocking wait in these tests.
const wait = 5 * time.Second

// clock is the proxy's controllable clock. It starts at the real time
// (whole seconds) so that entries the proxy stores are also sensible to
// shm readers, which use the real clock, and only moves when a test
// advances it.
type clock struct {
	ns   atomic.Int64
	real bool // the wall clock: for timelines, whose phases need time to pass
}

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	return time.Unix(0, c.ns.Load())
}
func (c *clock) Advance(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *clock) HTTPDate() string           { return c.Now().UTC().Format(http.TimeFormat) }
func (c *clock) Ago(d time.Duration) string { return c.Now().Add(-d).UTC().Format(http.TimeFormat) }

// upstream is an origin server on a real loopback socket. It counts the
// requests it gets, remembers the last one's header, and stamps every
// response with a Date from the test clock (so that apparent_age stays
// consistent with the proxy's clock when tests advance it).
type upstream struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
	all  []string // "METHOD target" of every request, in order
}

// handlerFunc is an upstream behaviour; n is the 1-based number of this
// request at this upstream.
type handlerFunc func(w http.ResponseWriter, r *http.Request, n int64)

func newUpstream(t testing.TB, clk *clock, h handlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.all = append(u.all, r.Method+" "+r.URL.RequestURI())
		u.mu.Unlock()
		if clk != nil {
			w.Header().Set("Date", clk.HTTPDate())
		}
		h(w, r, n)
	}))
	t.Cleanup(u.Close)
	return u
}

// lastHeader returns the header of the last request the upstream got.
func (u *upstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		return http.Header{}
	}
	return u.last.Header.Clone()
}

func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.all...)
}

func (u *upstream) hostport() string { return strings.TrimPrefix(u.URL, "http://") }

// harness is one proxy with its cache, listener server and client.
type harness struct {
	t       testing.TB
	clock   *clock
	dir     string
	w       *shm.Writer
	cfg     *config.Config
	lis     config.Listener
	p       *proxy.Proxy
	srv     *httptest.Server
	up      *upstream // the default cluster's upstream (nil with opts.origin)
	origin  string    // base URL of the default cluster's upstream
	client  *http.Client
	logs    *logBuffer
	once    sync.Once
	closers []func()
}

type harnessOptions struct {
	mode     config.ListenerMode
	handler  handlerFunc // the upstream of cluster "main"
	origin   string      // instead of handler: the base URL of cluster "main"
	config   func(cfg *config.Config)
	listener func(l *config.Listener)
	server   func(s *http.Server)
	noCache  bool
	// plainServer serves with net/http alone, without the fast path
	// (proxy.FastListener) that the sidecar puts in front of it.
	plainServer bool
	// tier, if set, is what the proxy puts and looks up through (instead
	// of the writer itself).
	tier  func(w *shm.Writer) proxy.Cache
	clock *clock
	// accessLog, if set, receives the access log instead of h.logs.
	accessLog slog.Handler
}

// newHarness builds a proxy in mode with one upstream (cluster "main",
// route "main" in reverse mode; forward mode fetches the absolute URL
// through the egress transport unless opts.config adds routes).
func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, clock: o.clock, dir: t.TempDir(), logs: &logBuffer{}}
	if h.clock == nil {
		h.clock = newClock()
	}
	if o.mode == "" {
		o.mode = config.ModeReverse
	}
	t.Cleanup(h.close)
	if !o.noCache {
		w, err := shm.OpenWriter(h.dir, &shm.Options{Size: 4 << 20, RegionSize: 64 << 10, HeartbeatInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h.w = w
		h.closers = append(h.closers, func() { w.Close() })
	}
	h.origin = o.origin
	if o.handler != nil {
		h.up = newUpstream(t, h.clock, o.handler)
		h.origin = h.up.URL
	}
	cfg := config.Default()
	cfg.Cache.Dir = h.dir
	cfg.Admin.Address = ""
	cfg.Listeners[0].Name = "test"
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Listeners[0].Mode = o.mode
	if h.origin != "" {
		cfg.Clusters = []config.Cluster{cluster("main", h.origin)}
		if o.mode == config.ModeReverse {
			cfg.Routes = []config.Route{{Name: "main", Cluster: "main"}}
		}
	}
	// The origins of these tests are on loopback, which forward mode
	// refuses by default: every forward-mode test opts in here, the one
	// place, as an operator would (egress_test.go tests the refusal).
	cfg.Listeners[0].Forward.AllowLoopback = o.mode == config.ModeForward
	if o.listener != nil {
		o.listener(&cfg.Listeners[0])
	}
	if o.config != nil {
		o.config(cfg)
	}
	h.cfg = cfg
	h.lis = cfg.Listeners[0]
	var tier proxy.Cache
	if o.tier != nil {
		tier = o.tier(h.w)
	}
	var access slog.Handler = h.logs
	if o.accessLog != nil {
		access = o.accessLog
	}
	p, err := proxy.New(cfg, proxy.Options{
		Cache:     h.w,
		Tier:      tier,
		Now:       h.clock.Now,
		Logger:    testLogger(),
		AccessLog: slog.New(access),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.closers = append(h.closers, func() { p.Close() })
	h.srv = httptest.NewUnstartedServer(p.Handler(h.lis))
	// The listener's limits, as cmd/zerohop applies them to its server.
	h.srv.Config.ReadHeaderTimeout = h.lis.ReadHeaderTimeout
	h.srv.Config.IdleTimeout = h.lis.IdleTimeout
	h.srv.Config.MaxHeaderBytes = int(h.lis.MaxHeaderBytes)
	h.srv.Config.ErrorLog = slog.NewLogLogger(testLogger().Handler(), slog.LevelWarn)
	if o.server != nil {
		o.server(h.srv.Config)
	}
	if !o.plainServer {
		h.srv.Listener = p.FastListener(h.srv.Listener, h.lis, h.srv.Config)
	}
	h.srv.Start()
	p.AddLocalAddr(h.srv.Listener.Addr()) // as the sidecar does for its listeners
	h.closers = append(h.closers, h.srv.Close)
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 32}
	if o.mode == config.ModeForward {
		pu, _ := url.Parse(h.srv.URL)
		tr.Proxy = http.ProxyURL(pu)
	}
	h.client = &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	h.closers = append(h.closers, tr.CloseIdleConnections)
	return h
}

// close stops everything the harness started, in reverse order. It is
// idempotent and also registered with t.Cleanup.
func (h *harness) close() {
	h.once.Do(func() {
		for i := len(h.closers) - 1; i >= 0; i-- {
			h.closers[i]()
		}
		if h.up != nil {
			h.up.Close()
		}
	})
}

func cluster(name, u string) config.Cluster {
	return config.Cluster{
		Name:            name,
		Endpoints:       []config.Endpoint{{URL: u, Weight: 1}},
		ConnectTimeout:  2 * time.Second,
		ResponseTimeout: 10 * time.Second,
		MaxIdleConns:    16,
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("ZEROHOP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// addr is the proxy listener's host:port.
func (h *harness) addr() string { return strings.TrimPrefix(h.srv.URL, "http://") }

// url returns the URL a client uses for path: the proxy's own address in
// reverse mode, the upstream's absolute URL in forward mode.
func (h *harness) url(path string) string {
	if h.lis.Mode == config.ModeForward {
		return h.origin + path
	}
	return h.srv.URL + path
}

// result is a response read to the end.
type result struct {
	*http.Response
	body string
	err  error // error reading the body
}

func (r *result) cacheStatus() string { return r.Header.Get("Cache-Status") }

// do sends a request through the proxy and reads the whole response.
func (h *harness) do(method, path string, hdr http.Header, body io.Reader) *result {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url(path), body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) *result {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &result{Response: resp, body: string(b), err: err}
}

func (h *harness) get(path string, kv ...string) *result {
	h.t.Helper()
	return h.do(http.MethodGet, path, hdr(kv...), nil)
}

// key is the primary cache key of a GET of path, as the proxy builds it.
func (h *harness) key(path string) []byte {
	host := h.addr()
	if h.lis.Mode == config.ModeForward {
		host = strings.TrimPrefix(h.origin, "http://")
	}
	return shm.AppendKey(nil, http.MethodGet, "http", host, path)
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// dial opens a raw connection to the proxy, with the test deadline set and
// closed at cleanup, and a reader of its responses.
func (h *harness) dial() (net.Conn, *bufio.Reader) {
	h.t.Helper()
	c, err := net.Dial("tcp", h.addr())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return c, bufio.NewReader(c)
}

// rawRequest writes raw bytes to addr and returns what the server answers
// until it closes the connection or the deadline passes.
func rawRequest(t testing.TB, addr, raw string, deadline time.Duration) (status int, response string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	b, _ := io.ReadAll(c)
	response = string(b)
	br := bufio.NewReader(strings.NewReader(response))
	line, _ := br.ReadString('\n')
	fmt.Sscanf(line, "HTTP/1.1 %d", &status)
	return status, response
}

// newRawUpstream is an origin on a loopback socket whose connections are
// handed to serve as they are accepted, so that tests can answer what
// net/http never would (garbage, resets, short bodies). It returns the
// base URL. Everything is closed and waited for at cleanup.
func newRawUpstream(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * wait))
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + l.Addr().String()
}

// settleGoroutines waits (bounded) until the goroutine count drops to at
// most base and reports the last count.
func settleGoroutines(base int) int {
	deadline := time.Now().Add(wait)
	n := runtime.NumGoroutine()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// eventually polls cond (bounded) and reports whether it became true.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// logBuffer is a slog.Handler keeping access-log records.
type logBuffer struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *logBuffer) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuffer) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logBuffer) WithGroup(string) slog.Handler            { return l }
func (l *logBuffer) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logBuffer) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.recs...)
}

// statusLogged waits for the access-log line of the request with id and
// returns its status.
func (l *logBuffer) statusLogged(id string) (int64, bool) {
	var st int64
	ok := eventually(func() bool {
		for _, r := range l.records() {
			if r["request_id"] == id {
				st, _ = r["status"].(int64)
				return true
			}
		}
		return false
	})
	return st, ok
}

// cacheStatusTTL matches the ttl member of a Cache-Status value, which
// differs between two proxies answering the same request.
var cacheStatusTTL = regexp.MustCompile(`; ttl=-?\d+`)

// sameAnswer reports where two responses to the same request, through the
// proxies named la and lb, differ: status, body (as given, possibly
// normalized), error, framing, fields (request id, Date, Age and the
// Cache-Status ttl aside) and trailers.
func sameAnswer(t *testing.T, name, la, lb string, a, b *result, bodyA, bodyB string) {
	t.Helper()
	if a.StatusCode != b.StatusCode || bodyA != bodyB || (a.err == nil) != (b.err == nil) {
		t.Errorf("%s: %s %d %q (%v); %s %d %q (%v)", name, la, a.StatusCode, trunc(bodyA), a.err, lb, b.StatusCode, trunc(bodyB), b.err)
	}
	if a.ContentLength != b.ContentLength || !slices.Equal(a.TransferEncoding, b.TransferEncoding) {
		t.Errorf("%s: framing: %s CL %d TE %v; %s CL %d TE %v", name, la, a.ContentLength, a.TransferEncoding, lb, b.ContentLength, b.TransferEncoding)
	}
	for _, hh := range []http.Header{a.Header, b.Header} {
		hh.Del("Date")
		hh.Del("X-Request-Id")
		hh.Del("Age")
		if cs := hh.Get("Cache-Status"); cs != "" {
			hh.Set("Cache-Status", cacheStatusTTL.ReplaceAllString(cs, ""))
		}
	}
	if fmt.Sprint(a.Header) != fmt.Sprint(b.Header) {
		t.Errorf("%s: header\n%s: %v\n%s: %v", name, la, a.Header, lb, b.Header)
	}
	if fmt.Sprint(a.Trailer) != fmt.Sprint(b.Trailer) {
		t.Errorf("%s: trailer: %s %v; %s %v", name, la, a.Trailer, lb, b.Trailer)
	}
}
