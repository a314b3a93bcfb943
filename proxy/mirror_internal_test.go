package proxy

import (
	"net"
	"testing"
)

// TestShadowHost: the one-allocation common case gives what
// SplitHostPort and JoinHostPort give, and "-shadow" goes before the port.
func TestShadowHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api.local", "api.local-shadow"},
		{"api.local:8080", "api.local-shadow:8080"},
		{"127.0.0.1:80", "127.0.0.1-shadow:80"},
		{"host:", "host-shadow:"},
		{"::1", "::1-shadow"},
		{"[::1]:80", "[::1-shadow]:80"},
		{"", "-shadow"},
	} {
		got := shadowHost(tc.in)
		if got != tc.want {
			t.Errorf("shadowHost(%q) = %q; want %q", tc.in, got, tc.want)
		}
		ref := tc.in + "-shadow"
		if h, port, err := net.SplitHostPort(tc.in); err == nil {
			ref = net.JoinHostPort(h+"-shadow", port)
		}
		if got != ref {
			t.Errorf("shadowHost(%q) = %q; SplitHostPort and JoinHostPort give %q", tc.in, got, ref)
		}
	}
}
