package proxy_test

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/testcert"
)

// pki is a CA with a server certificate for 127.0.0.1 and api.internal,
// a client certificate, and a second, unrelated CA, written to files.
type pki struct {
	ca, other         *testcert.CA
	server, client    *testcert.Leaf
	dir               string
	caFile, otherCA   string
	certFile, keyFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	k := &pki{dir: t.TempDir()}
	var err error
	must := func(e error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	k.ca, err = testcert.NewCA("test CA")
	must(err)
	k.other, err = testcert.NewCA("other CA")
	must(err)
	k.server, err = k.ca.Server(100, "api.internal", "127.0.0.1")
	must(err)
	k.client, err = k.ca.Client(200, "zerohop")
	must(err)
	k.caFile, k.otherCA = k.write(t, "ca.pem", k.ca.PEM), k.write(t, "other.pem", k.other.PEM)
	k.certFile, k.keyFile = k.write(t, "client.pem", k.client.CertPEM), k.write(t, "client-key.pem", k.client.KeyPEM)
	return k
}

func (k *pki) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(k.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsOrigin is an https upstream on loopback that records what each
// request came with: SNI, HTTP version, the client certificate's serial.
type tlsOrigin struct {
	*httptest.Server
	mu      sync.Mutex
	sni     []string
	protos  []int
	serials []string
}

type originOptions struct {
	h2        bool                  // offer HTTP/2 (ALPN)
	noKeep    bool                  // a new connection for every request
	tlsConfig func(cfg *tls.Config) // more settings
}

func newTLSOrigin(t *testing.T, k *pki, o originOptions) *tlsOrigin {
	t.Helper()
	u := &tlsOrigin{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.sni = append(u.sni, r.TLS.ServerName)
		u.protos = append(u.protos, r.ProtoMajor)
		serial := ""
		if len(r.TLS.PeerCertificates) > 0 {
			serial = r.TLS.PeerCertificates[0].SerialNumber.String()
		}
		u.serials = append(u.serials, serial)
		u.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "tls ok")
	}))
	u.TLS = &tls.Config{Certificates: []tls.Certificate{k.server.TLS}}
	if o.tlsConfig != nil {
		o.tlsConfig(u.TLS)
	}
	u.EnableHTTP2 = o.h2
	u.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what the tests make
	if o.noKeep {
		u.Config.SetKeepAlivesEnabled(false)
	}
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func (u *tlsOrigin) seen() (sni []string, protos []int, serials []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.sni), slices.Clone(u.protos), slices.Clone(u.serials)
}

// tlsHarness is a reverse proxy whose cluster "main" reaches origin with
// client and tls.
func tlsHarness(t *testing.T, origin string, client config.ClusterClient, tc *config.UpstreamTLS) *harness {
	return tlsHarnessOn(t, false, origin, client, tc)
}

// tlsHarnessOn is tlsHarness behind net/http alone (plain) or behind the
// fast path.
func tlsHarnessOn(t *testing.T, plain bool, origin string, client config.ClusterClient, tc *config.UpstreamTLS) *harness {
	return newHarness(t, harnessOptions{origin: origin, plainServer: plain, config: func(cfg *config.Config) {
		cfg.Clusters[0].Client = client
		cfg.Clusters[0].TLS = tc
	}})
}

var upstreamClients = []config.ClusterClient{config.ClientH1, config.ClientStd}

// TestUpstreamTLSVerify: an https cluster is verified against its CA
// file, and refused (502) with a CA that did not sign the upstream's
// certificate or with the system roots; on both clients.
func TestUpstreamTLSVerify(t *testing.T) {
	k := newPKI(t)
	up := newTLSOrigin(t, k, originOptions{})
	for _, client := range upstreamClients {
		for _, tt := range []struct {
			name string
			tls  *config.UpstreamTLS
			want int
		}{
			{"right CA", &config.UpstreamTLS{CAFile: k.caFile, MinVersion: config.TLS12}, 200},
			{"wrong CA", &config.UpstreamTLS{CAFile: k.otherCA, MinVersion: config.TLS12}, 502},
			{"system roots", nil, 502},
			{"insecure", &config.UpstreamTLS{InsecureSkipVerify: true, MinVersion: config.TLS12}, 200},
		} {
			h := tlsHarness(t, up.URL, client, tt.tls)
			r := h.get("/v")
			if r.StatusCode != tt.want || tt.want == 200 && r.body != "tls ok" {
				t.Errorf("%s, %s: %d %q; want %d", client, tt.name, r.StatusCode, r.body, tt.want)
			}
			if tt.want == 502 && r.body != "zerohop: upstream TLS certificate not trusted\n" {
				t.Errorf("%s, %s: body %q; want the reason", client, tt.name, r.body)
			}
			h.close()
		}
	}
}

