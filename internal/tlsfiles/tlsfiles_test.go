package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/testcert"
	"github.com/zerohop/zerohop/internal/tlsfiles"
)

type reloads struct {
	mu   sync.Mutex
	ok   int
	errs []error
}

func (r *reloads) on(_ *tlsfiles.Material, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.ok++
	}
}

func (r *reloads) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, len(r.errs)
}

func eventually(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaves(t *testing.T, ca *testcert.CA, serials ...int64) []*testcert.Leaf {
	t.Helper()
	var out []*testcert.Leaf
	for _, s := range serials {
		l, err := ca.Server(s, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// TestWatcherRotation covers the ways files rotate: a Kubernetes Secret's
// ..data symlink flip and a file renamed over the old one, with a broken
// generation in between that is refused while the old material stays.
func TestWatcherRotation(t *testing.T) {
	ca, err := testcert.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	ls := leaves(t, ca, 1, 2, 3)
	serial := func(w *tlsfiles.Watcher) int64 { return w.Current().Cert.Leaf.SerialNumber.Int64() }

	t.Run("secret symlink flip", func(t *testing.T) {
		s, err := testcert.NewSecret(t.TempDir(), map[string][]byte{"tls.crt": ls[0].CertPEM, "tls.key": ls[0].KeyPEM, "ca.crt": ca.PEM})
		if err != nil {
			t.Fatal(err)
		}
		var r reloads
		w, err := tlsfiles.NewWatcher(tlsfiles.Files{
			CertFile: filepath.Join(s.Dir, "tls.crt"), KeyFile: filepath.Join(s.Dir, "tls.key"), CAFile: filepath.Join(s.Dir, "ca.crt"),
		}, tlsfiles.Options{OnReload: r.on, PollInterval: time.Hour}) // notifications only
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if serial(w) != 1 || w.Current().Pool == nil {
			t.Fatalf("first load: serial %d", serial(w))
		}
		if err := s.Update(map[string][]byte{"tls.crt": ls[1].CertPEM, "tls.key": ls[0].KeyPEM, "ca.crt": ca.PEM}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { _, e := r.counts(); return e == 1 }, "the mismatched pair to be refused")
		if serial(w) != 1 {
			t.Fatalf("after a refused update: serial %d; want 1", serial(w))
		}
		if !errors.Is(r.errs[0], tlsfiles.ErrKeyPair) {
			t.Errorf("refusal %v; want ErrKeyPair", r.errs[0])
		}
		if err := s.Update(map[string][]byte{"tls.crt": ls[1].CertPEM, "tls.key": ls[1].KeyPEM, "ca.crt": ca.PEM}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { return serial(w) == 2 }, "serial 2")
	})

	t.Run("rename over, polled", func(t *testing.T) {
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		for p, d := range map[string][]byte{cert: ls[0].CertPEM, key: ls[0].KeyPEM} {
			if err := os.WriteFile(p, d, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var r reloads
		w, err := tlsfiles.NewWatcher(tlsfiles.Files{CertFile: cert, KeyFile: key}, tlsfiles.Options{OnReload: r.on, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := testcert.WriteFile(cert, []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { _, e := r.counts(); return e >= 1 }, "garbage to be refused")
		if serial(w) != 1 {
			t.Fatalf("after garbage: serial %d", serial(w))
		}
		// The same garbage is refused once, not at every poll.
		time.Sleep(100 * time.Millisecond)
		if _, e := r.counts(); e != 1 {
			t.Errorf("unchanged garbage refused %d times; want once", e)
		}
		if err := testcert.WriteFile(key, ls[2].KeyPEM); err != nil {
			t.Fatal(err)
		}
		if err := testcert.WriteFile(cert, ls[2].CertPEM); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { return serial(w) == 3 }, "serial 3")
	})
}

func TestWatcherRefusesAtStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ca.pem")
	os.WriteFile(p, []byte("not pem"), 0o600)
	if _, err := tlsfiles.NewWatcher(tlsfiles.Files{CAFile: p}, tlsfiles.Options{}); !errors.Is(err, tlsfiles.ErrNoCertificates) {
		t.Errorf("NewWatcher on a CA file without certificates: %v; want ErrNoCertificates", err)
	}
	if _, err := tlsfiles.NewWatcher(tlsfiles.Files{CAFile: filepath.Join(dir, "missing.pem")}, tlsfiles.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewWatcher on a missing file: %v; want ErrNotExist", err)
	}
}

// BenchmarkHandshake compares a full TLS 1.3 handshake (server
// certificate verified, client certificate presented and verified) with
// static configurations and with watched files, whose callbacks read the
// current material and verify against it: rotation costs nothing per
// handshake beyond an atomic load.
func BenchmarkHandshake(b *testing.B) {
	ca, _ := testcert.NewCA("ca")
	srv, _ := ca.Server(1, "127.0.0.1")
	cli, _ := ca.Client(2, "c")
	dir := b.TempDir()
	write := func(name string, d []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, d, 0o600)
		return p
	}
	caFile := write("ca.pem", ca.PEM)
	sw, err := tlsfiles.NewWatcher(tlsfiles.Files{CertFile: write("s.pem", srv.CertPEM), KeyFile: write("s.key", srv.KeyPEM), CAFile: caFile}, tlsfiles.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sw.Close()
	cw, err := tlsfiles.NewWatcher(tlsfiles.Files{CertFile: write("c.pem", cli.CertPEM), KeyFile: write("c.key", cli.KeyPEM), CAFile: caFile}, tlsfiles.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer cw.Close()
	for _, bc := range []struct {
		name     string
		srv, cli *tls.Config
	}{
		{"static", &tls.Config{Certificates: []tls.Certificate{srv.TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert},
			&tls.Config{Certificates: []tls.Certificate{cli.TLS}, RootCAs: ca.Pool(), ServerName: "127.0.0.1"}},
		{"watched", tlsfiles.ServerConfig(sw, tlsfiles.ServerOptions{}),
			tlsfiles.ClientConfig(cw, tlsfiles.ClientOptions{ServerName: "127.0.0.1"})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c1, c2 := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Server(c1, bc.srv).Handshake() }()
				if err := tls.Client(c2, bc.cli).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c1.Close()
				c2.Close()
			}
		})
	}
}
