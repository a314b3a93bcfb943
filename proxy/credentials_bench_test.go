package proxy

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// BenchmarkCredentialFilter is the credential filter's upstream phase on
// net/http's header map: the value in use (an atomic load, and a clock
// read to know whether the file is due for a check), set on the upstream
// request. The field's value slice is net/http's Header.Set allocation.
func BenchmarkCredentialFilter(b *testing.B) {
	file := filepath.Join(b.TempDir(), "token")
	if err := os.WriteFile(file, []byte("bench-token-0123456789\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	p, err := New(config.Default(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := p.newCredential(config.Cluster{Name: "api", Credentials: &config.Credentials{Type: "bearer", File: file}})
	if err != nil {
		b.Fatal(err)
	}
	f := &credentialFilter{c: c}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		f.OnUpstream(nil, headerFields(h))
	}
	if h.Get("Authorization") != "Bearer bench-token-0123456789" {
		b.Fatal(h)
	}
}
