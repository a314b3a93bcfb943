package main_test

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestLogUpstreamFailure: a request whose upstream refuses the connection
// shows in `zerohop log` with the phases it reached and how it failed.
func TestLogUpstreamFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/down"
	ln.Close() // nothing listens there now
	d := startDaemon(t)
	resp, err := d.client().Get(dead)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("GET %s: %d, want 502", dead, resp.StatusCode)
	}
	var out []byte
	waitFor(t, func() bool {
		out, _ = exec.Command(bin, "log", "--admin", d.admin).CombinedOutput()
		return strings.Contains(string(out), "/down")
	}, "the failed request in the log")
	if s := string(out); !strings.Contains(s, " connect ") || !strings.Contains(s, "error: connect: connection refused") {
		t.Errorf("zerohop log:\n%s", s)
	}
}
