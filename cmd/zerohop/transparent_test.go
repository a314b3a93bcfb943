package main_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/testproc"
)

// The transparent-interception tests build their own network: two
// namespaces joined by a veth pair, addressed from 198.18.0.0/15 (the
// benchmarking range, RFC 2544: never anyone's real host), an app
// namespace with the sidecar and its iptables rules, and an upstream
// namespace with an HTTP server (80), a TLS server (443) and a TCP echo
// server (9000). They need root (network namespaces, iptables) and skip
// with the reason otherwise; CI runs them as root.

const (
	nsAppAddr  = "198.18.7.1"
	nsUpAddr   = "198.18.7.2"
	nsAppAddr6 = "fd5a:7::1" // a unique local prefix of the test's own
	nsUpAddr6  = "fd5a:7::2"
	proxyUID   = 1337
)

func init() { testproc.Register("netns-upstream", netnsUpstream) }

// netnsUpstream serves the upstream namespace's three servers until its
// stdin closes. The HTTP server's body names the request and counts it.
func netnsUpstream() int {
	var hits atomic.Int64
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("X-Hits", strconv.FormatInt(n, 10))
		fmt.Fprintf(w, "upstream %s%s from %s via %q tls=%v\n", r.Host, r.URL.Path, r.RemoteAddr, r.Header.Get("Via"), r.TLS != nil)
	})
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(ln, mux)
	cert, err := selfSigned()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tln, err := tls.Listen("tcp", ":443", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(tln, mux)
	eln, err := net.Listen("tcp", ":9000")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := eln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "echo:%s", line)
				}
			}()
		}
	}()
	for _, port := range []string{":9001", ":9002"} { // sinks: read to EOF, answer the count
		sln, err := net.Listen("tcp", port)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			for {
				c, err := sln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "%d\n", n)
				}()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "upstream.test"},
		DNSNames: []string{"upstream.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// netnsEnv is a test's pair of namespaces.
type netnsEnv struct {
	t       testing.TB
	app, up string
	dir     string // shared with the sidecar's user
}

func needNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("transparent interception tests need root (network namespaces and iptables); CI runs them as root")
	}
	for _, c := range []string{"ip", "iptables", "iptables-save", "setpriv", "curl", "bash"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("transparent interception tests need %s (apt-get install iproute2 iptables util-linux curl)", c)
		}
	}
}

func newNetnsEnv(t testing.TB) *netnsEnv {
	needNetns(t)
	suffix := strconv.Itoa(os.Getpid() % 100000)
	e := &netnsEnv{t: t, app: "zhapp" + suffix, up: "zhup" + suffix}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", e.app).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (%v: %s); CI runs these tests as root", err, out)
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", e.app).Run()
		exec.Command("ip", "netns", "del", e.up).Run()
	})
	run("ip", "netns", "add", e.up)
	run("ip", "link", "add", "va"+suffix, "netns", e.app, "type", "veth", "peer", "name", "vu"+suffix, "netns", e.up)
	run("ip", "-n", e.app, "addr", "add", nsAppAddr+"/24", "dev", "va"+suffix)
	run("ip", "-n", e.up, "addr", "add", nsUpAddr+"/24", "dev", "vu"+suffix)
	run("ip", "-n", e.app, "addr", "add", nsAppAddr6+"/64", "dev", "va"+suffix, "nodad")
	run("ip", "-n", e.up, "addr", "add", nsUpAddr6+"/64", "dev", "vu"+suffix, "nodad")
	for _, ns := range []string{e.app, e.up} {
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	run("ip", "-n", e.app, "link", "set", "va"+suffix, "up")
	run("ip", "-n", e.up, "link", "set", "vu"+suffix, "up")
	if rate := os.Getenv("ZEROHOP_NETNS_LINK_RATE"); rate != "" {
		// A link of a real network's speed (e.g. 1gbit, 10gbit) instead of
		// the veth's CPU-bound copy: both directions shaped.
		for _, l := range [][2]string{{e.app, "va" + suffix}, {e.up, "vu" + suffix}} {
			run("ip", "netns", "exec", l[0], "tc", "qdisc", "add", "dev", l[1], "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms")
		}
	}
	// Everything else (the metadata address the egress test asks for)
	// is routed towards the upstream namespace, which answers nothing.
	run("ip", "-n", e.app, "route", "add", "default", "via", nsUpAddr)

	dir, err := os.MkdirTemp("", "zerohop-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	e.dir = dir
	return e
}

// in runs a command in the app namespace as root (the app: no proxy
// settings in its environment) and returns its output.
func (e *netnsEnv) in(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.app}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startUpstream runs the upstream role in the upstream namespace.
func (e *netnsEnv) startUpstream() {
	t := e.t
	cmd := exec.Command("ip", "netns", "exec", e.up, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), testproc.Env+"=netns-upstream")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("upstream did not start: %q %v", line, err)
	}
}

