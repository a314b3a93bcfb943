package main_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/testcert"
)

// TestTLSRotation runs the binary with a TLS listener that requires
// client certificates (ingress with mutual TLS) in front of an https
// origin that requires zerohop's client certificate, both sets of files
// mounted as Kubernetes mounts Secrets. While clients send requests, each
// Secret is updated: first with a broken pair (refused, counted, the old
// certificate still presented), then properly. No request fails, the
// kept-alive HTTP/2 connection is never dropped, new connections get the
// new certificates (the serial numbers seen by the peers), and a client
// without a certificate from the CA is refused.
func TestTLSRotation(t *testing.T) {
	ca, err := testcert.NewCA("zerohop test CA")
	check(t, err)
	other, err := testcert.NewCA("another CA")
	check(t, err)
	leaf := func(l *testcert.Leaf, err error) *testcert.Leaf {
		t.Helper()
		check(t, err)
		return l
	}
	srv1, srv2 := leaf(ca.Server(10, "127.0.0.1")), leaf(ca.Server(11, "127.0.0.1"))
	app, stranger := leaf(ca.Client(20, "app")), leaf(other.Client(21, "app"))
	up1, up2 := leaf(ca.Client(30, "zerohop")), leaf(ca.Client(31, "zerohop"))
	originCert := leaf(ca.Server(40, "127.0.0.1"))

	// The origin opens a connection per request, so each shows the client
	// certificate zerohop presents at that moment.
	var originSerial atomic.Value
	originSerial.Store("")
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originSerial.Store(r.TLS.PeerCertificates[0].SerialNumber.String())
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "origin")
	}))
	origin.TLS = &tls.Config{Certificates: []tls.Certificate{originCert.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	origin.Config.SetKeepAlivesEnabled(false)
	origin.StartTLS()
	t.Cleanup(origin.Close)

	dir := t.TempDir()
	lsDir, csDir := filepath.Join(dir, "listener-tls"), filepath.Join(dir, "upstream-tls")
	check(t, os.Mkdir(lsDir, 0o755))
	check(t, os.Mkdir(csDir, 0o755))
	files := func(l *testcert.Leaf, key []byte) map[string][]byte {
		return map[string][]byte{"tls.crt": l.CertPEM, "tls.key": key, "ca.crt": ca.PEM}
	}
	ls, err := testcert.NewSecret(lsDir, files(srv1, srv1.KeyPEM))
	check(t, err)
	cs, err := testcert.NewSecret(csDir, files(up1, up1.KeyPEM))
	check(t, err)
	cfg := filepath.Join(dir, "zerohop.yaml")
	check(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listeners:
  - name: in
    mode: reverse
    tls: {cert_file: %[1]s/tls.crt, key_file: %[1]s/tls.key, client_ca_file: %[1]s/ca.crt, min_version: "1.2"}
clusters:
  - name: origin
    endpoints: [{url: %[3]q}]
    tls: {ca_file: %[2]s/ca.crt, cert_file: %[2]s/tls.crt, key_file: %[2]s/tls.key}
routes:
  - {name: all, cluster: origin}
`, lsDir, csDir, origin.URL)), 0o644))
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	base := "https://" + d.listen

	clientTLS := func(l *testcert.Leaf) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool()}
		if l != nil {
			c.Certificates = []tls.Certificate{l.TLS}
		}
		return c
	}
	// The kept-alive client: HTTP/2 on one connection, whose dials are counted.
	var dials atomic.Int64
	keep := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: clientTLS(app), ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	// A client that opens a connection, and so a handshake, per request.
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(app), DisableKeepAlives: true}}
	resp, err := keep.Get(base + "/first")
	check(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "origin" || resp.ProtoMajor != 2 {
		t.Fatalf("through the TLS listener: %s %d %q; want HTTP/2 200 \"origin\"", resp.Proto, resp.StatusCode, body)
	}

	// Mutual TLS on the listener: no certificate, or one of another CA, is refused.
	for name, l := range map[string]*testcert.Leaf{"no client certificate": nil, "another CA's certificate": stranger} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(l)}}
		if resp, err := c.Get(base + "/refused"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: %d; want the handshake refused", name, resp.StatusCode)
		}
	}

	for _, r := range []string{"no_certificate", "untrusted"} {
		if v := d.metric(t, `zerohop_tls_client_refused_total{listener="in",reason="`+r+`"}`); v != 1 {
			t.Errorf("refused handshakes, %s: %v; want 1", r, v)
		}
	}

	// serverSerial is the serial of the certificate a new connection gets.
	serverSerial := func() string {
		c, err := tls.Dial("tcp", d.listen, clientTLS(app))
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serverSerial(); got != "10" {
		t.Fatalf("listener certificate serial %s; want 10", got)
	}

	var sent, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*http.Client{keep, keep, fresh} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(base + "/loop")
				sent.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	more := func() {
		n := sent.Load()
		waitFor(t, func() bool { return sent.Load() >= n+30 }, "more requests")
	}
	more()

	// A broken update: the new certificate with the old key.
	check(t, ls.Update(files(srv2, srv1.KeyPEM)))
	waitFor(t, func() bool {
		return d.metric(t, `zerohop_tls_reloads_total{kind="listener",name="in",result="error"}`) >= 1
	}, "the broken listener update to be refused and counted")
	more()
	if got := serverSerial(); got != "10" {
		t.Fatalf("after a broken update the listener presents serial %s; want the old 10", got)
	}
	// The real rotation.
	check(t, ls.Update(files(srv2, srv2.KeyPEM)))
	waitFor(t, func() bool { return serverSerial() == "11" }, "new connections to get the listener's new certificate (serial 11)")
	more()

	if got := originSerial.Load(); got != "30" {
		t.Fatalf("origin saw client certificate %v; want 30", got)
	}
	check(t, cs.Update(files(up2, up1.KeyPEM)))
	waitFor(t, func() bool {
		return d.metric(t, `zerohop_tls_reloads_total{kind="cluster",name="origin",result="error"}`) >= 1
	}, "the broken cluster update to be refused and counted")
	more()
	if got := originSerial.Load(); got != "30" {
		t.Fatalf("after a broken update the origin saw client certificate %v; want the old 30", got)
	}
	check(t, cs.Update(files(up2, up2.KeyPEM)))
	waitFor(t, func() bool { return originSerial.Load() == "31" }, "the origin to see zerohop's new client certificate (serial 31)")
	more()
	close(stop)
	wg.Wait()

	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed across the rotations: %q", f, sent.Load(), failures[:min(len(failures), 5)])
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the kept-alive client dialled %d times; want its one connection kept across the rotations", n)
	}
	for _, s := range []string{`zerohop_tls_reloads_total{kind="listener",name="in",result="ok"}`, `zerohop_tls_reloads_total{kind="cluster",name="origin",result="ok"}`} {
		if v := d.metric(t, s); v != 1 {
			t.Errorf("%s = %v; want 1", s, v)
		}
	}
	if v := d.metric(t, `zerohop_tls_certificate_expiry_timestamp_seconds{kind="listener",name="in"}`); v <= float64(time.Now().Unix()) {
		t.Errorf("listener certificate expiry gauge = %v", v)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTLSForwardListener: a forward listener may serve TLS too (an HTTPS
// proxy: the app's proxy URL is https://), through which plain http://
// URLs are fetched and cached as on a plain forward listener.
func TestTLSForwardListener(t *testing.T) {
	ca, err := testcert.NewCA("zerohop test CA")
	check(t, err)
	srv, err := ca.Server(1, "127.0.0.1")
	check(t, err)
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "forwarded")
	}))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	check(t, os.WriteFile(cert, srv.CertPEM, 0o600))
	check(t, os.WriteFile(key, srv.KeyPEM, 0o600))
	cfg := filepath.Join(dir, "zerohop.yaml")
	check(t, os.WriteFile(cfg, []byte(fmt.Sprintf("listeners:\n  - {name: egress, mode: forward, tls: {cert_file: %s, key_file: %s}}\n", cert, key)), 0o644))
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "https", Host: d.listen}), TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
	}}
	for i := range 2 {
		resp, err := c.Get(origin.URL + "/f")
		check(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "forwarded" {
			t.Fatalf("request %d through the HTTPS proxy: %d %q", i+1, resp.StatusCode, body)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin hit %d times; want 1 (the second request a cache hit)", n)
	}
}
