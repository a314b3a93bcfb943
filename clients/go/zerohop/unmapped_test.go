package zerohop_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// TestUnmappedForwardsEverything: where the cache cannot be mapped (off
// Linux), the client still works, sending every request to the sidecar.
// Off Linux it goes through Open itself; on Linux, where Open maps, a live
// writer holds a fresh entry for the URL asked, so an answer from the
// mapping would show.
func TestUnmappedForwardsEverything(t *testing.T) {
	sc := newSidecar(t)
	opts := &zerohop.Options{Sidecar: strings.TrimPrefix(sc.URL, "http://"), MaxWriterSilence: 10 * time.Second}
	var c *zerohop.Client
	var err error
	if runtime.GOOS == "linux" {
		dir := t.TempDir()
		w, werr := shm.OpenWriter(dir, &shm.Options{Size: 2 << 20, RegionSize: 64 << 10, HeartbeatInterval: 20 * time.Millisecond})
		if werr != nil {
			t.Fatal(werr)
		}
		t.Cleanup(func() { w.Close() })
		now := time.Now()
		if werr := w.Put(&shm.Item{Key: shm.AppendKey(nil, "GET", "http", "api.example", "/a"), Status: 200,
			Header: http.Header{}, Body: []byte("cached /a"), StoredMs: now.UnixMilli(),
			ExpiresMs: now.Add(time.Hour).UnixMilli()}); werr != nil {
			t.Fatal(werr)
		}
		c, err = zerohop.NewUnmapped(opts)
	} else {
		if _, oerr := shm.Open(t.TempDir(), nil); !errors.Is(oerr, shm.ErrUnsupported) {
			t.Fatalf("shm.Open on %s: %v; want ErrUnsupported", runtime.GOOS, oerr)
		}
		c, err = zerohop.Open(t.TempDir(), opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: c.Transport()}
	const n = 5
	for i := range n {
		resp, err := hc.Get("http://api.example/a")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "from sidecar" || resp.Header.Get("X-Target") != "http://api.example/a" {
			t.Fatalf("request %d: %q (X-Target %q); want the sidecar's answer", i, b, resp.Header.Get("X-Target"))
		}
	}
	if got := sc.n.Load(); got != n {
		t.Errorf("sidecar saw %d requests; want %d", got, n)
	}
	if s := c.Stats(); s.Hits != 0 || s.Misses != 0 || s.Bypassed != n {
		t.Errorf("stats %+v; want %d bypassed and nothing else", s, n)
	}
	if _, _, ok := c.Get(nil, "GET", "http", "api.example", "/a", nil); ok {
		t.Error("Get found an entry without a mapping")
	}
	if c.Healthy() || c.Reader() != nil {
		t.Errorf("Healthy %v, Reader %v; want false, nil", c.Healthy(), c.Reader())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Invalidate(ctx, invalidate.KeyRecord("http://api.example/a", invalidate.Hard)); !errors.Is(err, shm.ErrUnsupported) {
		t.Errorf("Invalidate: %v; want ErrUnsupported", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	resp, err := hc.Get("http://api.example/a")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	resp.Body.Close()
}
