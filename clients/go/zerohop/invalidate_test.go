package zerohop_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/invalidate/tail"
	"github.com/zerohop/zerohop/shm"
)

// TestInvalidateReadYourPurge runs the sidecar's real tailer and applier on
// the log the client appends to: once Invalidate returns, the app's next
// read of the URL is not a shared-memory hit.
func TestInvalidateReadYourPurge(t *testing.T) {
	f := setup(t)
	dir := f.w.Dir()
	logPath := filepath.Join(dir, "inval", "inval.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	a := invalidate.NewApplier(invalidate.NewShmPurger(f.w))
	tl, err := tail.New(tail.Options{Path: logPath, Apply: a.Apply, Publish: f.w.SetInvalidation})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	f.put(t, "/p/1", nil)
	f.put(t, "/p/2", func(it *shm.Item) { it.Tags = []string{"catalog"} })
	get := func(path string) string {
		resp, err := f.http.Get("http://api.example" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, tt := range []struct {
		name string
		path string
		rec  invalidate.Record
	}{
		{"by URL", "/p/1", invalidate.KeyRecord("http://api.example/p/1", invalidate.Hard)},
		{"by tag", "/p/2", invalidate.TagRecord("catalog", invalidate.Hard)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(tt.path); got != "cached "+tt.path {
				t.Fatalf("before: %q", got)
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer wcancel()
			seq, err := f.c.Invalidate(wctx, tt.rec)
			if err != nil || seq == 0 {
				t.Fatalf("Invalidate: seq %d, %v", seq, err)
			}
			if got := get(tt.path); got != "from sidecar" {
				t.Fatalf("after Invalidate returned: %q; want the sidecar's answer", got)
			}
			if got := f.c.Reader().InvalidationSeq(); got < seq {
				t.Errorf("published seq %d < %d", got, seq)
			}
		})
	}
}
