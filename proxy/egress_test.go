package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// A forward listener's client chooses the destination. These tests send
// what an app (or whoever reaches the listener) could send to make the
// sidecar reach the pod itself or the cloud's metadata service, in each
// form the proxy takes a destination: an absolute-form GET (the fast
// path), an absolute-form POST (net/http's path, ReverseProxy) and
// CONNECT. Every refused destination is refused before anything is
// dialled: the non-loopback addresses below never see a packet.

// egressReply is what the proxy answered a raw request.
type egressReply struct {
	code        int
	proxyStatus string
	body        string
}

// sendRaw writes raw on a new connection to the proxy and reads one
// response head (and, unless it is a CONNECT's 2xx, its body).
func (h *harness) sendRaw(raw string) (egressReply, net.Conn, *bufio.Reader) {
	h.t.Helper()
	c, br := h.dial()
	if _, err := io.WriteString(c, raw); err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.t.Fatalf("%q: %v", raw, err)
	}
	r := egressReply{code: resp.StatusCode, proxyStatus: resp.Header.Get("Proxy-Status")}
	if !strings.HasPrefix(raw, "CONNECT") || resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		r.body = string(b)
	}
	return r, c, br
}

// egressRequests are the three ways a client names a destination.
var egressRequests = []struct {
	name string
	raw  func(dest string) string
}{
	{"GET absolute-form (fast path)", func(d string) string {
		return "GET http://" + d + "/stats HTTP/1.1\r\nHost: " + d + "\r\n\r\n"
	}},
	{"POST absolute-form (net/http)", func(d string) string {
		return "POST http://" + d + "/purge HTTP/1.1\r\nHost: " + d + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\nall=1"
	}},
	{"CONNECT", func(d string) string {
		return "CONNECT " + d + " HTTP/1.1\r\nHost: " + d + "\r\n\r\n"
	}},
}

// loopbackName returns a host name other than "localhost" that resolves
// only to loopback addresses (this machine's name usually does, through
// /etc/hosts), to show that names are checked by the address dialled.
func loopbackName(t *testing.T) string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	addrs, err := net.LookupIP(name)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return ""
		}
	}
	return name
}

func TestForwardRefusesPodDestinations(t *testing.T) {
	// The origin is real and on loopback: a refused request must never
	// reach it.
	for _, v := range []struct{ allowLoopback, plain bool }{{false, false}, {true, false}, {false, true}} {
		allowLoopback := v.allowLoopback
		// plain: net/http's server alone, without the fast path.
		h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler, plainServer: v.plain,
			listener: func(l *config.Listener) { l.Forward.AllowLoopback = allowLoopback }})
		_, upPort, _ := net.SplitHostPort(h.up.hostport())
		_, ownPort, _ := net.SplitHostPort(h.addr())
		type row struct{ dest, reason string }
		rows := []row{
			// The sidecar's own listener, under each name for it.
			{h.addr(), "self"},
			{"localhost:" + ownPort, "self"},
			{"0.0.0.0:" + ownPort, "self"},
			{"[::ffff:127.0.0.1]:" + ownPort, "self"},
			// Cloud metadata services; link-local.
			{"169.254.169.254:80", "metadata"},
			{"metadata.google.internal:80", "metadata"},
			{"METADATA.google.internal.:80", "metadata"},
			{"[fd00:ec2::254]:80", "metadata"},
			{"100.100.100.200:80", "metadata"},
			{"169.254.1.1:80", "link_local"},
			{"[fe80::1]:80", "link_local"},
		}
		if !allowLoopback {
			rows = append(rows,
				row{h.up.hostport(), "loopback"},
				row{"localhost:" + upPort, "loopback"},
				row{"app.localhost:" + upPort, "loopback"},
				row{"127.0.0.2:" + upPort, "loopback"},
				row{"[::1]:" + upPort, "loopback"},
				row{"0.0.0.0:" + upPort, "loopback"},
			)
			if name := loopbackName(t); name != "" {
				// Not decided by name: the dialer checks the address.
				rows = append(rows, row{name + ":" + upPort, "loopback"})
			} else {
				t.Log("no host name resolving to loopback only: the dial-time check is tested by TestForwardDialCheck")
			}
		}
		for _, r := range rows {
			for _, req := range egressRequests {
				before := h.up.hits.Load()
				got, _, _ := h.sendRaw(req.raw(r.dest))
				if got.code != http.StatusForbidden || !strings.Contains(got.proxyStatus, "error=destination_ip_prohibited") ||
					!strings.Contains(got.proxyStatus, r.reason) || !strings.Contains(got.body, "refused") {
					t.Errorf("%+v %s %s: %d, Proxy-Status %q, body %q; want 403 (%s)",
						v, req.name, r.dest, got.code, got.proxyStatus, got.body, r.reason)
				}
				if h.up.hits.Load() != before {
					t.Errorf("%+v %s %s: reached the origin", v, req.name, r.dest)
				}
			}
		}
		for _, reason := range []string{"self", "metadata", "link_local", "loopback"} {
			want := 0
			for _, r := range rows {
				if r.reason == reason {
					want += len(egressRequests)
				}
			}
			if got := counter(t, h.p, "zerohop_egress_refused_total", "reason", reason); got != float64(want) {
				t.Errorf("%+v: zerohop_egress_refused_total{reason=%q} = %v; want %d", v, reason, got, want)
			}
		}

		// What the listener allows still works, in each form.
		if allowLoopback {
			if r := h.get("/ok"); r.StatusCode != 200 {
				t.Errorf("GET through an allowed destination: %d %s", r.StatusCode, r.body)
			}
			got, c, br := h.sendRaw(egressRequests[2].raw(h.up.hostport()))
			if got.code != 200 {
				t.Fatalf("CONNECT to an allowed destination: %d %s", got.code, got.body)
			}
			io.WriteString(c, "GET /tunnelled HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("request through the tunnel: %v %v", err, resp)
			}
			resp.Body.Close()
		}
	}
}

