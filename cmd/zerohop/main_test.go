package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/testproc"
	"github.com/zerohop/zerohop/shm"
)

var bin string

func TestMain(m *testing.M) {
	if os.Getenv(testproc.Env) != "" {
		testproc.Main(m) // a child process playing a role (an upstream in a network namespace)
	}
	dir, err := os.MkdirTemp("", "zerohop-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "zerohop")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemon is a real zerohop process.
type daemon struct {
	cmd    *exec.Cmd
	listen string
	admin  string
	dir    string
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// syncBuffer is a bytes.Buffer that the process's output copier writes
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// baseEnv is the environment every test daemon starts with; later
// entries (a test's own) win.
func (d *daemon) baseEnv() []string {
	return append(os.Environ(),
		"ZEROHOP_LISTEN="+d.listen, "ZEROHOP_ADMIN="+d.admin, "ZEROHOP_CACHE_DIR="+d.dir,
		"ZEROHOP_CACHE_SIZE=32MiB", "ZEROHOP_ACCESS_LOG=off", "ZEROHOP_LOG_FORMAT=text",
		// The tests' origins are on loopback, which forward listeners
		// refuse by default.
		"ZEROHOP_FORWARD_ALLOW_LOOPBACK=true")
}

// startDaemon starts the real binary on a new cache directory and waits
// until it is ready.
func startDaemon(t *testing.T, env ...string) *daemon {
	t.Helper()
	return startReady(t, t.TempDir(), 20*time.Second, env...)
}

// startDaemonIn is startDaemon on a given cache directory, so that a test
// can kill a sidecar and start the next one on the same shared volume (a
// restart may replay the invalidation log and refill from the store before
// it is ready: it gets 30 s).
func startDaemonIn(t *testing.T, dir string, env ...string) *daemon {
	t.Helper()
	return startReady(t, dir, 30*time.Second, env...)
}

func startReady(t *testing.T, dir string, within time.Duration, env ...string) *daemon {
	t.Helper()
	d, _ := launchDaemon(t, dir, env...)
	if !d.waitReady(t, within) {
		t.Fatalf("zerohop exited before ready: %v\n%s", d.err, d.stderr)
	}
	return d
}

// launchDaemon starts the real binary on dir without waiting for it. It
// returns the daemon and a stop function that kills it by PID and waits
// for it; the test's cleanup calls it too.
func launchDaemon(t *testing.T, dir string, env ...string) (*daemon, func()) {
	t.Helper()
	d := &daemon{listen: freeAddr(t), admin: freeAddr(t), dir: dir, stderr: &syncBuffer{}, exited: make(chan struct{})}
	for d.admin == d.listen { // freeAddr closes its listener: the kernel may hand the port out twice
		d.admin = freeAddr(t)
	}
	d.cmd = exec.Command(bin, "run")
	d.cmd.Env = append(d.baseEnv(), env...)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	stop := func() {
		d.cmd.Process.Kill()
		<-d.exited
	}
	t.Cleanup(stop)
	return d, stop
}

// waitReady waits up to within for /readyz to answer 200, or for the
// process to exit (reported as false).
func (d *daemon) waitReady(t *testing.T, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if resp, err := http.Get("http://" + d.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		select {
		case <-d.exited:
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("zerohop not ready in %v\n%s", within, d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) client() *http.Client {
	u := &url.URL{Scheme: "http", Host: d.listen}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 10 * time.Second}
}

// TestRunServeDrainAdopt runs the binary on defaults plus environment
// variables, proxies a cacheable request, sends SIGTERM while a slow
// request is in flight (it must complete), and checks that the cache file
// was closed cleanly: the next writer adopts it, entry included.
func TestRunServeDrainAdopt(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer origin.Close()
	defer close(release)
	d := startDaemon(t)
	c := d.client()

	for i, want := range []string{"fwd=uri-miss", "hit"} {
		resp, err := c.Get(origin.URL + "/a")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "body of /a" || !strings.Contains(resp.Header.Get("Cache-Status"), want) {
			t.Fatalf("request %d: %q, Cache-Status %q; want %q", i, b, resp.Header.Get("Cache-Status"), want)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("origin saw %d requests; want 1", hits.Load())
	}

	// Admin probes and metrics are up on loopback.
	for _, path := range []string{"/healthz", "/metrics", "/stats"} {
		resp, err := http.Get("http://" + d.admin + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := c.Get(origin.URL + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	for hits.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the drain has begun
	release <- struct{}{}
	if got := <-slow; got != "body of /slow" {
		t.Fatalf("in-flight request during drain: %q", got)
	}
	select {
	case <-d.exited:
		if d.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", d.err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("zerohop did not exit after SIGTERM")
	}

	w, err := shm.OpenWriter(d.dir, &shm.Options{Size: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if s := w.Stats(); s.AdoptGen != 1 || s.Entries < 1 {
		t.Fatalf("after a clean shutdown the file should be adopted with its entries: %+v", s)
	}
}

// TestReloadOnConfigChange rewrites the config file under a running
// daemon: a new route takes effect without a restart; a broken file is
// rejected and the running configuration keeps serving.
func TestReloadOnConfigChange(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	defer b.Close()
	cfgPath := filepath.Join(t.TempDir(), "zerohop.yaml")
	write := func(upstream string) {
		yaml := fmt.Sprintf("listeners:\n  - {name: app, mode: reverse}\nclusters:\n  - name: svc\n    endpoints: [{url: %q}]\nroutes:\n  - {name: all, cluster: svc}\n", upstream)
		if err := os.WriteFile(cfgPath+".tmp", []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(cfgPath+".tmp", cfgPath)
	}
	write(a.URL)
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfgPath)
	get := func() string {
		resp, err := http.Get("http://" + d.listen + "/x")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got := get(); got != "A" {
		t.Fatalf("before reload: %q", got)
	}
	write(b.URL)
	waitFor(t, func() bool { return get() == "B" }, "reload to upstream B")
	os.WriteFile(cfgPath, []byte("routes: [oops\n"), 0o644)
	time.Sleep(300 * time.Millisecond)
	if got := get(); got != "B" {
		t.Fatalf("after a broken config: %q; want the old config still serving", got)
	}
	if !strings.Contains(d.stderr.String(), "config reload rejected") {
		t.Errorf("the rejected reload was not logged:\n%s", d.stderr)
	}
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !f() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("cache: {size: 64MiB}\n"), 0o644)
	os.WriteFile(bad, []byte("cache:\n  size: 64MB\nroutes:\n  - {name: r, cluster: nope}\n"), 0o644)
	for _, tt := range []struct {
		file     string
		wantCode int
		want     []string
	}{
		{good, 0, []string{"good.yaml: ok"}},
		{bad, 1, []string{"bad.yaml:2: cache.size:", "bad.yaml:4: routes[0].cluster: unknown cluster"}},
		{filepath.Join(dir, "missing.yaml"), 1, []string{"missing.yaml"}},
	} {
		out, err := exec.Command(bin, "validate", tt.file).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tt.wantCode {
			t.Errorf("validate %s: exit %d; want %d\n%s", tt.file, code, tt.wantCode, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("validate %s: output lacks %q:\n%s", tt.file, w, out)
			}
		}
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cache format 2.") {
		t.Fatalf("version: %v %s", err, out)
	}
}

func TestBadFlagFromEnvironment(t *testing.T) {
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "ZEROHOP_CACHE_SIZE=lots", "ZEROHOP_CACHE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--cache-size") {
		t.Fatalf("want a clear error naming --cache-size, got %v: %s", err, out)
	}
}

// TestPurge purges through the admin endpoint and through 'zerohop purge'
// (both append to the log the sidecar tails) and checks that the purged
// URL then goes upstream again.
func TestPurge(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Surrogate-Key", "group-"+r.URL.Query().Get("g"))
		io.WriteString(w, "body of "+r.URL.String())
	}))
	defer origin.Close()
	d := startDaemon(t)
	c := d.client()
	get := func(path string) string {
		resp, err := c.Get(origin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Cache-Status")
	}
	for _, tt := range []struct {
		name  string
		path  string
		purge func(t *testing.T)
	}{
		{"admin POST /purge by URL", "/a?g=1", func(t *testing.T) {
			resp, err := http.PostForm("http://"+d.admin+"/purge", url.Values{"key": {origin.URL + "/a?g=1"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"applied":true`) {
				t.Fatalf("purge: %d %s", resp.StatusCode, b)
			}
		}},
		{"zerohop purge --tag", "/b?g=2", func(t *testing.T) {
			out, err := exec.Command(bin, "purge", "--tag", "group-2", "--cache-dir", d.dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "applied") {
				t.Fatalf("zerohop purge: %v %s", err, out)
			}
		}},
		{"zerohop purge --prefix", "/c/x?g=3", func(t *testing.T) {
			out, err := exec.Command(bin, "purge", "--prefix", origin.URL+"/c/", "--cache-dir", d.dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "applied") {
				t.Fatalf("zerohop purge: %v %s", err, out)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			get(tt.path)
			if cs := get(tt.path); !strings.Contains(cs, "hit") {
				t.Fatalf("not cached before the purge: %q", cs)
			}
			before := hits.Load()
			tt.purge(t)
			if cs := get(tt.path); strings.Contains(cs, "hit") || hits.Load() != before+1 {
				t.Fatalf("after the purge: Cache-Status %q, origin requests +%d; want a miss", cs, hits.Load()-before)
			}
		})
	}
	// Bad input is refused with a clear error, nothing appended.
	resp, err := http.PostForm("http://"+d.admin+"/purge", url.Values{"key": {"not a url"}})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("purge of a bad URL: %v %v; want 400", err, resp)
	}
	out, err := exec.Command(bin, "purge", "--cache-dir", d.dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exactly one") {
		t.Errorf("purge with nothing to purge: %v %s", err, out)
	}
}

// TestPurgeAcrossPods runs two sidecars (two "pods", each with its own
// cache directory) bridged through a real redis-server on loopback: a purge
// appended in one is applied in the other.
func TestPurgeAcrossPods(t *testing.T) {
	redisAddr := startRedis(t)

	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "shared body")
	}))
	defer origin.Close()
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("invalidation:\n  redis: {address: %q, stream: \"zerohop:test\"}\n", redisAddr)), 0o644)
	a := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "POD_NAME=pod-a")
	b := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "POD_NAME=pod-b")
	status := func(d *daemon) string {
		resp, err := d.client().Get(origin.URL + "/shared")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Cache-Status")
	}
	for _, d := range []*daemon{a, b} {
		status(d)
		if cs := status(d); !strings.Contains(cs, "hit") {
			t.Fatalf("not cached: %q", cs)
		}
	}
	resp, err := http.PostForm("http://"+a.admin+"/purge", url.Values{"key": {origin.URL + "/shared"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge in pod A: %v %v", err, resp)
	}
	resp.Body.Close()
	if cs := status(a); strings.Contains(cs, "hit") {
		t.Fatalf("pod A still hits after its own purge: %q", cs)
	}
	// Pod B applies the record when it arrives through Redis.
	waitFor(t, func() bool {
		m, err := http.Get("http://" + b.admin + "/metrics")
		if err != nil {
			return false
		}
		defer m.Body.Close()
		body, _ := io.ReadAll(m.Body)
		return strings.Contains(string(body), `zerohop_invalidation_bridge_total{direction="received"} 1`)
	}, "pod B to receive the purge through Redis")
	waitFor(t, func() bool { return !strings.Contains(status(b), "hit") }, "pod B to drop the purged URL")
}

// TestWarmRestartFromStore: a sidecar with a persistent store caches a
// URL and stops; a new sidecar with an empty cache directory (the pod was
// rescheduled, its tmpfs lost) and the same store answers the URL without
// asking the origin.
func TestWarmRestartFromStore(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "persisted body")
	}))
	defer origin.Close()
	storeDir := filepath.Join(t.TempDir(), "store")
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("store: {path: %q}\n", storeDir)), 0o644)
	get := func(d *daemon) (string, string) {
		resp, err := d.client().Get(origin.URL + "/p")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Cache-Status")
	}
	a := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	if body, _ := get(a); body != "persisted body" || hits.Load() != 1 {
		t.Fatalf("first request: %q, origin hits %d", body, hits.Load())
	}
	a.cmd.Process.Signal(syscall.SIGTERM) // drains the store's queue, syncs
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	b := startDaemon(t, "ZEROHOP_CONFIG="+cfg) // a new, empty cache directory
	var body, cs string
	waitFor(t, func() bool { body, cs = get(b); return strings.Contains(cs, "hit") }, "a hit after the restart")
	if body != "persisted body" || hits.Load() != 1 {
		t.Fatalf("after restart: %q (%s), origin hits %d; want the persisted body without asking the origin", body, cs, hits.Load())
	}
}

// TestUnusableStoreRunsMemoryOnly: a store path that cannot be a store
// (a regular file) must not stop the sidecar, which serves memory-only and
// says so.
func TestUnusableStoreRunsMemoryOnly(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("store: {path: %q}\n", notDir)), 0o644)
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	if !strings.Contains(d.stderr.String(), "MEMORY-ONLY") {
		t.Errorf("no loud warning:\n%s", d.stderr)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	resp, err := d.client().Get(origin.URL + "/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("memory-only sidecar does not serve: %v %v", err, resp)
	}
	resp.Body.Close()
}

// startRedis runs a real redis-server on a free loopback port, without
// persistence, stopped by its PID when the test ends, and returns its
// address; the test is skipped when redis-server is not installed.
func startRedis(t *testing.T) string {
	t.Helper()
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (CI installs it)")
	}
	redisAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(redisAddr)
	rs := exec.Command(redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Process.Kill(); rs.Wait() })
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", redisAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "redis-server")
	return redisAddr
}
