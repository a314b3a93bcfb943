package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// TestOversizedTagPurgeIsSkipped: a tag record whose tag no cached entry
// can carry (65 536 bytes: within the log's payload limit, over a tag's)
// is written straight into the log, as a client in another language or
// an older one may. With the persistent store on, the sidecar must count
// and skip it, and go on applying the purges after it; before the one
// purge model it retried it forever and every later purge waited behind
// it.
func TestOversizedTagPurgeIsSkipped(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer origin.Close()
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "store: {path: %q}\n", filepath.Join(t.TempDir(), "store")), 0o644)
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	get := func(path string) string {
		resp, err := d.client().Get(origin.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Cache-Status")
	}
	get("/a")
	if cs := get("/a"); !strings.Contains(cs, "hit") {
		t.Fatalf("/a not cached: %q", cs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logPath := filepath.Join(d.dir, "inval", "inval.log")
	lg, err := invalidate.OpenLog(logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := lg.Append(ctx, invalidate.TagRecord("unused", invalidate.Hard))
	if err != nil {
		t.Fatal(err)
	}
	// The oversized record, appended raw: Append refuses it.
	big := invalidate.Record{Seq: seq + 1, TimeMs: time.Now().UnixMilli(), Kind: invalidate.KindTag,
		Payload: []byte(strings.Repeat("t", invalidate.MaxTag+1))}
	if _, err := lg.Append(ctx, big); err == nil {
		t.Fatal("Append accepted a tag over MaxTag")
	}
	b, err := invalidate.AppendRecord(nil, &big)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c, err := zerohop.Open(d.dir, &zerohop.Options{Sidecar: d.listen})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Invalidate(ctx, invalidate.KeyRecord(origin.URL+"/a", invalidate.Hard)); err != nil {
		t.Fatalf("the purge after the oversized tag was not applied: %v\n%s", err, d.stderr)
	}
	if cs := get("/a"); strings.Contains(cs, "hit") {
		t.Fatalf("/a still a hit after its purge: %q", cs)
	}
	if n := d.metric(t, `zerohop_invalidation_skipped_total{reason="bad-payload"}`); n != 1 {
		t.Fatalf("bad-payload skips = %v, want 1", n)
	}
}

// TestPurgeCountedWithStore: with the persistent store on, the entries a
// purge removes are counted in zerohop_invalidation_removed_total, as
// without it (the records go through the one applier whichever tiers are
// behind it).
func TestPurgeCountedWithStore(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Key", "all-of-them")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer origin.Close()
	for _, withStore := range []bool{false, true} {
		t.Run(fmt.Sprint("store=", withStore), func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
			yaml := "{}\n"
			if withStore {
				yaml = fmt.Sprintf("store: {path: %q}\n", filepath.Join(t.TempDir(), "store"))
			}
			os.WriteFile(cfg, []byte(yaml), 0o644)
			d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
			for _, p := range []string{"/a", "/b", "/c"} {
				resp, err := d.client().Get(origin.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			c, err := zerohop.Open(d.dir, &zerohop.Options{Sidecar: d.listen})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.Invalidate(ctx, invalidate.TagRecord("all-of-them", invalidate.Hard)); err != nil {
				t.Fatal(err)
			}
			if n := d.metric(t, "zerohop_invalidation_removed_total"); n != 3 {
				t.Errorf("zerohop_invalidation_removed_total = %v after purging 3 entries, want 3", n)
			}
		})
	}
}

// TestUnsafeMethodPurgesBothTiers: a POST through the sidecar invalidates
// the target URI (RFC 9111 §4.4), every Vary variant of it, in shared
// memory and in the persistent store: after a restart on a cold cache
// file, refilled from the store, the URL is fetched again while an
// untouched one is served from the store.
func TestUnsafeMethodPurgesBothTiers(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("Accept-Language"))
	}))
	defer origin.Close()
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "store: {path: %q, ready_after_refill: 1}\n", filepath.Join(t.TempDir(), "store")), 0o644)
	env := "ZEROHOP_CONFIG=" + cfg
	do := func(d *daemon, method, path, lang string) string {
		req, _ := http.NewRequest(method, origin.URL+path, nil)
		req.Header.Set("Accept-Language", lang)
		resp, err := d.client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Cache-Status")
	}
	type get struct{ path, lang string }
	purged := []get{{"/doc", "en"}, {"/doc", "fr"}}
	kept := get{"/kept", "en"}
	a := startDaemonIn(t, dir, env)
	for _, g := range append(purged, kept) {
		do(a, "GET", g.path, g.lang)
		if cs := do(a, "GET", g.path, g.lang); !strings.Contains(cs, "hit") {
			t.Fatalf("%v not cached: %q", g, cs)
		}
	}
	do(a, "POST", "/doc", "en")
	for _, g := range purged {
		if cs := do(a, "GET", g.path, g.lang); strings.Contains(cs, "hit") {
			t.Errorf("%v a hit right after the POST: %q", g, cs)
		}
	}
	// Purge again (the GETs above stored them anew), then restart on a
	// cold cache file: only the store can bring anything back.
	do(a, "POST", "/doc", "en")
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	os.Remove(filepath.Join(dir, shm.FileName))

	b := startDaemonIn(t, dir, env)
	for _, g := range purged {
		if cs := do(b, "GET", g.path, g.lang); strings.Contains(cs, "hit") {
			t.Errorf("%v served from the store after the POST purged it: %q", g, cs)
		}
	}
	if cs := do(b, "GET", kept.path, kept.lang); !strings.Contains(cs, "hit") {
		t.Errorf("%v not refilled from the store (%q): the test does not exercise the second tier", kept, cs)
	}
}