// TestForwardAllowDestinations: an allow_destinations entry opens what it
// names, and nothing more.
func TestForwardAllowDestinations(t *testing.T) {
	allowed := newUpstream(t, nil, echoHandler)
	other := newUpstream(t, nil, echoHandler)
	h := newHarness(t, harnessOptions{mode: config.ModeForward, origin: allowed.URL,
		listener: func(l *config.Listener) {
			l.Forward.AllowLoopback = false
			l.Forward.AllowDestinations = []string{allowed.hostport()}
		}})
	for _, req := range egressRequests {
		got, c, br := h.sendRaw(req.raw(allowed.hostport()))
		if got.code != 200 {
			t.Errorf("%s to the allowed %s: %d %s", req.name, allowed.hostport(), got.code, got.body)
		}
		if req.name == "CONNECT" && got.code == 200 {
			io.WriteString(c, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
				t.Errorf("through the allowed tunnel: %v %v", err, resp)
			}
		}
		got, _, _ = h.sendRaw(req.raw(other.hostport()))
		if got.code != http.StatusForbidden || !strings.Contains(got.proxyStatus, "loopback") {
			t.Errorf("%s to %s, another loopback port: %d %q; want 403", req.name, other.hostport(), got.code, got.proxyStatus)
		}
	}
	if other.hits.Load() != 0 || allowed.hits.Load() != int64(len(egressRequests)) {
		t.Errorf("origin requests: allowed %d, other %d; want %d and 0", allowed.hits.Load(), other.hits.Load(), len(egressRequests))
	}
}

// TestForwardRouteToLoopbackIsNotChecked: a destination the operator
// chose (a route's cluster) is not the client's choice, and is reached
// even on loopback.
func TestForwardRouteToLoopbackIsNotChecked(t *testing.T) {
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler,
		listener: func(l *config.Listener) { l.Forward.AllowLoopback = false },
		config: func(c *config.Config) {
			c.Routes = []config.Route{{Name: "catalog", Match: config.Match{Host: "catalog.internal"}, Cluster: "main"}}
		}})
	c, br := h.dial()
	io.WriteString(c, "GET http://catalog.internal/items/1 HTTP/1.1\r\nHost: catalog.internal\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || h.up.hits.Load() != 1 {
		t.Fatalf("routed request to a loopback cluster: %v %v, origin requests %d", err, resp, h.up.hits.Load())
	}
}

// counter returns the value of the counter name{label=value} (summed over
// other labels) in p's registry.
func counter(t *testing.T, p *proxy.Proxy, name, label, value string) float64 {
	t.Helper()
	mfs, err := p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetName() == label && lp.GetValue() == value
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