// TestUpstreamTLSServerName: server_name is sent as SNI and verified; an
// endpoint named by IP address is otherwise verified against the
// certificate's IP addresses, and SNI is not sent (RFC 6066 §3).
func TestUpstreamTLSServerName(t *testing.T) {
	k := newPKI(t)
	up := newTLSOrigin(t, k, originOptions{})
	for _, client := range upstreamClients {
		for _, tt := range []struct {
			name, serverName, wantSNI string
			want                      int
		}{
			{"server_name", "api.internal", "api.internal", 200},
			{"ip address", "", "", 200},
			{"name not in the certificate", "other.internal", "", 502},
		} {
			h := tlsHarness(t, up.URL, client, &config.UpstreamTLS{CAFile: k.caFile, ServerName: tt.serverName, MinVersion: config.TLS12})
			r := h.get("/sni")
			if r.StatusCode != tt.want {
				t.Errorf("%s, %s: status %d; want %d", client, tt.name, r.StatusCode, tt.want)
			}
			if tt.want == 200 {
				if sni, _, _ := up.seen(); len(sni) == 0 || sni[len(sni)-1] != tt.wantSNI {
					t.Errorf("%s, %s: SNI %q; want %q", client, tt.name, sni, tt.wantSNI)
				}
			}
			h.close()
		}
	}
}

// TestUpstreamTLSMinVersion: min_version 1.3 refuses an upstream that
// stops at TLS 1.2; the default (1.2) accepts it.
func TestUpstreamTLSMinVersion(t *testing.T) {
	k := newPKI(t)
	up := newTLSOrigin(t, k, originOptions{tlsConfig: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }})
	for _, client := range upstreamClients {
		for _, tt := range []struct {
			min  config.TLSVersion
			want int
		}{{config.TLS12, 200}, {config.TLS13, 502}} {
			h := tlsHarness(t, up.URL, client, &config.UpstreamTLS{CAFile: k.caFile, MinVersion: tt.min})
			r := h.get("/min")
			if r.StatusCode != tt.want {
				t.Errorf("%s, min_version %s: status %d; want %d", client, tt.min, r.StatusCode, tt.want)
			}
			if tt.want == 502 && !strings.HasPrefix(r.body, "zerohop: upstream TLS handshake refused: tls: protocol version not supported") {
				t.Errorf("%s, min_version %s: body %q; want the reason", client, tt.min, r.body)
			}
			h.close()
		}
	}
}

// TestUpstreamMutualTLS: an upstream that requires a client certificate
// from the CA accepts the cluster's, and refuses a cluster without one;
// on both clients, and on both entry paths (fast path and net/http).
func TestUpstreamMutualTLS(t *testing.T) {
	k := newPKI(t)
	up := newTLSOrigin(t, k, originOptions{tlsConfig: func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = k.ca.Pool()
	}})
	for _, plain := range []bool{false, true} {
		for _, client := range upstreamClients {
			testMutualTLS(t, k, up, plain, client)
		}
	}
}

func testMutualTLS(t *testing.T, k *pki, up *tlsOrigin, plain bool, client config.ClusterClient) {
	h := tlsHarnessOn(t, plain, up.URL, client, &config.UpstreamTLS{CAFile: k.caFile, CertFile: k.certFile, KeyFile: k.keyFile, MinVersion: config.TLS12})
	if r := h.get("/mtls"); r.StatusCode != 200 {
		t.Errorf("%s (net/http only: %v) with a client certificate: status %d; want 200", client, plain, r.StatusCode)
	} else if _, _, serials := up.seen(); serials[len(serials)-1] != k.client.Serial.String() {
		t.Errorf("%s: upstream saw client certificate %q; want serial %s", client, serials, k.client.Serial)
	}
	h.close()
	h = tlsHarnessOn(t, plain, up.URL, client, &config.UpstreamTLS{CAFile: k.caFile, MinVersion: config.TLS12})
	if r := h.get("/mtls"); r.StatusCode != 502 || !strings.HasPrefix(r.body, "zerohop: upstream TLS handshake refused: tls:") {
		t.Errorf("%s (net/http only: %v) without a client certificate: %d %q; want 502 with the alert", client, plain, r.StatusCode, r.body)
	}
	h.close()
}

