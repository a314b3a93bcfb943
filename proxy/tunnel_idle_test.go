package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
)

// TestTunnelIdleTimeout opens a real CONNECT tunnel to an echo server on
// loopback, keeps it busy for several idle timeouts (it must stay open),
// then lets it go quiet: the proxy must close both sides, the app's and
// the origin's, after about one idle timeout, and count it.
func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	originClosed := make(chan time.Time, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(c, c) // echo until the proxy closes its side
		originClosed <- time.Now()
	}()
	h := newHarness(t, harnessOptions{mode: config.ModeForward, noCache: true,
		listener: func(l *config.Listener) { l.Forward.TunnelIdleTimeout = idle }})
	c, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	dest := ln.Addr().String()
	io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", err, resp)
	}

	// Busy: a byte each third of the timeout, for four timeouts.
	buf := make([]byte, 1)
	for i := 0; i < 12; i++ {
		if _, err := c.Write([]byte{byte('a' + i)}); err != nil {
			t.Fatalf("write %d while busy: %v", i, err)
		}
		if _, err := io.ReadFull(br, buf); err != nil || buf[0] != byte('a'+i) {
			t.Fatalf("echo %d while busy: %q %v (the tunnel closed while in use)", i, buf, err)
		}
		if i < 11 {
			time.Sleep(idle / 3)
		}
	}

	// Quiet: the proxy closes the tunnel.
	quiet := time.Now()
	n, err := br.Read(buf)
	closedAfter := time.Since(quiet)
	if err != io.EOF {
		t.Fatalf("idle tunnel: read %d bytes, %v after %v; want EOF after about %v", n, err, closedAfter, idle)
	}
	if closedAfter < idle*9/10 {
		t.Errorf("closed %v after the last byte; want no sooner than %v", closedAfter, idle)
	}
	select {
	case at := <-originClosed:
		t.Logf("tunnel closed %v after going idle; origin side %v", closedAfter, at.Sub(quiet))
	case <-time.After(10 * time.Second):
		t.Error("the origin's side of the tunnel stayed open")
	}
	waitUntil(t, func() bool { return counter(t, h.p, "zerohop_tunnel_idle_closed_total", "", "") == 1 },
		"zerohop_tunnel_idle_closed_total to be 1")
}

func waitUntil(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTunnelIdleTimeoutH2 is TestTunnelIdleTimeout for a CONNECT stream
// over unencrypted HTTP/2 (h2c), where the stream is the tunnel, and
// checks the refusal there too.
func TestTunnelIdleTimeoutH2(t *testing.T) {
	const idle = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	originClosed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(c, c)
		close(originClosed)
	}()
	h := newHarness(t, harnessOptions{mode: config.ModeForward, noCache: true, plainServer: true,
		listener: func(l *config.Listener) { l.Forward.TunnelIdleTimeout = idle },
		server: func(s *http.Server) {
			s.Protocols = new(http.Protocols)
			s.Protocols.SetHTTP1(true)
			s.Protocols.SetUnencryptedHTTP2(true)
		}})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	connect := func(dest string, body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodConnect, "http://"+h.addr(), body)
		req.Host = dest
		return tr.RoundTrip(req)
	}

	resp, err := connect("169.254.169.254:80", nil)
	if err != nil || resp.StatusCode != http.StatusForbidden || resp.ProtoMajor != 2 {
		t.Fatalf("h2 CONNECT to the metadata address: %v %+v; want 403 over HTTP/2", err, resp)
	}
	resp.Body.Close()

	pr, pw := io.Pipe()
	defer pw.Close()
	resp, err = connect(ln.Addr().String(), pr)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("h2 CONNECT: %v %v", err, resp)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1)
	for i := 0; i < 8; i++ {
		if i > 0 {
			time.Sleep(idle / 3)
		}
		pw.Write([]byte{byte('a' + i)})
		if _, err := io.ReadFull(resp.Body, buf); err != nil || buf[0] != byte('a'+i) {
			t.Fatalf("echo %d while busy: %q %v", i, buf, err)
		}
	}
	quiet := time.Now()
	done := make(chan error, 1)
	go func() { _, err := resp.Body.Read(buf); done <- err }()
	select {
	case err := <-done:
		if err == nil || time.Since(quiet) < idle*9/10 {
			t.Errorf("idle h2 tunnel: read ended with %v after %v; want an end after about %v", err, time.Since(quiet), idle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle h2 tunnel stayed open")
	}
	select {
	case <-originClosed:
	case <-time.After(10 * time.Second):
		t.Error("the origin's side of the h2 tunnel stayed open")
	}
}
