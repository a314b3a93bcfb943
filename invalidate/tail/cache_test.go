package tail_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/tail"
	"github.com/zerohop/zerohop/shm"
)

// TestReadYourPurge wires the pieces the way the sidecar and an app do: a
// tailer applying to a real cache and publishing in its header, an app that
// appends and waits on its read-only mapping, then misses.
func TestReadYourPurge(t *testing.T) {
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	w, err := shm.OpenWriter(cacheDir, &shm.Options{Size: 8 << 20, RegionSize: 1 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := time.Now()
	for _, target := range []string{"/items/42", "/items/43"} {
		if err := w.Put(&shm.Item{Key: shm.AppendKey(nil, "GET", "http", "catalog.internal", target), Status: 200,
			Header: http.Header{}, Body: []byte("x"), StoredMs: now.UnixMilli(), ExpiresMs: now.Add(time.Hour).UnixMilli(),
			Tags: []string{"catalog"}}); err != nil {
			t.Fatal(err)
		}
	}
	a := invalidate.NewApplier(invalidate.NewShmPurger(w))
	path := filepath.Join(cacheDir, "inval", "inval.log")
	runTailer(t, tail.Options{Path: path, Apply: a.Apply, Publish: w.SetInvalidation})

	r, err := shm.Open(cacheDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := openLog(t, path, "app")
	hit := func(target string) bool {
		_, _, ok := r.Get(nil, shm.AppendKey(nil, "GET", "http", "catalog.internal", target), time.Now().UnixMilli())
		return ok
	}
	if !hit("/items/42") {
		t.Fatal("no hit before the purge")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seq, err := l.Append(ctx, invalidate.KeyRecord("http://catalog.internal/items/42", invalidate.Hard))
	if err != nil {
		t.Fatal(err)
	}
	if err := invalidate.WaitApplied(ctx, r, seq); err != nil {
		t.Fatal(err)
	}
	if hit("/items/42") || !hit("/items/43") {
		t.Fatal("read-your-purge failed")
	}
	seq, _ = l.Append(ctx, invalidate.TagRecord("catalog", invalidate.Soft))
	if err := invalidate.WaitApplied(ctx, r, seq); err != nil {
		t.Fatal(err)
	}
	if hit("/items/43") {
		t.Fatal("soft tag purge still fresh")
	}
	if _, _, ok := r.GetStale(nil, shm.AppendKey(nil, "GET", "http", "catalog.internal", "/items/43"), time.Now().UnixMilli()); !ok {
		t.Fatal("soft purge removed the entry")
	}
	if got := r.InvalidationSeq(); got != seq {
		t.Fatalf("header seq %d, want %d", got, seq)
	}
}
