package main_test

import (
	"bufio"
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
	"sync/atomic"
	"testing"
	"time"
)

// TestForwardProxyCannotReachAdmin runs the real sidecar and attacks it
// as its app could: through the forward proxy, at the sidecar's own
// loopback-only admin endpoint (to purge the cache) and at the cloud
// metadata address. Each must be refused with a 403 before anything is
// dialled, the cached entry must survive, and an allowed destination
// must still work. The daemon allows loopback origins (startDaemon): the
// admin endpoint is refused even so, being the sidecar's own.
func TestForwardProxyCannotReachAdmin(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer origin.Close()
	d := startDaemon(t)
	c := d.client()
	cached := origin.URL + "/victim"
	status := func() string {
		resp, err := c.Get(cached)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Cache-Status")
	}
	status()
	if cs := status(); !strings.Contains(cs, "hit") {
		t.Fatalf("not cached: %q", cs)
	}
	_, adminPort, _ := net.SplitHostPort(d.admin)
	purge := "key=" + url.QueryEscape(cached)

	// send writes raw to the proxy and returns its answer and, for a
	// CONNECT that was established, the tunnel.
	send := func(t *testing.T, raw string) (*http.Response, string, net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", d.listen)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, raw)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		body := ""
		if !strings.HasPrefix(raw, "CONNECT") || resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		return resp, body, conn, br
	}
	refused := func(t *testing.T, resp *http.Response, body, reason string) {
		t.Helper()
		ps := resp.Header.Get("Proxy-Status")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(ps, "error=destination_ip_prohibited") || !strings.Contains(ps, reason) {
			t.Errorf("answer %d, Proxy-Status %q, body %q; want 403 destination_ip_prohibited (%s)", resp.StatusCode, ps, body, reason)
		}
	}

	t.Run("CONNECT to the admin address then POST /purge", func(t *testing.T) {
		resp, body, conn, br := send(t, "CONNECT "+d.admin+" HTTP/1.1\r\nHost: "+d.admin+"\r\n\r\n")
		if resp.StatusCode == 200 {
			// The tunnel is open: what the attack does next.
			fmt.Fprintf(conn, "POST /purge HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", d.admin, len(purge), purge)
			if r2, err := http.ReadResponse(br, nil); err == nil {
				b, _ := io.ReadAll(r2.Body)
				t.Errorf("CONNECT to the admin endpoint was established; POST /purge through it answered %d %s", r2.StatusCode, b)
			}
		}
		refused(t, resp, body, "self")
	})
	t.Run("absolute-form POST to localhost admin /purge", func(t *testing.T) {
		host := "localhost:" + adminPort
		resp, body, _, _ := send(t, fmt.Sprintf("POST http://%s/purge HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
			host, host, len(purge), purge))
		if resp.StatusCode == 200 {
			t.Errorf("POST http://%s/purge through the proxy answered 200: %s", host, body)
		}
		refused(t, resp, body, "self")
	})
	t.Run("absolute-form GET of admin /stats", func(t *testing.T) {
		resp, body, _, _ := send(t, "GET http://"+d.admin+"/stats HTTP/1.1\r\nHost: "+d.admin+"\r\n\r\n")
		refused(t, resp, body, "self")
	})
	if cs := status(); !strings.Contains(cs, "hit") {
		t.Errorf("the cached entry was purged through the proxy: Cache-Status %q", cs)
	}
	t.Run("CONNECT to the metadata address", func(t *testing.T) {
		start := time.Now()
		resp, body, _, _ := send(t, "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n")
		refused(t, resp, body, "metadata")
		t.Logf("refused in %v", time.Since(start))
	})
	t.Run("absolute-form GET of metadata.google.internal", func(t *testing.T) {
		resp, body, _, _ := send(t, "GET http://metadata.google.internal/computeMetadata/v1/ HTTP/1.1\r\nHost: metadata.google.internal\r\nMetadata-Flavor: Google\r\n\r\n")
		refused(t, resp, body, "metadata")
	})
	t.Run("an allowed destination still works, through CONNECT too", func(t *testing.T) {
		host := strings.TrimPrefix(origin.URL, "http://")
		resp, _, conn, br := send(t, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT to the allowed origin: %d", resp.StatusCode)
		}
		io.WriteString(conn, "GET /through-tunnel HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		r2, err := http.ReadResponse(br, nil)
		if err != nil || r2.StatusCode != 200 {
			t.Fatalf("through the tunnel: %v %v", err, r2)
		}
		b, _ := io.ReadAll(io.LimitReader(r2.Body, 100))
		if string(b) != "body of /through-tunnel" {
			t.Errorf("through the tunnel: %q", b)
		}
	})

	// The refusals are counted, by reason.
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`zerohop_egress_refused_total{listener="forward",reason="self"} 3`,
		`zerohop_egress_refused_total{listener="forward",reason="metadata"} 2`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestForwardProxyRefusesLoopbackByDefault: without the override a
// forward listener does not fetch from the pod's loopback.
func TestForwardProxyRefusesLoopbackByDefault(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer origin.Close()
	d := startDaemon(t, "ZEROHOP_FORWARD_ALLOW_LOOPBACK=false") // the last value wins
	resp, err := d.client().Get(origin.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || hits.Load() != 0 || !strings.Contains(string(b), "allow_loopback") {
		t.Errorf("GET of a loopback origin: %d %q, origin requests %d; want 403 naming allow_loopback and none", resp.StatusCode, b, hits.Load())
	}
}

// TestValidateWarnsOnOpenForwardListener: a forward listener on a
// non-loopback address is valid, with a warning.
func TestValidateWarnsOnOpenForwardListener(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		yaml string
		warn bool
	}{
		{"listeners: [{name: egress, address: '0.0.0.0:8089', mode: forward}]\n", true},
		{"listeners: [{name: egress, address: '127.0.0.1:8089', mode: forward}]\n", false},
	} {
		f := filepath.Join(dir, "z.yaml")
		os.WriteFile(f, []byte(tt.yaml), 0o644)
		var stdout, stderr strings.Builder
		cmd := exec.Command(bin, "validate", f)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("validate %s: %v %s %s", tt.yaml, err, stdout.String(), stderr.String())
		}
		warned := strings.Contains(stderr.String(), `warning: listeners[0].address: forward listener "egress" on "0.0.0.0:8089" is not a loopback address`)
		if warned != tt.warn || !strings.Contains(stdout.String(), ": ok") {
			t.Errorf("validate %s: stdout %q stderr %q; want warning %v", tt.yaml, stdout.String(), stderr.String(), tt.warn)
		}
	}
}