// TestUpstreamHTTP2: client std negotiates HTTP/2 with a TLS upstream
// that offers it (the default client for https endpoints); h1 speaks
// HTTP/1.1 to the same upstream.
func TestUpstreamHTTP2(t *testing.T) {
	k := newPKI(t)
	up := newTLSOrigin(t, k, originOptions{h2: true})
	for _, tt := range []struct {
		client config.ClusterClient
		want   int
	}{{"", 2}, {config.ClientStd, 2}, {config.ClientH1, 1}} {
		h := tlsHarness(t, up.URL, tt.client, &config.UpstreamTLS{CAFile: k.caFile, MinVersion: config.TLS12})
		if r := h.get("/h2"); r.StatusCode != 200 {
			t.Fatalf("client %q: status %d", tt.client, r.StatusCode)
		}
		if _, protos, _ := up.seen(); protos[len(protos)-1] != tt.want {
			t.Errorf("client %q: upstream got HTTP/%d; want HTTP/%d", tt.client, protos[len(protos)-1], tt.want)
		}
		h.close()
	}
}

// TestUpstreamH2C: client h2c speaks HTTP/2 with prior knowledge to a
// plaintext upstream (an h2c server, as gRPC backends run); the
// default client speaks HTTP/1.1 to it.
func TestUpstreamH2C(t *testing.T) {
	var protos []int
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.ProtoMajor)
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "h2c ok")
	}))
	// HTTP/1.1 and h2c with prior knowledge, as a gRPC server listens
	// (net/http's own h2c, which replaced x/net's deprecated h2c package).
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		client config.ClusterClient
		want   int
	}{{config.ClientH2C, 2}, {"", 1}} {
		h := tlsHarness(t, srv.URL, tt.client, nil)
		for range 3 {
			if r := h.get("/grpc"); r.StatusCode != 200 || r.body != "h2c ok" {
				t.Fatalf("client %q: %d %q", tt.client, r.StatusCode, r.body)
			}
		}
		mu.Lock()
		got := protos[len(protos)-1]
		mu.Unlock()
		if got != tt.want {
			t.Errorf("client %q: upstream got HTTP/%d; want HTTP/%d", tt.client, got, tt.want)
		}
		h.close()
	}
}

