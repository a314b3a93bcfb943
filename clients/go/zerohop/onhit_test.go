package zerohop_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/shm"
)

type spanKey struct{}

// TestOnHit: the hook sees each shared-memory hit (status, size, age, the
// app's request and its context, where an app keeps its span), and no
// miss; without a hook nothing is called.
func TestOnHit(t *testing.T) {
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 2 << 20, RegionSize: 64 << 10, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := &fixture{w: w}
	f.put(t, "/fresh", nil)
	sc := newSidecar(t)
	var got []zerohop.HitInfo
	c, err := zerohop.Open(dir, &zerohop.Options{
		Sidecar:          strings.TrimPrefix(sc.URL, "http://"),
		MaxWriterSilence: 10 * time.Second,
		OnHit:            func(h zerohop.HitInfo) { got = append(got, h) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hc := &http.Client{Transport: c.Transport()}
	do := func(target string, h http.Header) {
		ctx := context.WithValue(context.Background(), spanKey{}, "app-span")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.example"+target, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	before := time.Now()
	do("/fresh", nil)
	do("/absent", nil)
	do("/fresh", http.Header{"If-None-Match": {`"e1"`}})
	if len(got) != 2 {
		t.Fatalf("OnHit called %d times, want 2 (the hits): %+v", len(got), got)
	}
	h := got[0]
	if h.Status != 200 || h.Bytes != int64(len("cached /fresh")) || h.Age < 2 || h.TTL <= 0 || h.Duration < 0 ||
		h.Start.Before(before.Add(-time.Second)) || h.Request.URL.Path != "/fresh" || h.Request.Context().Value(spanKey{}) != "app-span" {
		t.Errorf("first hit: %+v", h)
	}
	if got[1].Status != http.StatusNotModified || got[1].Bytes != 0 {
		t.Errorf("conditional hit: %+v", got[1])
	}
}
