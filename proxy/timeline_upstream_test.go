package proxy_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// waitRecords waits for n timelines of route "main", newest first.
func waitRecords(t *testing.T, p *proxy.Proxy, n int) []proxy.RequestRecord {
	t.Helper()
	var recs []proxy.RequestRecord
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if recs = p.Requests(proxy.RequestFilter{Route: "main"}); len(recs) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(recs) < n {
		t.Fatalf("%d timelines, want %d: %+v", len(recs), n, recs)
	}
	return recs
}

func phaseMap(r proxy.RequestRecord) map[string]proxy.PhaseRecord {
	m := map[string]proxy.PhaseRecord{}
	for _, p := range r.Phases {
		m[p.Name] = p
	}
	return m
}

// phaseNames is r's phases in order, e.g. "cache connect upstream transfer store".
func phaseNames(r proxy.RequestRecord) string {
	var ns []string
	for _, p := range r.Phases {
		ns = append(ns, p.Name)
	}
	return strings.Join(ns, " ")
}

// TestTimelineUpstreamClients: a miss through each upstream client (h1,
// net/http's std, h2c with prior knowledge) records its connect phase
// (the h1 transport tells the exchange; std and h2c through an
// httptrace.ClientTrace), then upstream and transfer; the hit after it
// records its write (transfer), on both entry paths.
func TestTimelineUpstreamClients(t *testing.T) {
	var proto atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "timeline body")
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		client config.ClusterClient
		proto  int32
	}{{config.ClientH1, 1}, {config.ClientStd, 1}, {config.ClientH2C, 2}} {
		for _, plain := range []bool{false, true} {
			name := string(tc.client) + map[bool]string{false: "/fast", true: "/plain"}[plain]
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, harnessOptions{origin: srv.URL, plainServer: plain, clock: &clock{real: true},
					config: func(c *config.Config) { c.Clusters[0].Client = tc.client }})
				for _, id := range []string{"miss", "hit"} {
					if r := h.do("GET", "/tl-"+name, hdr("X-Request-Id", id), nil); r.StatusCode != 200 {
						t.Fatalf("%s: %d", id, r.StatusCode)
					}
				}
				if got := proto.Load(); got != tc.proto {
					t.Errorf("upstream spoke HTTP/%d, want HTTP/%d", got, tc.proto)
				}
				recs := waitRecords(t, h.p, 2)
				hit, miss := recs[0], recs[1]
				if got := phaseNames(miss); got != "cache connect upstream transfer store" {
					t.Errorf("miss phases %q, want cache connect upstream transfer store: %+v", got, miss.Phases)
				}
				mp := phaseMap(miss)
				if c, u := mp["connect"], mp["upstream"]; c.StartMs+c.DurationMs > u.StartMs+1e-3 || miss.Error != "" {
					t.Errorf("miss: connect %+v ends after upstream %+v starts, or error %q", c, u, miss.Error)
				}
				if got := phaseNames(hit); hit.Cache != "hit" || got != "cache transfer" {
					t.Errorf("hit %s phases %q, want cache transfer", hit.Cache, got)
				}
				hp := phaseMap(hit)
				if c, w := hp["cache"], hp["transfer"]; w.StartMs < c.StartMs+c.DurationMs-1e-3 {
					t.Errorf("hit: the write %+v starts before the cache decision %+v ends", w, c)
				}
			})
		}
	}
}

// failingUpstream listens on loopback and treats each connection with
// f; it returns its URL.
func failingUpstream(t *testing.T, f func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestTimelineUpstreamFailure: an upstream exchange that fails records
// the phases it reached and how it failed, for each client: a refused
// connection (connect only), a connection reset after the request
// (connect, then upstream until the failure), and a response that never
// comes (upstream until response_timeout).
func TestTimelineUpstreamFailure(t *testing.T) {
	refused := func() string { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return "http://" + ln.Addr().String()
	}()
	reset := failingUpstream(t, func(c net.Conn) {
		c.Read(make([]byte, 4096)) // the request (or h2's preface)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		c.Close()
	})
	hang := failingUpstream(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // reads until the proxy gives up
		c.Close()
	})
	for _, client := range []config.ClusterClient{config.ClientH1, config.ClientStd, config.ClientH2C} {
		for _, tc := range []struct {
			name, origin string
			status       int
			phases, err  string // the phases, and the error's start
		}{
			{"refused", refused, 502, "cache connect", "connect: connection refused"},
			{"reset", reset, 502, "cache connect upstream", "upstream: connection "}, // reset (or closed)
			{"timeout", hang, 504, "cache connect upstream", "upstream: timed out"},
		} {
			for _, plain := range []bool{false, true} {
				name := string(client) + "/" + tc.name + map[bool]string{false: "/fast", true: "/plain"}[plain]
				t.Run(name, func(t *testing.T) {
					h := newHarness(t, harnessOptions{origin: tc.origin, plainServer: plain, clock: &clock{real: true}, config: func(c *config.Config) {
						c.Clusters[0].Client = client
						c.Clusters[0].ResponseTimeout = 300 * time.Millisecond
					}})
					if r := h.do("GET", "/fail", nil, nil); r.StatusCode != tc.status {
						t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
					}
					rec := waitRecords(t, h.p, 1)[0]
					got := phaseNames(rec)
					t.Logf("phases %q, error %q", got, rec.Error)
					wantErr := tc.err
					if client == config.ClientH2C && tc.name == "reset" {
						// net/http's HTTP/2 client may report the reset as
						// "http2: client conn could not be established".
						wantErr = "upstream: "
					}
					if got != tc.phases || !strings.HasPrefix(rec.Error, wantErr) {
						t.Errorf("phases %q error %q; want %q and an error starting with %q", got, rec.Error, tc.phases, wantErr)
					}
					if tc.name == "timeout" {
						last := rec.Phases[len(rec.Phases)-1]
						if last.StartMs+last.DurationMs < 250 {
							t.Errorf("timeout: the last phase %+v ends before the 300ms response timeout", last)
						}
					}
				})
			}
		}
	}
}