// TestUpstreamClientCertRotation swaps the cluster's client certificate
// and CA files the way Kubernetes updates a Secret volume (a ..data
// symlink flip) while a client loop sends requests through the proxy:
// no request fails, and new connections present the new certificate
// (the upstream opens one per request). A broken update is refused,
// counted, and the last good certificate stays in use.
func TestUpstreamClientCertRotation(t *testing.T) {
	k := newPKI(t)
	// The upstream trusts client certificates of both CAs: the rotation
	// moves the client to a certificate of the second.
	both := k.ca.Pool()
	both.AddCert(k.other.Cert)
	up := newTLSOrigin(t, k, originOptions{noKeep: true, tlsConfig: func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = both
	}})
	secret, err := testcert.NewSecret(t.TempDir(), map[string][]byte{
		"tls.crt": k.client.CertPEM, "tls.key": k.client.KeyPEM, "ca.crt": k.ca.PEM,
	})
	if err != nil {
		t.Fatal(err)
	}
	next, err := k.other.Client(300, "zerohop")
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range upstreamClients {
		h := tlsHarness(t, up.URL, client, &config.UpstreamTLS{
			CAFile:   filepath.Join(secret.Dir, "ca.crt"),
			CertFile: filepath.Join(secret.Dir, "tls.crt"), KeyFile: filepath.Join(secret.Dir, "tls.key"),
			MinVersion: config.TLS12,
		})
		var failed, sent atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := h.client.Get(h.url("/rot"))
					sent.Add(1)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
					}
				}
			}()
		}
		lastSerial := func() string {
			_, _, s := up.seen()
			if len(s) == 0 {
				return ""
			}
			return s[len(s)-1]
		}
		waitLong(t, func() bool { return lastSerial() == k.client.Serial.String() }, "requests with the first certificate")
		// A broken update (a key of another certificate) keeps the old pair.
		if err := secret.Update(map[string][]byte{"tls.crt": next.CertPEM, "tls.key": k.client.KeyPEM, "ca.crt": k.ca.PEM}); err != nil {
			t.Fatal(err)
		}
		waitLong(t, func() bool { return counter(t, h.p, "zerohop_tls_reloads_total", "result", "error") >= 1 }, "the broken update to be refused")
		n := sent.Load()
		waitLong(t, func() bool { return sent.Load() > n+20 }, "requests after the broken update")
		if got := lastSerial(); got != k.client.Serial.String() {
			t.Fatalf("%s: after a broken update the upstream saw serial %s; want the old %s", client, got, k.client.Serial)
		}
		if err := secret.Update(map[string][]byte{"tls.crt": next.CertPEM, "tls.key": next.KeyPEM, "ca.crt": k.ca.PEM}); err != nil {
			t.Fatal(err)
		}
		waitLong(t, func() bool { return lastSerial() == next.Serial.String() }, "new connections to present the new certificate")
		n = sent.Load()
		waitLong(t, func() bool { return sent.Load() > n+20 }, "requests after the rotation")
		close(stop)
		wg.Wait()
		if f := failed.Load(); f != 0 {
			t.Errorf("%s: %d of %d requests failed across the rotation", client, f, sent.Load())
		}
		if ok := counter(t, h.p, "zerohop_tls_reloads_total", "result", "ok"); ok < 1 {
			t.Errorf("%s: reloads ok = %v", client, ok)
		}
		h.close()
		// Restore the first certificate for the next client's run.
		if err := secret.Update(map[string][]byte{"tls.crt": k.client.CertPEM, "tls.key": k.client.KeyPEM, "ca.crt": k.ca.PEM}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLong is waitUntil with room for a file watcher on a loaded machine.
func waitLong(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSListenerCacheKey: a request that reached a TLS listener has an
// https target URI (RFC 9110 §4.2.2): it is cached under that key, so an
// unsafe request on the same listener invalidates it (RFC 9111 §4.4), a
// plain listener's entry for the same path is another, and the upstream
// is told X-Forwarded-Proto: https.
func TestTLSListenerCacheKey(t *testing.T) {
	k := newPKI(t)
	h := newHarness(t, harnessOptions{plainServer: true, handler: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("X-Proto", r.Header.Get("X-Forwarded-Proto"))
		io.WriteString(w, r.Method)
	}})
	ts := httptest.NewUnstartedServer(h.p.Handler(h.lis))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{k.server.TLS}}
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool()}, ForceAttemptHTTP2: true}}
	do := func(method string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/k", nil)
		req.Host = "app.local"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	r1, _ := do("GET")
	if r1.ProtoMajor != 2 || r1.Header.Get("X-Proto") != "https" {
		t.Fatalf("first GET: %s, X-Forwarded-Proto upstream %q; want HTTP/2 and https", r1.Proto, r1.Header.Get("X-Proto"))
	}
	if r2, _ := do("GET"); !strings.Contains(r2.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("second GET: Cache-Status %q; want a hit", r2.Header.Get("Cache-Status"))
	}
	// The plain listener's request for the same host and path is not the TLS one's.
	if r := h.get("/k", "Host", "app.local"); strings.Contains(r.cacheStatus(), "hit") || r.Header.Get("X-Proto") != "http" {
		t.Errorf("plain listener: Cache-Status %q, X-Proto %q; want a miss over http", r.cacheStatus(), r.Header.Get("X-Proto"))
	}
	do("POST")
	if r3, _ := do("GET"); strings.Contains(r3.Header.Get("Cache-Status"), "hit") {
		t.Errorf("GET after POST on the TLS listener: Cache-Status %q; want the entry invalidated", r3.Header.Get("Cache-Status"))
	}
	if r := h.get("/k", "Host", "app.local"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("plain listener after the TLS POST: Cache-Status %q; want its own entry still a hit", r.cacheStatus())
	}
}