// startSidecar runs zerohop as proxyUID in the app namespace with a
// transparent listener on 127.0.0.1:15001, and extra configuration.
func (e *netnsEnv) startSidecar(extra string) {
	t := e.t
	cache := filepath.Join(e.dir, "cache")
	os.MkdirAll(cache, 0o755)
	os.Chown(cache, proxyUID, proxyUID)
	cfg := filepath.Join(e.dir, "zerohop.yaml")
	os.WriteFile(cfg, []byte(`listeners:
  - name: out
    address: 127.0.0.1:15001
    mode: transparent
  - name: fwd
    address: 127.0.0.1:8089
    mode: forward
  - name: out6
    address: "[::1]:15001"
    mode: transparent
admin: {address: "127.0.0.1:9901"}
cache: {dir: `+cache+`, size: 8MiB, region_size: 1536KiB}
`+extra), 0o644)
	cmd := exec.Command("ip", "netns", "exec", e.app, "setpriv", "--reuid="+strconv.Itoa(proxyUID), "--regid="+strconv.Itoa(proxyUID),
		"--clear-groups", bin, "run", "--config", cfg, "--access-log", "stderr", "--log-level", "debug")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	logf, _ := os.Create(filepath.Join(e.dir, "sidecar.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("sidecar log:\n%s", b)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, err := e.in("curl", "-sf", "http://127.0.0.1:9901/readyz"); err == nil {
			_ = out
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sidecar not ready after 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// iptables runs zerohop iptables in the app namespace.
func (e *netnsEnv) iptables(args ...string) string {
	e.t.Helper()
	out, err := e.in(append([]string{bin, "iptables"}, args...)...)
	if err != nil {
		e.t.Fatalf("zerohop iptables %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// metric returns a series' value from the sidecar's /metrics (0 if absent).
func (e *netnsEnv) metric(series string) float64 {
	out, err := e.in("curl", "-s", "http://127.0.0.1:9901/metrics")
	if err != nil {
		e.t.Fatalf("metrics: %v", err)
	}
	for l := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestTransparentInterception: an app with no proxy settings reaches its
// upstream through the sidecar, is served the second request from the
// cache, is refused a metadata address, and passes a non-HTTP exchange
// and a TLS handshake through unchanged; the sidecar's own connections
// are not redirected; cleanup leaves no rule.
func TestTransparentInterception(t *testing.T) {
	e := newNetnsEnv(t)
	e.startUpstream()
	e.startSidecar("")
	e.iptables("--proxy-uid", strconv.Itoa(proxyUID), "--ports", "80,443,9000", "--ipv6", "true")

	// IPv6: the original destination comes from IP6T_SO_ORIGINAL_DST.
	out6, err := e.in("curl", "-s", "-i", "http://["+nsUpAddr6+"]/six")
	if err != nil || !strings.Contains(out6, "upstream ["+nsUpAddr6+"]/six from ["+nsAppAddr6+"]") || !strings.Contains(out6, `via "1.1 zerohop"`) {
		t.Errorf("IPv6 request: want the upstream's answer through the sidecar (%v):\n%s", err, out6)
	}

	// A plain HTTP client, no proxy settings: stored, then a hit.
	var bodies []string
	for i := range 2 {
		out, err := e.in("curl", "-s", "-i", "http://"+nsUpAddr+"/hello")
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, out)
		}
		bodies = append(bodies, out)
	}
	if !strings.Contains(bodies[0], "200 OK") || !strings.Contains(bodies[0], "upstream "+nsUpAddr+"/hello from "+nsAppAddr) {
		t.Fatalf("first request: not the upstream's answer through the sidecar:\n%s", bodies[0])
	}
	if !strings.Contains(bodies[0], `via "1.1 zerohop"`) {
		t.Errorf("first request did not go through the sidecar (no Via):\n%s", bodies[0])
	}
	hits := func(resp string) string {
		for l := range strings.SplitSeq(resp, "\n") {
			if v, ok := strings.CutPrefix(l, "X-Hits: "); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	if h := hits(bodies[0]); h == "" || hits(bodies[1]) != h || !strings.Contains(strings.ToLower(bodies[1]), "; hit") {
		t.Errorf("second request: want a hit of the first response (X-Hits: %s, Cache-Status hit):\n%s", h, bodies[1])
	}

	// A refused destination: the cloud metadata service.
	out, _ := e.in("curl", "-s", "-i", "-m", "5", "http://169.254.169.254/latest/meta-data/")
	if !strings.Contains(out, "403") || !strings.Contains(out, "metadata") {
		t.Errorf("metadata address: want 403 naming the rule:\n%s", out)
	}

	// Non-HTTP TCP passes through unchanged.
	out, err = e.in("bash", "-c", "exec 3<>/dev/tcp/"+nsUpAddr+"/9000; echo hi >&3; head -1 <&3")
	if err != nil || strings.TrimSpace(out) != "echo:hi" {
		t.Errorf("echo through the sidecar: %q %v; want echo:hi", out, err)
	}
	// A TLS handshake passes through untouched: the upstream's own
	// certificate, the request inside not seen by the sidecar.
	out, err = e.in("curl", "-s", "-k", "-v", "https://"+nsUpAddr+"/tls")
	if err != nil || !strings.Contains(out, "CN=upstream.test") || !strings.Contains(out, "tls=true") || strings.Contains(out, "zerohop") {
		t.Errorf("TLS through the sidecar: want the upstream's certificate and answer, untouched (%v):\n%s", err, out)
	}

	if v := e.metric(`zerohop_intercepted_connections_total{listener="out",protocol="http"}`); v < 2 {
		t.Errorf("intercepted http connections %v; want >= 2", v)
	}
	for _, p := range []string{"other", "tls"} {
		if v := e.metric(`zerohop_intercepted_connections_total{listener="out",protocol="` + p + `"}`); v != 1 {
			t.Errorf("intercepted %s connections %v; want 1", p, v)
		}
	}
	if v := e.metric(`zerohop_intercept_refused_total{listener="out",reason="loop"}`); v != 0 {
		t.Errorf("%v loops: the sidecar's own connections were redirected", v)
	}

	// Cleanup removes every rule it added.
	e.iptables("--cleanup", "--ipv6", "true")
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if out, _ := e.in(save); strings.Contains(out, "ZEROHOP") {
			t.Errorf("rules left after --cleanup (%s):\n%s", save, out)
		}
	}
	// Without the rules the app reaches the upstream directly.
	out, _ = e.in("curl", "-s", "http://"+nsUpAddr+"/direct")
	if strings.Contains(out, "zerohop") || !strings.Contains(out, "upstream") {
		t.Errorf("after cleanup, a request still went through the sidecar:\n%s", out)
	}
}

// TestTransparentLoopRefused: rules that do not exempt the sidecar's user
// send its own connections back to it; that is detected and refused
// (508 for HTTP, a closed connection for passthrough), never recursed.
func TestTransparentLoopRefused(t *testing.T) {
	e := newNetnsEnv(t)
	e.startUpstream()
	e.startSidecar("")
	e.iptables("--proxy-uid", "4242", "--ports", "80,9000", "--ipv6", "false") // not the sidecar's user

	out, _ := e.in("curl", "-s", "-i", "-m", "10", "http://"+nsUpAddr+"/loop")
	if !strings.Contains(out, "508") {
		t.Errorf("HTTP through a loop: want 508 Loop Detected:\n%s", out)
	}
	out, _ = e.in("bash", "-c", "exec 3<>/dev/tcp/"+nsUpAddr+"/9000; echo hi >&3; timeout 10 head -1 <&3")
	if strings.Contains(out, "echo:hi") {
		t.Errorf("passthrough through a loop reached the upstream: %q", out)
	}
	if v := e.metric(`zerohop_intercept_refused_total{listener="out",reason="loop"}`); v < 2 {
		t.Errorf("loops refused %v; want >= 2 (one HTTP, one passthrough)", v)
	}
}

// TestTransparentBadInput: a connection that was not redirected, a
// stalled ClientHello and garbage bytes are each closed or passed
// through with a counted reason, never a hang or a crash.
func TestTransparentBadInput(t *testing.T) {
	e := newNetnsEnv(t)
	e.startUpstream()
	e.startSidecar("")
	e.iptables("--proxy-uid", strconv.Itoa(proxyUID), "--ports", "80,443", "--ipv6", "false")

	// Straight to the listener, not redirected: no original destination.
	out, err := e.in("curl", "-s", "-m", "5", "http://127.0.0.1:15001/")
	if err == nil || strings.Contains(out, "upstream") {
		t.Errorf("a request straight to the transparent listener was served: %q", out)
	}
	if v := e.metric(`zerohop_intercept_refused_total{listener="out",reason="no_original_dst"}`); v != 1 {
		t.Errorf("no_original_dst refusals %v; want 1", v)
	}

	// A ClientHello begun and never finished: closed once the sniff
	// timeout (200ms) ends, not held.
	out, _ = e.in("bash", "-c", `exec 3<>/dev/tcp/`+nsUpAddr+`/443; printf '\x16\x03\x01\x01\x00\x01' >&3; timeout 10 cat <&3; echo "rc=$?"`)
	if strings.Contains(out, "rc=124") || !strings.Contains(out, "rc=") {
		t.Errorf("stalled ClientHello: the connection was held open (want it closed or reset at once): %q", out)
	}
	if v := e.metric(`zerohop_intercept_refused_total{listener="out",reason="sniff"}`); v != 1 {
		t.Errorf("sniff refusals %v; want 1", v)
	}

	// Garbage to an HTTP port is not HTTP: passed through, and the
	// upstream's server answers it for itself.
	out, _ = e.in("bash", "-c", `exec 3<>/dev/tcp/`+nsUpAddr+`/80; printf '\x00\x01\x02 garbage\r\n\r\n' >&3; timeout 10 head -1 <&3`)
	if !strings.Contains(out, "400") {
		t.Errorf("garbage bytes: want the upstream's own 400, passed through: %q", out)
	}
	if v := e.metric(`zerohop_intercepted_connections_total{listener="out",protocol="other"}`); v != 1 {
		t.Errorf("passed-through connections %v; want 1", v)
	}
	// And the sidecar still serves.
	if out, err := e.in("curl", "-s", "http://"+nsUpAddr+"/after"); err != nil || !strings.Contains(out, "upstream") {
		t.Errorf("after bad input: %q %v", out, err)
	}
}

// TestTransparentEgressPolicy: the egress policy decides on intercepted
// connections: an HTTP request by its Host and the address dialled (403
// naming the rule), a TLS connection by its server name, other TCP by
// address and port; each decision audited.
func TestTransparentEgressPolicy(t *testing.T) {
	e := newNetnsEnv(t)
	e.startUpstream()
	audit := filepath.Join(e.dir, "audit")
	os.MkdirAll(audit, 0o755)
	os.Chown(audit, proxyUID, proxyUID)
	e.startSidecar(`egress:
  default: allow
  audit_log: ` + filepath.Join(audit, "egress.jsonl") + `
  rules:
    - {name: no-echo, action: deny, ports: [9000]}
    - {name: no-blocked-tls, action: deny, hosts: [blocked.test], schemes: [https]}
    - {name: no-denied-http, action: deny, hosts: [denied.test], schemes: [http]}
`)
	e.iptables("--proxy-uid", strconv.Itoa(proxyUID), "--ports", "80,443,9000", "--ipv6", "false")

	out, _ := e.in("curl", "-s", "-i", "-H", "Host: denied.test", "http://"+nsUpAddr+"/x")
	if !strings.Contains(out, "403") || !strings.Contains(out, "no-denied-http") {
		t.Errorf("HTTP to a denied host: want 403 naming the rule:\n%s", out)
	}
	if out, err := e.in("curl", "-s", "http://"+nsUpAddr+"/ok"); err != nil || !strings.Contains(out, "upstream") {
		t.Errorf("HTTP to an allowed host: %q %v", out, err)
	}
	out, err := e.in("curl", "-s", "-k", "-m", "5", "--resolve", "blocked.test:443:"+nsUpAddr, "https://blocked.test/")
	if err == nil || strings.Contains(out, "upstream") {
		t.Errorf("TLS to a denied server name got through: %q", out)
	}
	if out, err := e.in("curl", "-s", "-k", "-m", "5", "--resolve", "upstream.test:443:"+nsUpAddr, "https://upstream.test/ok"); err != nil || !strings.Contains(out, "tls=true") {
		t.Errorf("TLS to an allowed server name: %q %v", out, err)
	}
	out, _ = e.in("bash", "-c", "exec 3<>/dev/tcp/"+nsUpAddr+"/9000; echo hi >&3; timeout 5 head -1 <&3")
	if strings.Contains(out, "echo:hi") {
		t.Errorf("TCP to a denied port got through: %q", out)
	}
	if v := e.metric(`zerohop_intercept_refused_total{listener="out",reason="destination"}`); v != 2 {
		t.Errorf("passthrough refusals %v; want 2 (TLS by name, TCP by port)", v)
	}
	b, _ := os.ReadFile(filepath.Join(audit, "egress.jsonl"))
	for _, want := range []string{`"kind":"passthrough"`, `"rule":"no-echo"`, `"rule":"no-blocked-tls"`, `"rule":"no-denied-http"`, `"decision":"allow"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("audit log lacks %s:\n%s", want, b)
		}
	}
}
