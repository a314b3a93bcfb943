package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEgressPolicyAndCredentials runs the real sidecar with an egress
// policy (default deny, an audit file) and a cluster with a bearer
// credential from a file, and uses it as an app would through its
// forward listener: allowed and refused destinations by absolute-form
// GET and by CONNECT, each with its audit line; the credential reaches
// the upstream, is rotated by replacing the file while requests run, and
// appears nowhere the sidecar writes or answers: not the responses, the
// access log, stderr (at debug level), the audit file or /metrics.
func TestEgressPolicyAndCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Echo", r.Header.Get("Authorization")) // an upstream that echoes it
		io.WriteString(w, "api")
	}))
	defer api.Close()
	var openHits, blockedHits atomic.Int64
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		openHits.Add(1)
		io.WriteString(w, "open")
	}))
	defer open.Close()
	blocked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blockedHits.Add(1)
		io.WriteString(w, "blocked")
	}))
	defer blocked.Close()
	port := func(s *httptest.Server) string { _, p, _ := net.SplitHostPort(s.Listener.Addr().String()); return p }
	hostport := func(s *httptest.Server) string { return s.Listener.Addr().String() }

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	writeSecret := func(v string) {
		if err := os.WriteFile(secretFile+".tmp", []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(secretFile+".tmp", secretFile); err != nil {
			t.Fatal(err)
		}
	}
	const first, second = "first-secret-4f2a9c1d", "second-secret-8e7b3a60"
	writeSecret(first)
	audit, access := filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "access.log")
	cfg := filepath.Join(dir, "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: forward, forward: {allow_loopback: true}}
clusters:
  - name: api
    endpoints: [{url: %q}]
    credentials: {type: bearer, file: %q, check_interval: 10ms}
routes:
  - {name: api, match: {host: api.internal}, cluster: api}
egress:
  default: deny
  audit_log: %q
  rules:
    - {name: blocked-port, action: deny, ports: [%q]}
    - {name: open-origin, action: allow, cidrs: [127.0.0.1/32], ports: [%q]}
`, api.URL, secretFile, audit, port(blocked), port(open))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "ZEROHOP_ACCESS_LOG="+access, "ZEROHOP_LOG_LEVEL=debug")
	c := d.client()

	// Egress: GET and CONNECT, allowed and refused.
	get := func(u string) (*http.Response, string) {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get(open.URL + "/x"); resp.StatusCode != 200 || body != "open" {
		t.Fatalf("allowed GET: %d %q", resp.StatusCode, body)
	}
	for _, u := range []string{blocked.URL + "/x", "http://127.0.0.1:1/x"} {
		resp, body := get(u)
		want := map[bool]string{true: "blocked-port", false: "default"}[strings.HasPrefix(u, blocked.URL)]
		if resp.StatusCode != 403 || resp.Header.Get("X-Zerohop-Egress-Rule") != want || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q %q; want 403 by %s", u, resp.StatusCode, resp.Header.Get("X-Zerohop-Egress-Rule"), body, want)
		}
	}
	connect := func(dest string) (int, string) {
		conn, err := net.Dial("tcp", d.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			return resp.StatusCode, resp.Header.Get("X-Zerohop-Egress-Rule")
		}
		io.WriteString(conn, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
		in, err := http.ReadResponse(br, nil)
		if err != nil || in.StatusCode != 200 {
			t.Fatalf("through the tunnel: %v %v", err, in)
		}
		return 200, ""
	}
	if code, _ := connect(hostport(open)); code != 200 {
		t.Errorf("allowed CONNECT: %d", code)
	}
	if code, rule := connect(hostport(blocked)); code != 403 || rule != "blocked-port" {
		t.Errorf("refused CONNECT: %d %q", code, rule)
	}
	if blockedHits.Load() != 0 || openHits.Load() != 2 {
		t.Errorf("origin requests: open %d (want 2), blocked %d (want 0)", openHits.Load(), blockedHits.Load())
	}

	// Credentials: a loop of requests while the file is replaced.
	var failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, body := get("http://api.internal/v")
			if resp.StatusCode != 200 || body != "api" || resp.Header.Get("X-Echo") != "" {
				failed.Add(1)
			}
		}
	}()
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}
	waitFor(t, func() bool { return last() == "Bearer "+first }, "the first credential upstream")
	writeSecret(second)
	waitFor(t, func() bool { return last() == "Bearer "+second }, "the rotated credential upstream")
	close(stop)
	<-done
	if failed.Load() != 0 {
		t.Errorf("%d requests failed or saw the echo during the rotation", failed.Load())
	}
	mu.Lock()
	phase := 0
	for i, v := range seen {
		switch {
		case v == "Bearer "+first && phase == 0:
		case v == "Bearer "+second:
			phase = 1
		default:
			t.Fatalf("upstream request %d carried %q (phase %d)", i, v, phase)
		}
	}
	mu.Unlock()

	// A broken file (empty) keeps the value in use, logged without it.
	writeSecret("")
	waitFor(t, func() bool { // the file is checked on an upstream request
		get("http://api.internal/v")
		return strings.Contains(d.stderr.String(), "credential file unusable")
	}, "the broken file logged")
	if resp, body := get("http://api.internal/v"); resp.StatusCode != 200 || body != "api" || last() != "Bearer "+second {
		t.Errorf("with a broken file: %d %q, upstream saw %q; want the value in use", resp.StatusCode, body, last())
	}

	// The audit file: one JSON line per decision.
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Msg, Kind, Method, Destination, Address, Rule, Decision, Listener string
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, x)
	}
	for _, w := range []line{
		{Kind: "request", Method: "GET", Destination: hostport(open), Rule: "open-origin", Decision: "allow"},
		{Kind: "request", Method: "GET", Destination: hostport(blocked), Rule: "blocked-port", Decision: "deny"},
		{Kind: "request", Method: "GET", Destination: "127.0.0.1:1", Rule: "default", Decision: "deny"},
		{Kind: "tunnel", Method: "CONNECT", Destination: hostport(open), Rule: "open-origin", Decision: "allow"},
		{Kind: "tunnel", Method: "CONNECT", Destination: hostport(blocked), Rule: "blocked-port", Decision: "deny"},
	} {
		found := false
		for _, l := range lines {
			if l.Kind == w.Kind && l.Method == w.Method && l.Destination == w.Destination && l.Rule == w.Rule && l.Decision == w.Decision && l.Msg == "egress" && l.Listener == "app" {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit line %+v in:\n%s", w, b)
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d audit lines; want 5 (routed requests are not audited):\n%s", len(lines), b)
	}

	// The secrets, nowhere.
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`zerohop_egress_decisions_total{action="deny",listener="app",rule="blocked-port"} 2`,
		`zerohop_credential_reloads_total{cluster="api",result="ok"} 2`, `zerohop_credential_reloads_total{cluster="api",result="error"}`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	accessLog, _ := os.ReadFile(access)
	if !strings.Contains(string(accessLog), "api.internal") {
		t.Errorf("the access log has no line of the credentialed requests:\n%.2000s", accessLog)
	}
	for _, s := range []string{first, second} {
		for what, text := range map[string]string{"stderr": d.stderr.String(), "access log": string(accessLog),
			"audit log": string(b), "metrics": string(metrics)} {
			if strings.Contains(text, s) {
				t.Errorf("the %s carries the credential %q", what, s)
			}
		}
	}
}
